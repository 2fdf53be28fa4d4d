/*
 * fs9 — mount an FS9 namespace with FUSE.
 *
 * Start-up order matters for users: everything that can fail (options,
 * the mount point, the provider's configuration, the kernel mount) is done
 * while stderr is still the terminal, and the process goes to the
 * background only once the mount is up.  So the daemon forks first, before
 * any thread exists, and the parent waits for the child to report.
 *
 * Shutdown (SIGINT, SIGTERM, SIGHUP, or umount): the request loop stops,
 * running provider calls finish and parked reads are ended, every handle
 * is closed with sync, the providers are destroyed, and the kernel mount
 * goes last.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/config.h"
#include "core/ctl.h"
#include "core/log.h"
#include "core/namespace.h"
#include "core/plugin.h"
#include "fs9_config.h"
#include "fuse/front.h"
#include "fuse/mount_helper.h"
#include "fuse/options.h"

/* To the waiting parent, in daemon mode; taken by whoever reports first. */
static atomic_int report_fd = -1;

/* Fork; the parent waits for the child's verdict and exits with it. */
static void daemon_start(void)
{
    int p[2];
    if (pipe(p) != 0) {
        perror("fs9: pipe");
        exit(1);
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("fs9: fork");
        exit(1);
    }
    if (pid > 0) {
        close(p[1]);
        char status = 1;
        ssize_t n;
        do
            n = read(p[0], &status, 1);
        while (n < 0 && errno == EINTR);
        if (n != 1) {
            /* The child died before reporting. */
            int ws;
            waitpid(pid, &ws, 0);
            status = 1;
        }
        _exit(status);
    }
    close(p[0]);
    atomic_store(&report_fd, p[1]);
    setsid();
}

static void daemon_report(int status)
{
    int fd = atomic_exchange(&report_fd, -1);
    if (fd < 0)
        return;
    char s = (char)status;
    if (write(fd, &s, 1) != 1) {
        /* The parent is gone; nothing to tell. */
    }
    close(fd);
}

static void daemon_detach(void)
{
    int fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2)
            close(fd);
    }
    if (chdir("/") != 0) {
        /* Stay where we are; nothing depends on the directory. */
    }
    fs9_log_use_syslog(1);
    daemon_report(0);
}

/* Daemon mode: the mount is working only once the kernel's FUSE_INIT has
 * been answered (libfuse ends the session there if it refuses an option,
 * max_read= for one), so the parent hears "mounted" from this thread when
 * a stat of the root has gone through the request loop.  If the connection
 * failed instead, main reports that when the loop ends. */
static void *detach_when_working(void *mountpoint)
{
    struct stat st;
    if (stat(mountpoint, &st) != 0) {
        if (errno == ECONNREFUSED || errno == ENOTCONN ||
            errno == ECONNABORTED || errno == ENODEV)
            return NULL; /* INIT refused, or the mount is gone */
        /* Answered, so the mount works; say what its root said. */
        fs9_warn("%s: stat of the root: %s", (const char *)mountpoint,
                 strerror(errno));
    }
    daemon_detach();
    return NULL;
}

/* libfuse splits an -o list at commas: escape commas and backslashes in a
 * value, such as a SOURCE path shown as fsname. */
static void opt_escape(char *out, size_t len, const char *s)
{
    size_t j = 0;
    for (; *s && j + 3 < len; s++) {
        if (*s == ',' || *s == '\\')
            out[j++] = '\\';
        out[j++] = *s;
    }
    out[j] = '\0';
}

/* ---- stopping on a signal ----
 *
 * SIGINT, SIGTERM and SIGHUP start an orderly stop.  The handler only
 * writes the signal's number to a pipe; a stop thread then, while the
 * request loop still runs, flushes what the kernel holds for us (with -o
 * writeback the page cache holds data the application was told is
 * written: syncfs starts its write-back, and an fsync of every file open
 * for writing waits for it, since syncfs no longer waits on FUSE mounts
 * (Linux 6.19, and stable kernels since: AS_NO_DATA_INTEGRITY), and only
 * then ends the loop, waking the thread
 * that runs it.  libfuse's own handlers end the loop at once, before that
 * data could reach the provider.  A signal ignored when fs9 starts (nohup,
 * background jobs of a script) stays ignored, as with libfuse. */
