/* config — see config.h. */
#include "core/config.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mount.h"

struct parse {
    struct fs9_conf *c;
    FILE *f;
    int line; /* of the line inih read last */
    int problems;
    fs9_conf_report_fn report;
    void *arg;
    char section[512];
    struct fs9_conf_mount *cur; /* NULL in [fs9] or a bad section */
    int bad_section;            /* skip the items of a refused section */
};

static void problem(struct parse *p, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void problem(struct parse *p, int line, const char *fmt, ...)
{
    char msg[1024];
    int n = snprintf(msg, sizeof msg, "%s:%d: ", p->c->file, line);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof msg)
        vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);
    p->problems++;
    if (p->report)
        p->report(p->arg, msg);
}

static void start_section(struct parse *p, const char *section, int line);

/* inih reads through this, so we know which line each callback is for, and
 * see section headers (inih reports none, not even empty sections). */
static char *reader(char *str, int num, void *stream)
{
    struct parse *p = stream;
    char *r = fgets(str, num, p->f);
    if (!r)
        return NULL;
    p->line++;
    const char *s = r;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '[') {
        const char *end = strchr(s, ']');
        if (end) {
            char name[512];
            size_t len = (size_t)(end - s - 1);
            if (len >= sizeof name)
                len = sizeof name - 1;
            memcpy(name, s + 1, len);
            name[len] = '\0';
            start_section(p, name, p->line);
        }
    }
    return r;
}

static int add_item(struct fs9_conf_item **items, size_t *n, const char *key,
                    const char *value, int line)
{
    struct fs9_conf_item *v = realloc(*items, (*n + 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    *items = v;
    v[*n].key = strdup(key);
    v[*n].value = strdup(value);
    v[*n].line = line;
    if (!v[*n].key || !v[*n].value)
        return -ENOMEM;
    (*n)++;
    return 0;
}

static const struct fs9_conf_item *find_item(const struct fs9_conf_item *v,
                                             size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].key, key) == 0)
            return &v[i];
    return NULL;
}

/* A section header: check it, and open a mount for [mount PATH]. */
static void start_section(struct parse *p, const char *section, int line)
{
    snprintf(p->section, sizeof p->section, "%s", section);
    p->cur = NULL;
    p->bad_section = 0;
    if (strcmp(section, "fs9") == 0 || strcmp(section, "global") == 0)
        return;
    if (strncmp(section, "mount", 5) != 0 ||
        (section[5] != ' ' && section[5] != '\t')) {
        problem(p, line, "unknown section [%s] (expected [fs9] or "
                         "[mount PATH])", section);
        p->bad_section = 1;
        return;
    }
    const char *path = section + 6;
    while (*path == ' ' || *path == '\t')
        path++;
    char canon[4096];
    int rc = fs9_path_normalize(path, canon, sizeof canon);
    if (rc < 0) {
        problem(p, line, "bad mount path '%s': %s", path,
                rc == -ENAMETOOLONG ? "too long"
                                    : "must be absolute, without '..'");
        p->bad_section = 1;
        return;
    }
    if (strcmp(canon, "/.fs9") == 0 || strncmp(canon, "/.fs9/", 6) == 0) {
        problem(p, line, "%s is reserved for the control files", canon);
        p->bad_section = 1;
        return;
    }
    for (size_t i = 0; i < p->c->nmounts; i++) {
        if (strcmp(p->c->mounts[i].path, canon) == 0) {
            problem(p, line, "duplicate mount path %s (first at line %d)",
                    canon, p->c->mounts[i].line);
            p->bad_section = 1;
            return;
        }
    }
    struct fs9_conf_mount *v =
        realloc(p->c->mounts, (p->c->nmounts + 1) * sizeof *v);
    if (!v) {
        problem(p, line, "out of memory");
        p->bad_section = 1;
        return;
    }
    p->c->mounts = v;
    p->cur = &v[p->c->nmounts++];
    memset(p->cur, 0, sizeof *p->cur);
    p->cur->path = strdup(canon);
    p->cur->line = line;
}

static int handler(void *user, const char *section, const char *name,
                   const char *value)
{
    struct parse *p = user;
    int line = p->line;
    if (p->bad_section)
        return 1;
    if (!*section) {
        problem(p, line, "'%s' outside any section (put global settings "
                         "under [fs9])", name);
        return 1;
    }
    if (!p->cur) { /* [fs9] */
        if (strcmp(name, "plugin") != 0 &&
            find_item(p->c->globals, p->c->nglobals, name)) {
            problem(p, line, "duplicate key '%s' in [%s]", name, section);
            return 1;
        }
        if (add_item(&p->c->globals, &p->c->nglobals, name, value, line) < 0)
            problem(p, line, "out of memory");
        return 1;
    }
    if (strcmp(name, "provider") == 0) {
        if (p->cur->provider) {
            problem(p, line, "duplicate key 'provider' in [%s]", section);
            return 1;
        }
        p->cur->provider = strdup(value);
        p->cur->provider_line = line;
        return 1;
    }
    if (find_item(p->cur->items, p->cur->nitems, name)) {
        problem(p, line, "duplicate key '%s' in [%s]", name, section);
        return 1;
    }
    if (add_item(&p->cur->items, &p->cur->nitems, name, value, line) < 0)
        problem(p, line, "out of memory");
    return 1;
}

int fs9_conf_load(const char *file, struct fs9_conf *out,
                  fs9_conf_report_fn report, void *arg)
{
    memset(out, 0, sizeof *out);
    out->file = strdup(file);
    if (!out->file)
        return -ENOMEM;
    struct parse p = {.c = out, .report = report, .arg = arg};
    p.f = fopen(file, "r");
    if (!p.f)
        return -errno;
    int bad = ini_parse_stream(reader, &p, handler, &p);
    fclose(p.f);
    if (bad > 0)
        problem(&p, bad, "syntax error (expected [section], key = value, or "
                         "a comment starting with # or ;)");
    else if (bad < 0)
        problem(&p, 0, "out of memory");
    for (size_t i = 0; i < out->nmounts; i++)
        if (!out->mounts[i].provider)
            problem(&p, out->mounts[i].line,
                    "[mount %s] has no provider = NAME",
                    out->mounts[i].path);
    return p.problems;
}

static void free_items(struct fs9_conf_item *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].key);
        free(v[i].value);
    }
    free(v);
}

void fs9_conf_free(struct fs9_conf *c)
{
    free_items(c->globals, c->nglobals);
    for (size_t i = 0; i < c->nmounts; i++) {
        free(c->mounts[i].path);
        free(c->mounts[i].provider);
        free_items(c->mounts[i].items, c->mounts[i].nitems);
    }
    free(c->mounts);
    free(c->file);
    memset(c, 0, sizeof *c);
}

int fs9_conf_line_of(const struct fs9_conf_item *items, size_t n,
                     const char *msg, int fallback)
{
    for (size_t i = 0; i < n; i++) {
        const char *k = items[i].key;
        size_t kl = strlen(k);
        for (const char *m = strstr(msg, k); m; m = strstr(m + 1, k)) {
            int before = m == msg || m[-1] == ' ' || m[-1] == '\'' ||
                         m[-1] == '"' || m[-1] == '(';
            char after = m[kl];
            if (before && (after == '=' || after == '\'' || after == ':' ||
                           after == '"' || after == ' '))
                return items[i].line;
        }
    }
    return fallback;
}
