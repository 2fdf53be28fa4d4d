/*
 * idmap — a map from compact u64 ids to pointers, in 64 shards.
 *
 * Ids come from one atomic counter and are never reused, so a stale id
 * (a kernel fh or nodeid of something already gone) finds nothing instead
 * of finding something else.  The shard is id & 63: consecutive ids spread
 * over all shards, and each shard is an open-addressing table under its own
 * lock, so threads working on different ids rarely meet.
 *
 * The handle registry (handle.h) and the FUSE inode table (inode.h) are
 * both built on it.
 */
#ifndef FS9_CORE_IDMAP_H
#define FS9_CORE_IDMAP_H

#include <stddef.h>
#include <stdint.h>

#define FS9_IDMAP_SHARDS 64

struct fs9_idmap;

/** A new, empty map whose first id is `first_id` (> 0; 0 is never an id).
 *  NULL when out of memory. */
struct fs9_idmap *fs9_idmap_new(uint64_t first_id);

/** Free the map itself; values are not touched (empty it first). */
void fs9_idmap_free(struct fs9_idmap *m);

/** Take the next id from the counter.  Never returns the same id twice. */
uint64_t fs9_idmap_next_id(struct fs9_idmap *m);

/** Store `value` (non-NULL) under `id`.  -EEXIST if present, -ENOMEM. */
int fs9_idmap_insert(struct fs9_idmap *m, uint64_t id, void *value);

/** Callback run under the shard lock on a found value (take a reference
 *  there, so the value cannot be freed between lookup and use).  It must
 *  not call back into the map. */
typedef void (*fs9_idmap_found_fn)(void *value, void *arg);

/** The value stored under `id`, or NULL.  When `found` is not NULL it is
 *  called with the value while the shard lock is held. */
void *fs9_idmap_get(struct fs9_idmap *m, uint64_t id, fs9_idmap_found_fn found,
                    void *arg);

/** Remove `id` and return its value, or NULL when absent.  When `check` is
 *  not NULL the removal only happens if check(value, arg) returns non-zero
 *  (evaluated under the shard lock); otherwise NULL is returned. */
void *fs9_idmap_remove(struct fs9_idmap *m, uint64_t id,
                       int (*check)(void *value, void *arg), void *arg);

/** Number of stored values (exact when no one is changing the map). */
size_t fs9_idmap_count(const struct fs9_idmap *m);

/** Call fn(id, value, arg) for every entry, shard by shard, each shard
 *  under its lock: fn must not call back into the map.  fn returning
 *  non-zero stops the walk; that value is returned. */
int fs9_idmap_foreach(struct fs9_idmap *m,
                      int (*fn)(uint64_t id, void *value, void *arg),
                      void *arg);

/** Bytes of memory the map's own tables use (not the values). */
size_t fs9_idmap_memory(const struct fs9_idmap *m);

#endif