static int stop_pipe[2] = {-1, -1};
static atomic_int loop_ended;

struct stopper {
    struct fuse_session *se;
    struct fs9_fuse *fs;
    const char *mountpoint;
    pthread_t loop_thread;
    int writeback;
    pthread_t thread;
    int started;
};

static void on_stop_signal(int sig)
{
    int saved = errno;
    char c = (char)sig;
    if (write(stop_pipe[1], &c, 1) != 1) {
        /* A stop is already pending. */
    }
    errno = saved;
}

static void on_wake_signal(int sig)
{
    (void)sig; /* only interrupts the loop's wait */
}

static void *stop_main(void *arg)
{
    struct stopper *st = arg;
    char c = 0;
    ssize_t n;
    do
        n = read(stop_pipe[0], &c, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1 || c == 0)
        return NULL; /* the loop ended by itself (umount) */
    fs9_info("signal %d: stopping", c);
    if (st->writeback) {
        int fd = open(st->mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
            if (syncfs(fd) != 0)
                fs9_warn("syncfs of %s before stopping: %s", st->mountpoint,
                         strerror(errno));
            close(fd);
        }
        fs9_fuse_sync_open_files(st->fs, st->mountpoint);
    }
    fuse_session_exit(st->se);
    /* The loop thread waits in sem_wait() (several request threads) or
     * read() (-s): a signal without SA_RESTART makes it look again. */
    while (!atomic_load(&loop_ended)) {
        pthread_kill(st->loop_thread, SIGUSR1);
        usleep(20000);
    }
    return NULL;
}

static int install_stop_signals(struct stopper *st)
{
    if (pipe2(stop_pipe, O_CLOEXEC) != 0)
        return -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_wake_signal; /* no SA_RESTART: interrupts waits */
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    static const int stops[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof stops / sizeof stops[0]; i++) {
        struct sigaction old;
        sigaction(stops[i], NULL, &old);
        if (old.sa_handler == SIG_IGN)
            continue;
        sa.sa_handler = on_stop_signal;
        sigaction(stops[i], &sa, NULL);
    }
    sigset_t all, prev;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &prev);
    st->loop_thread = pthread_self();
    st->started = pthread_create(&st->thread, NULL, stop_main, st) == 0;
    pthread_sigmask(SIG_SETMASK, &prev, NULL);
    return st->started ? 0 : -1;
}

static void remove_stop_signals(struct stopper *st)
{
    atomic_store(&loop_ended, 1);
    static const int stops[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof stops / sizeof stops[0]; i++) {
        struct sigaction old;
        sigaction(stops[i], NULL, &old);
        if (old.sa_handler == on_stop_signal)
            signal(stops[i], SIG_DFL);
    }
    if (st->started) {
        char c = 0;
        if (write(stop_pipe[1], &c, 1) != 1) {
            /* The thread is already past its read. */
        }
        pthread_join(st->thread, NULL);
        st->started = 0;
    }
    close(stop_pipe[0]);
    close(stop_pipe[1]);
    stop_pipe[0] = stop_pipe[1] = -1;
}

/* Is `path` (canonical) itself a mount point? */
static int is_mount_point(const char *path)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f)
        return 0;
    char line[8192];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        /* id parent major:minor root mountpoint ... */
        char *save = NULL, *tok = strtok_r(line, " ", &save);
        for (int i = 0; tok && i < 4; i++)
            tok = strtok_r(NULL, " ", &save);
        if (!tok)
            continue;
        /* mountinfo escapes space, tab, newline, backslash as \ooo */
        char un[4096];
        size_t j = 0;
        for (const char *s = tok; *s && j + 1 < sizeof un; s++) {
            if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] && s[3]) {
                un[j++] = (char)(((s[1] - '0') << 6) | ((s[2] - '0') << 3) |
                                 (s[3] - '0'));
                s += 3;
            } else {
                un[j++] = *s;
            }
        }
        un[j] = '\0';
        found = strcmp(un, path) == 0;
    }
    fclose(f);
    return found;
}

