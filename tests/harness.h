/*
 * harness.h - the test harness: plain C, one process per tests/test_*.c.
 *
 * A test file defines TEST(name) functions and a main() that calls RUN(name)
 * for each and returns TH_END(). Every failed CHECK prints the expression,
 * both values and file:line, and marks the current test failed. The closing
 * line "# <prog>: N passed, M failed" is what tests/run.sh sums up.
 */
#ifndef CORDON_TEST_HARNESS_H
#define CORDON_TEST_HARNESS_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int th_passed, th_failed, th_cur_failed;
static const char *th_prog = "test";

#define TEST(name) static void name(void)

#define TH_FAIL_HDR() fprintf(stderr, "  FAIL %s:%d: ", __FILE__, __LINE__)

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            TH_FAIL_HDR();                                                     \
            fprintf(stderr, "CHECK(%s)\n", #cond);                             \
            th_cur_failed++;                                                   \
        }                                                                      \
    } while (0)

#define CHECK_MSG(cond, ...)                                                   \
    do {                                                                       \
        if (!(cond)) {                                                         \
            TH_FAIL_HDR();                                                     \
            fprintf(stderr, "CHECK(%s): ", #cond);                             \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
            th_cur_failed++;                                                   \
        }                                                                      \
    } while (0)

#define TH_CMP_INT(a, b, op)                                                   \
    do {                                                                       \
        long long th_a = (long long)(a), th_b = (long long)(b);                \
        if (!(th_a op th_b)) {                                                 \
            TH_FAIL_HDR();                                                     \
            fprintf(stderr, "%s %s %s (%lld vs %lld)\n", #a, #op, #b, th_a,    \
                    th_b);                                                     \
            th_cur_failed++;                                                   \
        }                                                                      \
    } while (0)

#define CHECK_EQ(a, b) TH_CMP_INT(a, b, ==)
#define CHECK_NE(a, b) TH_CMP_INT(a, b, !=)
#define CHECK_LT(a, b) TH_CMP_INT(a, b, <)
#define CHECK_LE(a, b) TH_CMP_INT(a, b, <=)
#define CHECK_GT(a, b) TH_CMP_INT(a, b, >)
#define CHECK_GE(a, b) TH_CMP_INT(a, b, >=)

#define CHECK_STREQ(a, b)                                                      \
    do {                                                                       \
        const char *th_sa = (a), *th_sb = (b);                                 \
        if (!th_sa || !th_sb || strcmp(th_sa, th_sb) != 0) {                   \
            TH_FAIL_HDR();                                                     \
            fprintf(stderr, "%s == %s (\"%s\" vs \"%s\")\n", #a, #b,           \
                    th_sa ? th_sa : "(null)", th_sb ? th_sb : "(null)");       \
            th_cur_failed++;                                                   \
        }                                                                      \
    } while (0)

/* Fails the test and returns from it: for preconditions the rest needs. */
#define REQUIRE(cond)                                                          \
    do {                                                                       \
        if (!(cond)) {                                                         \
            TH_FAIL_HDR();                                                     \
            fprintf(stderr, "REQUIRE(%s)\n", #cond);                           \
            th_cur_failed++;                                                   \
            return;                                                            \
        }                                                                      \
    } while (0)

#define RUN(name) th_run(#name, name)

static inline void th_run(const char *name, void (*fn)(void))
{
    th_cur_failed = 0;
    fn();
    if (th_cur_failed) {
        th_failed++;
        printf("not ok %s\n", name);
    } else {
        th_passed++;
        printf("ok %s\n", name);
    }
    fflush(stdout);
}

static inline void th_init(const char *argv0)
{
    const char *s = strrchr(argv0, '/');
    th_prog = s ? s + 1 : argv0;
}

#define TH_END()                                                               \
    (printf("# %s: %d passed, %d failed\n", th_prog, th_passed, th_failed),    \
     th_failed ? 1 : 0)

#endif
