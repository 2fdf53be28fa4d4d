/*
 * A stand-in for <criterion/criterion.h>, for running the core unit tests
 * under ThreadSanitizer: Criterion's runner cannot start under TSan (its
 * "inheritable arena" collides with TSan's memory layout: Criterion issue
 * #274), so bench/meson.build compiles tests/unit/test_{idmap,handle,mount}.c
 * against this header instead when b_sanitize includes thread.
 *
 * It covers what those tests use: Test(suite, name, ...) (attributes such
 * as .timeout are ignored) and the cr_assert_* macros (messages ignored).
 * Like Criterion, each test runs in its own process, so static counters
 * start at zero.  Usage: tsan_test_X [substring-of-suite::name].
 */
#ifndef FS9_CRITERION_SHIM_H
#define FS9_CRITERION_SHIM_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct fs9_shim_test {
    const char *suite, *name;
    void (*fn)(void);
};

static struct fs9_shim_test fs9_shim_tests[256];
static int fs9_shim_ntests;

static void fs9_shim_register(const char *suite, const char *name,
                              void (*fn)(void))
{
    if (fs9_shim_ntests < 256)
        fs9_shim_tests[fs9_shim_ntests++] =
            (struct fs9_shim_test){suite, name, fn};
}

static void fs9_shim_fail(const char *file, int line, const char *expr)
{
    fprintf(stderr, "%s:%d: assertion failed: %s\n", file, line, expr);
    fflush(stderr);
    abort();
}

#define Test(suite, name, ...)                                               \
    static void suite##_##name(void);                                        \
    __attribute__((constructor)) static void fs9_shim_reg_##suite##_##name(  \
        void)                                                                \
    {                                                                        \
        fs9_shim_register(#suite, #name, suite##_##name);                    \
    }                                                                        \
    static void suite##_##name(void)

#define FS9_SHIM_CHECK(cond, text)                                           \
    do {                                                                     \
        if (!(cond))                                                         \
            fs9_shim_fail(__FILE__, __LINE__, text);                         \
    } while (0)

#define cr_assert(e, ...) FS9_SHIM_CHECK((e), #e)
#define cr_assert_not(e, ...) FS9_SHIM_CHECK(!(e), "!(" #e ")")
#define cr_assert_null(e, ...) FS9_SHIM_CHECK((e) == NULL, #e " == NULL")
#define cr_assert_not_null(e, ...) FS9_SHIM_CHECK((e) != NULL, #e " != NULL")
#define cr_assert_eq(a, b, ...) FS9_SHIM_CHECK((a) == (b), #a " == " #b)
#define cr_assert_neq(a, b, ...) FS9_SHIM_CHECK((a) != (b), #a " != " #b)
#define cr_assert_gt(a, b, ...) FS9_SHIM_CHECK((a) > (b), #a " > " #b)
#define cr_assert_geq(a, b, ...) FS9_SHIM_CHECK((a) >= (b), #a " >= " #b)
#define cr_assert_lt(a, b, ...) FS9_SHIM_CHECK((a) < (b), #a " < " #b)
#define cr_assert_leq(a, b, ...) FS9_SHIM_CHECK((a) <= (b), #a " <= " #b)
#define cr_assert_str_eq(a, b, ...)                                          \
    FS9_SHIM_CHECK(strcmp((a), (b)) == 0, #a " eq " #b)
#define cr_assert_arr_eq(a, b, size, ...)                                    \
    FS9_SHIM_CHECK(memcmp((a), (b), (size)) == 0, #a " eq " #b)

int main(int argc, char **argv)
{
    int failed = 0, run = 0;
    for (int i = 0; i < fs9_shim_ntests; i++) {
        const struct fs9_shim_test *t = &fs9_shim_tests[i];
        char full[256];
        snprintf(full, sizeof(full), "%s::%s", t->suite, t->name);
        if (argc > 1 && !strstr(full, argv[1]))
            continue;
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            t->fn();
            fflush(NULL);
            exit(0);
        }
        int status = 1;
        if (pid < 0 || waitpid(pid, &status, 0) < 0)
            status = 1;
        int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        printf("[%s] %s\n", ok ? "PASS" : "FAIL", full);
        failed += !ok;
        run++;
    }
    printf("shim: %d tests, %d passed, %d failed\n", run, run - failed,
           failed);
    return failed ? 1 : 0;
}

#endif