/* Check the mount point; write its canonical form into `out`. */
static int check_mountpoint(const char *mp, int clear_stale, char *out)
{
    struct stat st;
    if (stat(mp, &st) != 0) {
        if (errno == ENOTCONN) {
            if (clear_stale) {
                if (umount2(mp, MNT_DETACH) != 0) {
                    char cmd[PATH_MAX + 64];
                    snprintf(cmd, sizeof cmd, "fusermount3 -u -z -- '%s'",
                             mp);
                    if (system(cmd) != 0) {
                        fprintf(stderr, "fs9: %s: could not clear the stale "
                                        "mount\n", mp);
                        return -1;
                    }
                }
                fs9_warn("cleared a stale mount at %s", mp);
                return check_mountpoint(mp, 0, out);
            }
            fprintf(stderr, "fs9: %s: a dead FUSE mount is still there "
                            "(transport endpoint is not connected); clear it "
                            "with 'fusermount3 -u %s' or mount with "
                            "-o clear_stale\n", mp, mp);
            return -1;
        }
        fprintf(stderr, "fs9: mount point %s: %s\n", mp, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "fs9: mount point %s: not a directory\n", mp);
        return -1;
    }
    if (!realpath(mp, out)) {
        fprintf(stderr, "fs9: mount point %s: %s\n", mp, strerror(errno));
        return -1;
    }
    if (is_mount_point(out)) {
        fprintf(stderr, "fs9: %s is already a mount point (unmount it "
                        "first)\n", out);
        return -1;
    }
    return 0;
}

/* --list-providers asks an instance for its capabilities: list_one makes
 * one with no settings, through this quiet host, and destroys it. */
static void list_host_log(void *ctx, int level, const char *fmt, ...)
{
    (void)ctx;
    (void)level;
    (void)fmt;
}

static struct timespec list_host_now(void *ctx, clockid_t clock_id)
{
    struct timespec ts;
    (void)ctx;
    clock_gettime(clock_id, &ts);
    return ts;
}

static void list_host_notify(void *ctx, const char *path, unsigned events)
{
    (void)ctx;
    (void)path;
    (void)events;
}

static void list_one(void *arg, const struct fs9_catalog_entry *e)
{
    (void)arg;
    printf("%-10s %-8s %-16s %s\n", e->ops->name,
           e->ops->version ? e->ops->version : "-", e->origin,
           e->ops->description ? e->ops->description : "");

    /* Capabilities belong to an instance: make one with no settings.  A
     * provider that cannot start without some (localfs: root=) says why. */
    const struct fs9_host host = {
        .abi_version = FS9_PROVIDER_ABI_VERSION,
        .struct_size = sizeof host,
        .log = list_host_log,
        .now = list_host_now,
        .notify = list_host_notify,
    };
    struct fs9_config cfg = {.items = NULL, .count = 0, .mount_path = "/"};
    char err[256] = "";
    void *self = NULL;
    if (e->ops->create(&host, &cfg, &self, err, sizeof err) < 0 || !self) {
        printf("%-10s capabilities depend on the settings (%s)\n", "",
               err[0] ? err : "it needs some");
        return;
    }
    uint64_t have = e->ops->capabilities ? e->ops->capabilities(self) : 0;
    e->ops->destroy(self);
    char names[1024];
    fs9_caps_string(have, names, sizeof names);
    printf("%-10s capabilities: %s\n", "", *names ? names : "none");
}

static void report_plugin(void *arg, const char *msg)
{
    (void)arg;
    fs9_warn("plugin refused: %s", msg);
}

/* The default plugin directory: the installed one, or — for fs9 run from
 * its build tree — the build's plugins/ next to src/fuse/. */
static const char *default_plugin_dir(char *buf, size_t len)
{
    struct stat st;
    if (stat(FS9_PLUGIN_DIR, &st) == 0)
        return FS9_PLUGIN_DIR;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return NULL;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return NULL;
    *slash = '\0';
    int w = snprintf(buf, len, "%.*s/../../plugins", PATH_MAX - 32, exe);
    char real[PATH_MAX];
    if (w > 0 && (size_t)w < len && stat(buf, &st) == 0 &&
        S_ISDIR(st.st_mode) && realpath(buf, real) &&
        strlen(real) < len) {
        strcpy(buf, real);
        return buf;
    }
    return NULL;
}

/* Load plugins from plugin_dir= (or the default directory) and each
 * plugin=; refusals are reported and the others still load. */
