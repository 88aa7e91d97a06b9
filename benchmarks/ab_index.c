/*
 * ab_index - compares builds of engine/index side by side in one process.
 *
 * Usage: ab_index [--size 10000000] [--data uniform|clustered]
 *                 [--rounds 20] [--queries 100] [--variants 8]
 *                 [--threshold 31] [--json] LIB.so LIB.so [LIB.so...]
 *
 * On a shared machine the same binary's rate moves by tens of percent
 * between neighbouring runs, which hides the few percent a change to the
 * index is worth. So this loads each LIB.so (libcordon.so of the builds
 * to compare, e.g. from a worktree of another commit; the same path may be
 * given twice, as a control) as a separate instance, builds an index with
 * each from the same hashes, and runs the same queries through each in
 * turn: --rounds rounds of --queries queries, the arm that starts rotating
 * every round, so that every arm sees the same moments of the machine.
 * It reports each arm's median rate (queries per CPU second of this
 * thread) and the median of its per-round ratio to the first arm; the
 * spread of an identical control arm's ratio around 1 is the noise floor
 * of the comparison. Then it checks on the first 200 queries that every
 * arm returns exactly what the first does (ids, distances, variants).
 *
 * The data and the query mix are bench_index's (index_data.h); --variants 8
 * runs dihedral queries, 1 single ones.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cordon_index.h"
#include "index_data.h"

#define MAX_ARMS 8
#define CHECK_QUERIES 200

typedef struct {
    const char *path;
    void *dl;
    int (*create)(const cordon_index_opts_t *, cordon_index_t **);
    int (*add_bulk)(cordon_index_t *, const cordon_hash256_t *,
                    const uint64_t *, const uint8_t *, size_t, size_t *);
    int (*query)(const cordon_index_t *, const cordon_hash256_t *, int, int,
                 const cordon_index_query_opts_t *, cordon_index_results_t *);
    size_t (*memory)(const cordon_index_t *);
    void (*results_free)(cordon_index_results_t *);
    void (*index_free)(cordon_index_t *);
    cordon_index_t *idx;
    cordon_index_results_t res;
    double *rate; /* per round */
    double *ratio;
    size_t hits;
    int mismatches;
} arm_t;

/* Loads a private instance of the library at path: dlopen() shares one
 * instance per file, so it opens a temporary copy. */
static int arm_load(arm_t *a, const char *path)
{
    const char *dir = getenv("TMPDIR");
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s/ab_index-XXXXXX.so", dir ? dir : "/tmp");
    int out = mkstemps(tmp, 3);
    FILE *in = fopen(path, "rb");
    if (out < 0 || !in) {
        fprintf(stderr, "ab_index: %s: cannot copy\n", path);
        if (in)
            fclose(in);
        if (out >= 0) {
            close(out);
            unlink(tmp);
        }
        return -1;
    }
    char buf[1 << 16];
    size_t k;
    int ok = 1;
    while (ok && (k = fread(buf, 1, sizeof buf, in)) > 0)
        ok = write(out, buf, k) == (ssize_t)k;
    ok = ok && !ferror(in);
    fclose(in);
    close(out);
    a->dl = ok ? dlopen(tmp, RTLD_NOW | RTLD_LOCAL) : NULL;
    unlink(tmp); /* the mapping outlives the name */
    if (!a->dl) {
        fprintf(stderr, "ab_index: %s: %s\n", path,
                ok ? dlerror() : "cannot copy");
        return -1;
    }
    a->path = path;
    *(void **)&a->create = dlsym(a->dl, "cordon_index_create");
    *(void **)&a->add_bulk = dlsym(a->dl, "cordon_index_add_bulk");
    *(void **)&a->query = dlsym(a->dl, "cordon_index_query");
    *(void **)&a->memory = dlsym(a->dl, "cordon_index_memory");
    *(void **)&a->results_free = dlsym(a->dl, "cordon_index_results_free");
    *(void **)&a->index_free = dlsym(a->dl, "cordon_index_free");
    if (!a->create || !a->add_bulk || !a->query || !a->memory ||
        !a->results_free || !a->index_free) {
        fprintf(stderr, "ab_index: %s: not a libcordon\n", path);
        return -1;
    }
    return 0;
}

static int same_hits(const cordon_index_results_t *x,
                     const cordon_index_results_t *y)
{
    if (x->count != y->count)
        return 0;
    for (size_t i = 0; i < x->count; i++)
        if (x->hits[i].id != y->hits[i].id ||
            x->hits[i].distance != y->hits[i].distance ||
            x->hits[i].variant != y->hits[i].variant)
            return 0;
    return 1;
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--size N] [--data uniform|clustered] [--rounds R] "
            "[--queries Q] [--variants 1|8] [--threshold T] [--json] "
            "LIB.so LIB.so [LIB.so...]\n",
            argv0);
}

