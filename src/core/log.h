/*
 * log — one line per event, to stderr in the foreground and to syslog (the
 * journal) once daemonized.  The level threshold keeps per-request noise
 * out at the default level: errors and warnings only.
 */
#ifndef FS9_CORE_LOG_H
#define FS9_CORE_LOG_H

#include <stdarg.h>

#include "fs9/provider.h" /* FS9_LOG_* levels */

/** Set the program name, destination and threshold (FS9_LOG_*). */
void fs9_log_init(const char *ident, int use_syslog, int level);

/** Switch to syslog (after daemonizing) or back to stderr. */
void fs9_log_use_syslog(int on);

/** Parse "error", "warn", "info", "debug" (or 0-3); -1 when unknown. */
int fs9_log_parse_level(const char *s);

int fs9_log_level(void);

void fs9_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void fs9_vlog(int level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

#define fs9_error(...) fs9_log(FS9_LOG_ERROR, __VA_ARGS__)
#define fs9_warn(...) fs9_log(FS9_LOG_WARN, __VA_ARGS__)
#define fs9_info(...) fs9_log(FS9_LOG_INFO, __VA_ARGS__)
#define fs9_debug(...)                                                       \
    do {                                                                     \
        if (fs9_log_level() >= FS9_LOG_DEBUG)                                \
            fs9_log(FS9_LOG_DEBUG, __VA_ARGS__);                             \
    } while (0)

#endif
