/* plugin — see plugin.h. */
#include "core/plugin.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int valid_name(const char *s)
{
    if (!s || !*s || strlen(s) > 32)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-'))
            return 0;
    return 1;
}

/* The first required function the table lacks, or NULL. */
static const char *missing_required(const struct fs9_provider_ops *o)
{
    if (!o->create)
        return "create";
    if (!o->destroy)
        return "destroy";
    if (!o->stat)
        return "stat";
    if (!o->open)
        return "open";
    if (!o->read)
        return "read";
    if (!o->close)
        return "close";
    return NULL;
}

int fs9_plugin_load(struct fs9_ns *ns, const char *path, char *err,
                    size_t errlen)
{
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        snprintf(err, errlen, "%s: cannot load: %s", path, dlerror());
        return -ENOEXEC;
    }
    int rc = -EINVAL;
    fs9_provider_entry_fn entry;
    *(void **)&entry = dlsym(dl, FS9_PROVIDER_ENTRY);
    if (!entry) {
        snprintf(err, errlen, "%s: no %s symbol: not an FS9 plugin", path,
                 FS9_PROVIDER_ENTRY);
        goto fail;
    }
    const struct fs9_provider_ops *ops = entry();
    if (!ops) {
        snprintf(err, errlen, "%s: %s returned no provider table", path,
                 FS9_PROVIDER_ENTRY);
        goto fail;
    }
    if (ops->abi_version != FS9_PROVIDER_ABI_VERSION) {
        snprintf(err, errlen, "%s: built for provider ABI %u, this fs9 "
                 "speaks ABI %d: rebuild it against this fs9's provider.h",
                 path, ops->abi_version, FS9_PROVIDER_ABI_VERSION);
        goto fail;
    }
    if (ops->struct_size != sizeof(struct fs9_provider_ops)) {
        snprintf(err, errlen, "%s: provider table is %u bytes, ABI %d "
                 "expects %zu: rebuild it against this fs9's provider.h",
                 path, ops->struct_size, FS9_PROVIDER_ABI_VERSION,
                 sizeof(struct fs9_provider_ops));
        goto fail;
    }
    if (!valid_name(ops->name)) {
        snprintf(err, errlen, "%s: provider name '%s' is not 1-32 "
                 "characters of a-z, 0-9, '_' and '-'", path,
                 ops->name ? ops->name : "(null)");
        goto fail;
    }
    const char *miss = missing_required(ops);
    if (miss) {
        snprintf(err, errlen, "%s: provider '%s' lacks the required "
                 "function '%s'", path, ops->name, miss);
        goto fail;
    }
    char why[512];
    rc = fs9_ns_add_provider(ns, ops, path, dl, why, sizeof why);
    if (rc < 0) {
        snprintf(err, errlen, "%s: %s", path, why);
        goto fail;
    }
    return 0;
fail:
    dlclose(dl);
    return rc;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int fs9_plugin_load_dir(struct fs9_ns *ns, const char *dir,
                        fs9_plugin_report_fn report, void *arg)
{
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 3, ".so") != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **v = realloc(names, cap * sizeof *v);
            if (!v)
                break;
            names = v;
        }
        names[n] = strdup(e->d_name);
        if (names[n])
            n++;
    }
    closedir(d);
    if (n > 1)
        qsort(names, n, sizeof *names, by_name);
    int loaded = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096], err[1024];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (fs9_plugin_load(ns, path, err, sizeof err) == 0)
            loaded++;
        else if (report)
            report(arg, err);
        free(names[i]);
    }
    free(names);
    return loaded;
}