static void load_plugins(struct fs9_ns *ns, const struct fs9_cmdline *c)
{
    char buf[PATH_MAX];
    const char *dir = c->plugin_dir ? c->plugin_dir
                                    : default_plugin_dir(buf, sizeof buf);
    if (dir) {
        int n = fs9_plugin_load_dir(ns, dir, report_plugin, NULL);
        if (n < 0 && c->plugin_dir)
            fs9_warn("plugin_dir=%s: %s", dir, strerror(-n));
    }
    for (size_t i = 0; i < c->nplugins; i++) {
        char err[1024];
        if (fs9_plugin_load(ns, c->plugins[i], err, sizeof err) < 0)
            fs9_warn("plugin refused: %s", err);
    }
}

/* SOURCE -> provider name and its settings: "NAME:ARG" sets the setting
 * the provider names as its arg_key (localfs: root=ARG). */
static int source_provider(struct fs9_ns *ns, struct fs9_cmdline *c,
                           char *name, size_t len)
{
    const char *colon = strchr(c->source, ':');
    size_t n = colon ? (size_t)(colon - c->source) : strlen(c->source);
    if (n == 0 || n >= len) {
        fprintf(stderr, "fs9: bad SOURCE '%s' (expected memfs, localfs:DIR "
                        "or PROVIDER[:ARG])\n", c->source);
        return -1;
    }
    memcpy(name, c->source, n);
    name[n] = '\0';
    if (!colon)
        return 0;
    const struct fs9_catalog_entry *e = fs9_ns_find_provider(ns, name);
    if (!e)
        return 0; /* reported by the mount, with the list hint */
    if (!e->ops->arg_key) {
        fprintf(stderr, "fs9: provider '%s' takes no argument (%s); use "
                        "-o key=value settings\n", name, c->source);
        return -1;
    }
    const char *arg = colon + 1;
    char real[PATH_MAX];
    if (strcmp(e->ops->arg_key, "root") == 0 && realpath(arg, real))
        arg = real; /* so the daemon's chdir("/") does not matter */
    return fs9_cmdline_add_item(c, e->ops->arg_key, arg) < 0 ? -1 : 0;
}

/* Is SOURCE a configuration file rather than PROVIDER[:ARG]?  Provider
 * names are [a-z0-9_-]+, so anything else before a ':' is a file. */
static int source_is_config(const char *source)
{
    const char *p = source;
    while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
           *p == '_' || *p == '-')
        p++;
    return p == source || (*p && *p != ':');
}

static void report_conf(void *arg, const char *msg)
{
    (void)arg;
    fprintf(stderr, "fs9: %s\n", msg);
}

/* Read the configuration file, apply its [fs9] settings.  Returns the
 * number of problems (all printed). */
static int load_config(struct fs9_cmdline *c, struct fs9_conf *conf)
{
    int n = fs9_conf_load(c->source, conf, report_conf, NULL);
    if (n < 0) {
        fprintf(stderr, "fs9: configuration %s: %s\n", c->source,
                strerror(-n));
        return 1;
    }
    struct fs9_config_item *g = calloc(conf->nglobals + 1, sizeof *g);
    int *lines = calloc(conf->nglobals + 1, sizeof *lines);
    if (!g || !lines) {
        free(g);
        free(lines);
        return n + 1;
    }
    for (size_t i = 0; i < conf->nglobals; i++) {
        g[i].key = conf->globals[i].key;
        g[i].value = conf->globals[i].value;
        lines[i] = conf->globals[i].line;
    }
    n += fs9_cmdline_apply_config(c, g, lines, conf->nglobals, c->source);
    free(g);
    free(lines);
    return n;
}

/* Mount every [mount PATH] of the configuration (memfs at "/" unless the
 * file mounts something there).  Reports every failure with its line;
 * returns how many failed. */
