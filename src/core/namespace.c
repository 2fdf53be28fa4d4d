/* namespace — see namespace.h. */
#include "core/namespace.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/ctl.h"
#include "core/log.h"
#include "core/namespace_i.h"
#include "core/router.h"
#include "providers/providers.h"


struct fs9_ns {
    struct fs9_mount_table *mounts;
    struct fs9_registry *handles;
    struct fs9_dispatcher *dispatcher;
    uid_t owner;
    struct timespec birth; /* times of synthesized directories */

    pthread_mutex_t lock; /* catalog and mount/unmount */
    struct fs9_catalog_entry *catalog;
    size_t ncatalog, capcatalog;
    uint32_t next_index;

    fs9_notify_hook notify_hook;
    void *notify_arg;
    fs9_mount_hook mount_hook;
    void *mount_arg;
    fs9_info_hook info_hook;
    void *info_arg;

    pthread_mutex_t error_lock;
    char error[1024]; /* why the last control command failed */

    struct fs9_stats stats;
};

/* ---- handles ---- */

static void handle_closed(struct fs9_handle *h, void *arg)
{
    (void)arg;
    struct fs9_mount *m = h->mount;
    if (h->ph && m->ops->close) {
        int rc = m->ops->close(m->self, h->ph, (h->ns_flags & FS9__NSF_SYNC_CLOSE) != 0);
        if (rc < 0 && rc != -EIO)
            fs9_warn("close of %s on %s failed: %s", h->path, m->path,
                     strerror(-rc));
    }
    atomic_fetch_sub(&m->open_handles, 1);
    fs9_mount_unref(m);
    free(h->path);
    free(h);
}

/* ---- host services handed to providers ---- */

static void host_log(void *ctx, int level, const char *fmt, ...)
{
    struct fs9_mount *m = ctx;
    char line[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fs9_log(level, "%s at %s: %s", m->ops->name, m->path, line);
}

static struct timespec host_now(void *ctx, clockid_t clock_id)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(clock_id, &ts);
    return ts;
}