int main(int argc, char **argv)
{
    size_t n = 10000000, nq = 100;
    int rounds = 20, nvar = 8, t = 31, json = 0, clustered = 0;
    const char *libs[MAX_ARMS];
    int na = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--size") && v) {
            n = (size_t)atol(v), i++;
        } else if (!strcmp(a, "--data") && v) {
            clustered = !strcmp(v, "clustered"), i++;
            if (!clustered && strcmp(v, "uniform")) {
                usage(argv[0]);
                return 2;
            }
        } else if (!strcmp(a, "--rounds") && v) {
            rounds = atoi(v), i++;
        } else if (!strcmp(a, "--queries") && v) {
            nq = (size_t)atol(v), i++;
        } else if (!strcmp(a, "--variants") && v) {
            nvar = atoi(v), i++;
        } else if (!strcmp(a, "--threshold") && v) {
            t = atoi(v), i++;
        } else if (a[0] != '-' && na < MAX_ARMS) {
            libs[na++] = a;
        } else {
            usage(argv[0]);
            return 2;
        }
    }
    if (na < 2 || n < 1000 || nq < 1 || rounds < 1 || rounds > 1000 ||
        (nvar != 1 && nvar != 8)) {
        usage(argv[0]);
        return 2;
    }
    size_t total = nq * (size_t)rounds;
    cordon_hash256_t *h = malloc(n * sizeof *h);
    uint64_t *id = malloc(n * sizeof *id);
    cordon_hash256_t *q1 = malloc(total * sizeof *q1);
    cordon_hash256_t *q8 = malloc(total * 8 * sizeof *q8);
    arm_t *arm = calloc((size_t)na, sizeof *arm);
    if (!h || !id || !q1 || !q8 || !arm) {
        fprintf(stderr, "ab_index: out of memory\n");
        return 2;
    }
    bench_index_data(n, clustered, h, total, q1, q8);
    for (size_t i = 0; i < n; i++)
        id[i] = i;
    const cordon_hash256_t *qs = nvar == 8 ? q8 : q1;
    for (int a = 0; a < na; a++) {
        arm_t *x = &arm[a];
        cordon_index_opts_t o;
        memset(&o, 0, sizeof o); /* the defaults, without calling a build */
        x->rate = malloc((size_t)rounds * sizeof *x->rate);
        x->ratio = malloc((size_t)rounds * sizeof *x->ratio);
        if (!x->rate || !x->ratio) {
            fprintf(stderr, "ab_index: out of memory\n");
            return 2;
        }
        if (arm_load(x, libs[a]))
            return 2;
        if (x->create(&o, &x->idx) ||
            x->add_bulk(x->idx, h, id, NULL, n, NULL)) {
            fprintf(stderr, "ab_index: %s: cannot build the index\n", libs[a]);
            return 2;
        }
    }
    free(h);
    free(id);
    cordon_index_query_opts_t qo;
    memset(&qo, 0, sizeof qo);
    for (int k = 0; k < rounds; k++) {
        for (int s = 0; s < na; s++) {
            arm_t *x = &arm[(s + k) % na];
            double c0 = bench_clock(CLOCK_THREAD_CPUTIME_ID);
            for (size_t i = (size_t)k * nq; i < (size_t)(k + 1) * nq; i++) {
                if (x->query(x->idx, &qs[i * (size_t)nvar], nvar, t, &qo,
                             &x->res)) {
                    fprintf(stderr, "ab_index: %s: query failed\n", x->path);
                    return 2;
                }
                x->hits += x->res.count;
            }
            x->rate[k] =
                (double)nq / (bench_clock(CLOCK_THREAD_CPUTIME_ID) - c0);
        }
        for (int a = 0; a < na; a++)
            arm[a].ratio[k] = arm[a].rate[k] / arm[0].rate[k];
    }
    size_t ncheck = total < CHECK_QUERIES ? total : CHECK_QUERIES;
    int bad = 0;
    for (size_t i = 0; i < ncheck; i++) {
        for (int a = 0; a < na; a++)
            if (arm[a].query(arm[a].idx, &qs[i * (size_t)nvar], nvar, t, &qo,
                             &arm[a].res)) {
                fprintf(stderr, "ab_index: %s: query failed\n", arm[a].path);
                return 2;
            }
        for (int a = 1; a < na; a++)
            if (!same_hits(&arm[a].res, &arm[0].res)) {
                arm[a].mismatches++;
                bad = 1;
            }
    }
    if (!json)
        printf("# ab_index: %zu %s hashes, threshold %d, %s queries, %d "
               "rounds of %zu, arms in rotating order\n"
               "# rate: median queries per CPU second of this thread; "
               "ratio: median of the per-round rate / arm 0's\n"
               "%-4s %8s %9s %7s %10s %s\n",
               n, clustered ? "clustered" : "uniform", t,
               nvar == 8 ? "dihedral" : "single", rounds, nq, "arm", "B/hash",
               "rate/s", "ratio", "mismatches", "library");
    for (int a = 0; a < na; a++) {
        arm_t *x = &arm[a];
        double bph = (double)x->memory(x->idx) / (double)n;
        double rate = bench_median(x->rate, rounds);
        double ratio = bench_median(x->ratio, rounds);
        if (json)
            printf("{\"bench\":\"ab_index\",\"arm\":%d,\"library\":\"%s\","
                   "\"size\":%zu,\"data\":\"%s\",\"variants\":%d,"
                   "\"threshold\":%d,\"rounds\":%d,\"queries\":%zu,"
                   "\"bytes_per_hash\":%.2f,\"qps\":%.1f,\"ratio\":%.4f,"
                   "\"hits\":%zu,\"mismatches\":%d}\n",
                   a, x->path, n, clustered ? "clustered" : "uniform", nvar, t,
                   rounds, nq, bph, rate, ratio, x->hits, x->mismatches);
        else
            printf("%-4d %8.2f %9.1f %7.3f %10d %s\n", a, bph, rate, ratio,
                   x->mismatches, x->path);
        x->results_free(&x->res);
        x->index_free(x->idx);
        free(x->rate);
        free(x->ratio);
    }
    free(q1);
    free(q8);
    free(arm);
    return bad;
}