static int mount_config(struct fs9_ns *ns, const struct fs9_conf *conf)
{
    int failed = 0, has_root = 0;
    for (size_t i = 0; i < conf->nmounts; i++)
        has_root |= strcmp(conf->mounts[i].path, "/") == 0;
    char err[1024];
    if (!has_root && fs9_ns_mount(ns, "/", "memfs", NULL, 0, err,
                                  sizeof err) < 0) {
        fprintf(stderr, "fs9: %s\n", err);
        failed++;
    }
    for (size_t i = 0; i < conf->nmounts; i++) {
        const struct fs9_conf_mount *m = &conf->mounts[i];
        if (!m->provider)
            continue; /* reported when the file was read */
        if (!fs9_ns_find_provider(ns, m->provider)) {
            fprintf(stderr, "fs9: %s:%d: unknown provider '%s' (fs9 "
                            "--list-providers shows those available)\n",
                    conf->file, m->provider_line, m->provider);
            failed++;
            continue;
        }
        struct fs9_config_item *items = calloc(m->nitems + 1, sizeof *items);
        if (!items) {
            failed++;
            continue;
        }
        for (size_t j = 0; j < m->nitems; j++) {
            items[j].key = m->items[j].key;
            items[j].value = m->items[j].value;
        }
        if (fs9_ns_mount(ns, m->path, m->provider, items, m->nitems, err,
                         sizeof err) < 0) {
            int line = fs9_conf_line_of(m->items, m->nitems, err, m->line);
            fprintf(stderr, "fs9: %s:%d: %s\n", conf->file, line, err);
            failed++;
        }
        free(items);
    }
    return failed;
}