uint64_t fs9_ns_park_key(const struct fs9_mount *m, const char *rel)
{
    uint64_t h = 1469598103934665603ULL ^ m->index;
    for (const unsigned char *p = (const unsigned char *)rel; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return h ? h : 1;
}

static void host_notify(void *ctx, const char *rel, unsigned events)
{
    struct fs9_mount *m = ctx;
    struct fs9_ns *ns = m->owner;
    if (events & FS9_NOTIFY_DATA)
        fs9_dispatcher_notify(ns->dispatcher, m, fs9_ns_park_key(m, rel));
    if (ns->notify_hook) {
        char path[4096];
        const char *base = strcmp(m->path, "/") == 0 ? "" : m->path;
        int n = snprintf(path, sizeof path, "%s%s%s", base, *rel ? "/" : "",
                         rel);
        if (n > 0 && (size_t)n < sizeof path)
            ns->notify_hook(ns->notify_arg, m, n ? path : "/", events);
    }
}

/* ---- mounts ---- */

static void mount_release(struct fs9_mount *m)
{
    if (m->self && m->ops->destroy)
        m->ops->destroy(m->self);
    fs9_dispatcher_detach(m);
    free(m->path);
    free(m->source);
    free(m->options);
    free(m);
}

static char *join_options(const struct fs9_config_item *items, size_t count)
{
    size_t len = 1;
    for (size_t i = 0; i < count; i++)
        len += strlen(items[i].key) + strlen(items[i].value) + 2;
    char *s = malloc(len), *p = s;
    if (!s)
        return NULL;
    *p = '\0';
    for (size_t i = 0; i < count; i++)
        p += sprintf(p, "%s%s=%s", i ? "," : "", items[i].key,
                     items[i].value);
    return s;
}

static int mount_ops(struct fs9_ns *ns, const char *path, const char *name,
                     const struct fs9_provider_ops *ops,
                     const struct fs9_config_item *items, size_t count,
                     char *err, size_t errlen);

int fs9_ns_mount(struct fs9_ns *ns, const char *path, const char *name,
                 const struct fs9_config_item *items, size_t count,
                 char *err, size_t errlen)
{
    const struct fs9_catalog_entry *e = fs9_ns_find_provider(ns, name);
    if (!e) {
        snprintf(err, errlen, "unknown provider '%s' (fs9 --list-providers "
                 "shows those available)", name);
        return -ENOENT;
    }
    return mount_ops(ns, path, name, e->ops, items, count, err, errlen);
}

int fs9_ns_mount_control(struct fs9_ns *ns, char *err, size_t errlen)
{
    return mount_ops(ns, FS9_CONTROL_PATH, "ctl", &fs9_ctl_ops, NULL, 0,
                     err, errlen);
}

struct fs9_ns *fs9_ns_of_host(const struct fs9_host *host)
{
    return ((struct fs9_mount *)host->ctx)->owner;
}

static int mount_ops(struct fs9_ns *ns, const char *path, const char *name,
                     const struct fs9_provider_ops *ops,
                     const struct fs9_config_item *items, size_t count,
                     char *err, size_t errlen)
{
    char canon[4096];
    int rc = fs9_path_normalize(path, canon, sizeof canon);
    if (rc < 0) {
        snprintf(err, errlen, "bad mount path '%s': %s", path,
                 rc == -ENAMETOOLONG ? "too long"
                                     : "must be absolute, without '..'");
        return -EINVAL;
    }
    struct fs9_mount *m = calloc(1, sizeof *m);
    if (!m)
        goto nomem;
    m->path = strdup(canon);
    m->source = strdup(name);
    m->options = join_options(items, count);
    if (!m->path || !m->source || !m->options)
        goto nomem_m;
    m->ops = ops;
    m->owner = ns;
    m->release = mount_release;
    atomic_store(&m->refs, 1);
    m->host.abi_version = FS9_PROVIDER_ABI_VERSION;
    m->host.struct_size = sizeof m->host;
    m->host.ctx = m;
    m->host.log = host_log;
    m->host.now = host_now;
    m->host.notify = host_notify;

    pthread_mutex_lock(&ns->lock);
    m->index = ns->next_index;
    ns->next_index = ns->next_index % 32767 + 1;
    pthread_mutex_unlock(&ns->lock);

    if (fs9_dispatcher_attach(ns->dispatcher, m) != 0)
        goto nomem_m;

    struct fs9_config cfg = {.items = items, .count = count,
                             .mount_path = canon};
    char perr[512] = "";
    rc = ops->create(&m->host, &cfg, &m->self, perr, sizeof perr);
    if (rc < 0 || !m->self) {
        if (rc >= 0)
            rc = -EIO;
        snprintf(err, errlen, "%s at %s: %s", name, canon,
                 perr[0] ? perr : strerror(-rc));
        m->self = NULL;
        fs9_mount_unref(m);
        return rc;
    }
    m->caps = ops->capabilities ? ops->capabilities(m->self) : 0;

    rc = fs9_mount_table_add(ns->mounts, m);
    if (rc < 0) {
        snprintf(err, errlen, "%s: %s", canon,
                 rc == -EEXIST ? "something is already mounted there"
                               : strerror(-rc));
        fs9_mount_unref(m);
        return rc;
    }
    fs9_mount_unref(m); /* the table holds it now */
    fs9_info("mounted %s at %s", name, canon);
    if (ns->mount_hook)
        ns->mount_hook(ns->mount_arg, canon);
    return 0;

nomem_m:
    fs9_dispatcher_detach(m);
    free(m->path);
    free(m->source);
    free(m->options);
    free(m);
nomem:
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
}

struct unmount_check {
    int force;
};

static int unmount_check(struct fs9_mount *m, void *arg)
{
    struct unmount_check *c = arg;
    if (strcmp(m->path, "/") == 0)
        return -EBUSY;
    if (atomic_load(&m->open_handles) > 0 && !c->force)
        return -EBUSY;
    return 0;
}

static int handle_on_mount(const struct fs9_handle *h, void *arg)
{
    return h->mount == arg;
}

int fs9_ns_unmount(struct fs9_ns *ns, const char *path, int force, char *err,
                   size_t errlen)
{
    char canon[4096];
    if (fs9_path_normalize(path, canon, sizeof canon) < 0) {
        snprintf(err, errlen, "bad path '%s'", path);
        return -EINVAL;
    }
    struct unmount_check c = {.force = force};
    struct fs9_mount *m = NULL;
    int rc = fs9_mount_table_remove(ns->mounts, canon, unmount_check, &c, &m);
    if (rc < 0) {
        if (rc == -ENOENT)
            snprintf(err, errlen, "nothing is mounted at %s", canon);
        else if (rc == -EBUSY && strcmp(canon, "/") == 0)
            snprintf(err, errlen, "the root mount cannot be unmounted");
        else if (rc == -EBUSY)
            snprintf(err, errlen, "%s has open files (unmount -f forces)",
                     canon);
        else
            snprintf(err, errlen, "%s: %s", canon, strerror(-rc));
        return rc;
    }
    if (force) {
        /* Later calls on its handles fail with EIO; the handles close as
         * soon as the calls still running on them finish. */
        atomic_store(&m->dead, 1);
        size_t n = 0;
        uint64_t *ids = fs9_registry_ids(ns->handles, handle_on_mount, m, &n);
        for (size_t i = 0; ids && i < n; i++) {
            struct fs9_handle *h = fs9_registry_take(ns->handles, ids[i]);
            if (h) {
                atomic_store(&h->failed, 1);
                fs9_registry_release(ns->handles, h);
            }
        }
        free(ids);
    }
    fs9_info("unmounted %s", canon);
    fs9_mount_unref(m);
    if (ns->mount_hook)
        ns->mount_hook(ns->mount_arg, canon);
    return 0;
}

/* ---- catalog ---- */

int fs9_ns_add_provider(struct fs9_ns *ns, const struct fs9_provider_ops *ops,
                        const char *origin, void *dl, char *err,
                        size_t errlen)
{
    int rc = 0;
    pthread_mutex_lock(&ns->lock);
    for (size_t i = 0; i < ns->ncatalog; i++) {
        if (strcmp(ns->catalog[i].ops->name, ops->name) == 0) {
            snprintf(err, errlen, "provider '%s' is already registered "
                     "(by %s)", ops->name, ns->catalog[i].origin);
            rc = -EEXIST;
            goto out;
        }
    }
    if (ns->ncatalog == ns->capcatalog) {
        size_t cap = ns->capcatalog ? ns->capcatalog * 2 : 8;
        void *v = realloc(ns->catalog, cap * sizeof *ns->catalog);
        if (!v) {
            rc = -ENOMEM;
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        ns->catalog = v;
        ns->capcatalog = cap;
    }
    char *o = strdup(origin);
    if (!o) {
        rc = -ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    ns->catalog[ns->ncatalog++] =
        (struct fs9_catalog_entry){.ops = ops, .origin = o, .dl = dl};
out:
    pthread_mutex_unlock(&ns->lock);
    return rc;
}

const struct fs9_catalog_entry *fs9_ns_find_provider(struct fs9_ns *ns,
                                                     const char *name)
{
    const struct fs9_catalog_entry *e = NULL;
    pthread_mutex_lock(&ns->lock);
    for (size_t i = 0; i < ns->ncatalog && !e; i++)
        if (strcmp(ns->catalog[i].ops->name, name) == 0)
            e = &ns->catalog[i];
    pthread_mutex_unlock(&ns->lock);
    return e; /* entries are never removed before fs9_ns_free */
}

void fs9_ns_foreach_provider(struct fs9_ns *ns,
                             void (*fn)(void *arg,
                                        const struct fs9_catalog_entry *e),
                             void *arg)
{
    pthread_mutex_lock(&ns->lock);
    size_t n = ns->ncatalog;
    pthread_mutex_unlock(&ns->lock);
    for (size_t i = 0; i < n; i++)
        fn(arg, &ns->catalog[i]);
}

/* ---- life cycle ---- */

struct fs9_ns *fs9_ns_new(const struct fs9_ns_config *cfg)
{
    struct fs9_ns *ns = calloc(1, sizeof *ns);
    if (!ns)
        return NULL;
    pthread_mutex_init(&ns->lock, NULL);
    pthread_mutex_init(&ns->error_lock, NULL);
    ns->owner = cfg->owner;
    clock_gettime(CLOCK_REALTIME, &ns->birth);
    ns->mounts = fs9_mount_table_new();
    ns->handles = fs9_registry_new(handle_closed, ns);
    ns->dispatcher = fs9_dispatcher_new(&cfg->dispatch);
    if (!ns->mounts || !ns->handles || !ns->dispatcher) {
        fs9_ns_free(ns);
        return NULL;
    }
    char err[256];
    for (const struct fs9_provider_ops *const *p = fs9_builtin_providers();
         *p; p++)
        fs9_ns_add_provider(ns, *p, "built-in", NULL, err, sizeof err);
    return ns;
}

static int close_all_handles(struct fs9_ns *ns)
{
    int errors = 0;
    size_t n = 0;
    uint64_t *ids = fs9_registry_ids(ns->handles, NULL, NULL, &n);
    for (size_t i = 0; ids && i < n; i++)
        if (fs9_ns_close(ns, ids[i], 1) < 0)
            errors++;
    free(ids);
    return errors;
}

static int collect_mount(void *arg, struct fs9_mount *m)
{
    char ***list = arg;
    size_t n = 0;
    while ((*list)[n])
        n++;
    char **v = realloc(*list, (n + 2) * sizeof *v);
    if (!v)
        return -ENOMEM;
    v[n] = strdup(m->path);
    v[n + 1] = NULL;
    *list = v;
    return 0;
}

int fs9_ns_free(struct fs9_ns *ns)
{
    if (!ns)
        return 0;
    int errors = 0;
    /* Let running calls finish first, so every close below is the last. */
    if (ns->dispatcher)
        fs9_dispatcher_drain(ns->dispatcher);
    if (ns->handles)
        errors = close_all_handles(ns);
    if (ns->mounts) {
        /* Deepest first, so no mount is left under a removed one. */
        char **paths = calloc(1, sizeof *paths);
        if (paths)
            fs9_mount_table_foreach(ns->mounts, collect_mount, &paths);
        size_t n = 0;
        while (paths && paths[n])
            n++;
        for (size_t i = n; i-- > 0;) {
            struct fs9_mount *m = NULL;
            if (fs9_mount_table_remove(ns->mounts, paths[i], NULL, NULL,
                                       &m) == 0)
                fs9_mount_unref(m);
            free(paths[i]);
        }
        free(paths);
        fs9_mount_table_free(ns->mounts);
    }
    if (ns->handles)
        fs9_registry_free(ns->handles);
    if (ns->dispatcher)
        fs9_dispatcher_free(ns->dispatcher);
    for (size_t i = 0; i < ns->ncatalog; i++) {
        free(ns->catalog[i].origin);
        if (ns->catalog[i].dl)
            dlclose(ns->catalog[i].dl); /* every instance is gone */
    }
    free(ns->catalog);
    pthread_mutex_destroy(&ns->lock);
    pthread_mutex_destroy(&ns->error_lock);
    free(ns);
    return errors;
}

struct fs9_mount_table *fs9_ns_mounts(struct fs9_ns *ns)
{
    return ns->mounts;
}

struct fs9_registry *fs9_ns_handles(struct fs9_ns *ns)
{
    return ns->handles;
}

struct fs9_dispatcher *fs9_ns_dispatcher(struct fs9_ns *ns)
{
    return ns->dispatcher;
}

uid_t fs9_ns_owner(struct fs9_ns *ns)
{
    return ns->owner;
}

void fs9_ns_set_notify_hook(struct fs9_ns *ns, fs9_notify_hook hook,
                            void *arg)
{
    ns->notify_arg = arg;
    ns->notify_hook = hook;
}

void fs9_ns_set_mount_hook(struct fs9_ns *ns, fs9_mount_hook hook, void *arg)
{
    ns->mount_arg = arg;
    ns->mount_hook = hook;
}

struct timespec fs9_ns_birth(struct fs9_ns *ns)
{
    return ns->birth;
}

void fs9_ns_set_error(struct fs9_ns *ns, const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&ns->error_lock);
    va_start(ap, fmt);
    vsnprintf(ns->error, sizeof ns->error, fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&ns->error_lock);
}

size_t fs9_ns_last_error(struct fs9_ns *ns, char *buf, size_t size)
{
    pthread_mutex_lock(&ns->error_lock);
    snprintf(buf, size, "%s", ns->error);
    pthread_mutex_unlock(&ns->error_lock);
    return strlen(buf);
}

struct fs9_stats *fs9_ns_stats(struct fs9_ns *ns)
{
    return &ns->stats;
}

void fs9_ns_set_info_hook(struct fs9_ns *ns, fs9_info_hook hook, void *arg)
{
    ns->info_arg = arg;
    ns->info_hook = hook;
}

void fs9_ns_info(struct fs9_ns *ns, char *buf, size_t size, size_t *len)
{
    if (ns->info_hook)
        ns->info_hook(ns->info_arg, buf, size, len);
}
