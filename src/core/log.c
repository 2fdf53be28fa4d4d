/* log — see log.h. */
#include "core/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>

static const char *log_ident = "fs9";
static atomic_int log_syslog;
static atomic_int log_threshold = FS9_LOG_WARN;

void fs9_log_init(const char *ident, int use_syslog, int level)
{
    log_ident = ident;
    atomic_store(&log_threshold, level);
    fs9_log_use_syslog(use_syslog);
}

void fs9_log_use_syslog(int on)
{
    if (on && !atomic_load(&log_syslog))
        openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
    atomic_store(&log_syslog, on);
}

int fs9_log_level(void)
{
    return atomic_load_explicit(&log_threshold, memory_order_relaxed);
}

int fs9_log_parse_level(const char *s)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, names[i]) == 0 || (s[0] == '0' + i && !s[1]))
            return i;
    if (strcasecmp(s, "warning") == 0)
        return FS9_LOG_WARN;
    return -1;
}

void fs9_vlog(int level, const char *fmt, va_list ap)
{
    static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
    static const char *const tag[] = {"error", "warning", "info", "debug"};
    if (level > fs9_log_level())
        return;
    if (level < 0)
        level = 0;
    if (level > 3)
        level = 3;
    if (atomic_load(&log_syslog)) {
        vsyslog(prio[level], fmt, ap);
        return;
    }
    /* One write per line so lines from several threads do not mix. */
    char line[1024];
    int n = snprintf(line, sizeof line, "%s: %s: ", log_ident, tag[level]);
    if (n < 0 || (size_t)n >= sizeof line)
        n = 0;
    int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    fwrite(line, 1, len, stderr);
}

void fs9_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fs9_vlog(level, fmt, ap);
    va_end(ap);
}