int main(int argc, char **argv)
{
    struct fs9_cmdline c;
    int status = 1;
    fs9_mount_helper_args(&argc, &argv); /* run as /sbin/mount.fs9 */
    if (fs9_cmdline_parse(argc, argv, &c) < 0) {
        fs9_cmdline_free(&c);
        return 1;
    }
    if (c.show_help) {
        fs9_cmdline_usage("fs9");
        fs9_cmdline_free(&c);
        return 0;
    }
    if (c.show_version) {
        printf("fs9 %s (provider ABI %d, FUSE %d)\n", FS9_VERSION,
               FS9_PROVIDER_ABI_VERSION, fuse_version());
        fs9_cmdline_free(&c);
        return 0;
    }
    fs9_log_init("fs9", 0, c.log_level >= 0 ? c.log_level : FS9_LOG_WARN);

    if (c.list_providers) {
        struct fs9_ns_config nc = {.dispatch = c.dispatch, .owner = getuid()};
        struct fs9_ns *ns = fs9_ns_new(&nc);
        if (!ns) {
            fprintf(stderr, "fs9: out of memory\n");
            return 1;
        }
        load_plugins(ns, &c);
        printf("%-10s %-8s %-16s %s\n", "PROVIDER", "VERSION", "ORIGIN",
               "DESCRIPTION");
        fs9_ns_foreach_provider(ns, list_one, NULL);
        fs9_ns_free(ns);
        fs9_cmdline_free(&c);
        return 0;
    }

    char mountpoint[PATH_MAX];
    char provider[64];
    struct fs9_conf conf;
    memset(&conf, 0, sizeof conf);
    int from_config = source_is_config(c.source);
    int conf_problems = 0;
    if (from_config) {
        if (c.nitems) {
            fprintf(stderr, "fs9: setting '%s' is for a provider: with a "
                            "configuration file, put it in its [mount PATH] "
                            "section\n", c.items[0].key);
            fs9_cmdline_free(&c);
            return 1;
        }
        conf_problems = load_config(&c, &conf);
        if (conf_problems > 0)
            c.foreground = 1; /* check the mounts too, then give up */
        fs9_log_init("fs9", 0,
                     c.log_level >= 0 ? c.log_level : FS9_LOG_WARN);
    }
    if (check_mountpoint(c.mountpoint, c.clear_stale, mountpoint) < 0) {
        fs9_conf_free(&conf);
        fs9_cmdline_free(&c);
        return 1;
    }

    if (!c.foreground)
        daemon_start();

    /* Inline calls of blocking providers may hold at most half of the
     * request threads, so the others always keep receiving. */
    if (!c.dispatch.max_inline)
        c.dispatch.max_inline = c.max_threads > 1 ? c.max_threads / 2 : 1;
    struct fs9_ns_config nc = {.dispatch = c.dispatch, .owner = getuid()};
    struct fs9_ns *ns = fs9_ns_new(&nc);
    struct fs9_fuse fs;
    struct fuse_session *se = NULL;
    int fs_ready = 0;
    if (!ns) {
        fprintf(stderr, "fs9: cannot start (out of memory or threads)\n");
        goto out;
    }
    load_plugins(ns, &c);
    char err[1024];
    if (from_config) {
        if (mount_config(ns, &conf) > 0 || conf_problems > 0)
            goto out; /* every problem is reported; nothing is mounted */
    } else {
        if (source_provider(ns, &c, provider, sizeof provider) < 0)
            goto out;
        if (fs9_ns_mount(ns, "/", provider, c.items, c.nitems, err,
                         sizeof err) < 0) {
            fprintf(stderr, "fs9: %s\n", err);
            goto out;
        }
    }
    if (fs9_ns_mount_control(ns, err, sizeof err) < 0) {
        fprintf(stderr, "fs9: %s\n", err);
        goto out;
    }
    if (fs9_fuse_init(&fs, ns, &c.fuse) < 0) {
        fprintf(stderr, "fs9: cannot start: out of memory\n");
        goto out;
    }
    fs_ready = 1;

    /* libfuse arguments: our fixed options, then the user's. */
    char fsname[2048], opts[4096];
    opt_escape(fsname, sizeof fsname, c.fsname ? c.fsname : c.source);
    snprintf(opts, sizeof opts,
             "default_permissions,fsname=%s,subtype=fs9%s%s", fsname,
             c.fuse_opts ? "," : "", c.fuse_opts ? c.fuse_opts : "");
    char *fargv[] = {argv[0], "-o", opts, c.debug ? "-d" : NULL, NULL};
    struct fuse_args args = FUSE_ARGS_INIT(c.debug ? 4 : 3, fargv);
    se = fuse_session_new(&args, &fs9_fuse_ops, sizeof fs9_fuse_ops, &fs);
    fuse_opt_free_args(&args);
    if (!se) {
        fprintf(stderr, "fs9: bad mount options '%s'\n", opts);
        goto out;
    }
    fs.se = se;
    struct stopper stopper = {.se = se, .fs = &fs, .mountpoint = mountpoint,
                              .writeback = c.fuse.writeback};
    if (install_stop_signals(&stopper) != 0) {
        fprintf(stderr, "fs9: cannot install signal handlers\n");
        goto out;
    }
    if (fuse_session_mount(se, mountpoint) != 0) {
        fprintf(stderr, "fs9: cannot mount at %s (see the message above)\n",
                mountpoint);
        remove_stop_signals(&stopper);
        goto out;
    }
    if (fs9_wire_attach(se, &fs.wire, !c.fuse.kernel_killpriv) != 0) {
        fprintf(stderr, "fs9: cannot watch /dev/fuse: out of memory\n");
        fuse_session_unmount(se);
        remove_stop_signals(&stopper);
        goto out;
    }
    fs9_info("mounted %s at %s", c.source, mountpoint);
    pthread_t detacher;
    int detaching = !c.foreground &&
                    pthread_create(&detacher, NULL, detach_when_working,
                                   mountpoint) == 0;
    if (!c.foreground && !detaching)
        daemon_detach();

    int rc;
    if (c.single_thread) {
        rc = fuse_session_loop(se);
    } else {
        struct fuse_loop_config *lc = fuse_loop_cfg_create();
        fuse_loop_cfg_set_clone_fd(lc, (unsigned)c.clone_fd);
        fuse_loop_cfg_set_max_threads(lc, c.max_threads);
        rc = fuse_session_loop_mt(se, lc);
        fuse_loop_cfg_destroy(lc);
    }
    remove_stop_signals(&stopper);
    if (rc < 0)
        fs9_error("request loop ended: %s", strerror(-rc));

    /* Finish what is running (answers still reach the kernel), then close
     * every handle with sync and destroy the providers, then unmount. */
    fs9_dispatcher_drain(fs9_ns_dispatcher(ns));
    fs9_fuse_fini(&fs);
    fs_ready = 0;
    int bad = fs9_ns_free(ns);
    ns = NULL;
    if (bad)
        fs9_error("%d file(s) reported an error when closed at shutdown",
                  bad);
    fuse_session_unmount(se);
    if (detaching)
        pthread_join(detacher, NULL); /* the stat ends with the mount */
    fs9_info("unmounted %s", mountpoint);
    status = rc < 0 || bad ? 1 : 0;

out:
    if (fs_ready)
        fs9_fuse_fini(&fs);
    if (ns)
        fs9_ns_free(ns);
    if (se)
        fuse_session_destroy(se);
    fs9_conf_free(&conf);
    fs9_cmdline_free(&c);
    daemon_report(status);
    return status;
}
