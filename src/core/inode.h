/*
 * inode — the FUSE inode table: which namespace object each kernel nodeid
 * stands for.
 *
 * The kernel names files by nodeid; providers name them by path.  A node
 * is one object (keyed by its inode number, so every hard link of a file is
 * the same node and the kernel sees one inode, as on any filesystem), and
 * it knows the entries (parent, name) it is reached by.  A path is built by
 * walking parents — so renaming a directory moves everything below it at
 * once, with no per-descendant work.  A (parent, name) index gives the same
 * nodeid back for the same entry as long as it still holds the same object;
 * when an entry was replaced by another object, the entry moves to a new
 * node, so the kernel never sees one nodeid change identity.
 *
 * Lookup counts: every reply that hands an entry to the kernel (lookup,
 * create, mkdir, mknod, symlink, link, readdirplus) adds one; forget takes
 * them away; a node with no lookups and no children is freed.  nodeids come
 * from an idmap and are never reused, so a late request for a forgotten
 * node finds nothing rather than something else.  Entries pin their parent
 * node so a path can always be walked.
 */
#ifndef FS9_CORE_INODE_H
#define FS9_CORE_INODE_H

#include <stddef.h>
#include <stdint.h>

#define FS9_ROOT_NODEID 1

struct fs9_inode_table;

struct fs9_inode_table *fs9_inode_table_new(void);

/** Free the table and every node in it. */
void fs9_inode_table_free(struct fs9_inode_table *t);

/** Write the namespace path of node `id` — with "/name" appended when
 *  `name` is not NULL — into `buf`.  Returns the length, -ESTALE for an
 *  unknown node, -ENOENT for a node whose entry was removed (detached),
 *  -ENAMETOOLONG when it does not fit. */
int fs9_inode_path(struct fs9_inode_table *t, uint64_t id, const char *name,
                   char *buf, size_t size);

/** The node for entry (`parent`, `name`) holding object `ino` of type
 *  `type` (S_IFMT bits), created when missing or when the entry now holds
 *  another object; adds `count` lookups.  Returns the nodeid, 0 when the
 *  parent is unknown or memory ran out.  With `count` 0 nothing is
 *  created: 0 unless the entry is already known for that object. */
uint64_t fs9_inode_enter(struct fs9_inode_table *t, uint64_t parent,
                         const char *name, uint64_t ino, uint32_t type,
                         uint64_t count);

/** Take back `count` lookups (FUSE forget). */
void fs9_inode_forget(struct fs9_inode_table *t, uint64_t id, uint64_t count);

/** The nodeid currently entered for (`parent`, `name`), or 0. */
uint64_t fs9_inode_find(struct fs9_inode_table *t, uint64_t parent,
                        const char *name);

/** The entry (`parent`, `name`) was removed: forget it.  A node left with
 *  no entry is detached: its path is gone, its open handles still work. */
void fs9_inode_unlink(struct fs9_inode_table *t, uint64_t parent,
                      const char *name);

/** Record a rename done by the provider.  `exchange` swaps the two
 *  entries; otherwise the entry at the target, if any, is dropped.  A
 *  rename between two links of the same object changes nothing. */
void fs9_inode_rename(struct fs9_inode_table *t, uint64_t parent,
                      const char *name, uint64_t newparent,
                      const char *newname, int exchange);

/** ino and type recorded for `id`; -ESTALE when unknown. */
int fs9_inode_info(struct fs9_inode_table *t, uint64_t id, uint64_t *ino,
                   uint32_t *type);

/** Remember that handle `fh` is open on node `id` (so the node can still be
 *  reached after its entry is removed); forget it again on release. */
void fs9_inode_handle_add(struct fs9_inode_table *t, uint64_t id,
                          uint64_t fh);
void fs9_inode_handle_del(struct fs9_inode_table *t, uint64_t id,
                          uint64_t fh);

/** Some handle open on node `id`, or 0. */
uint64_t fs9_inode_handle_any(struct fs9_inode_table *t, uint64_t id);

/** Number of live nodes, the root included. */
size_t fs9_inode_count(struct fs9_inode_table *t);

#endif
