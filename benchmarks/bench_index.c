/*
 * bench_index - speed and memory of engine/index on synthetic hashes.
 *
 * Usage: bench_index [--sizes 1000000,10000000] [--reps 5] [--queries 2000]
 *                    [--data uniform,clustered] [--substrings K]
 *                    [--entry-bits E] [--threshold 31] [--wide-ids] [--json]
 *
 * For each size and data set it bulk-builds an index, then runs a query mix
 * at the threshold: single queries (1 hash) and dihedral queries (8 hashes),
 * through multi-index hashing (the method the index picks) and through the
 * brute-force SIMD scan, which is the baseline measured in the same run.
 * Rates are medians over --reps runs; the scan gets fewer queries because it
 * is slow. Every query's MIH result is checked against the scan's on a
 * sample, so a fast wrong answer cannot pass unnoticed.
 *
 * The data ("uniform" or "clustered") and the query mix are described in
 * index_data.h. To compare two builds of the engine on a noisy machine, use
 * ab_index, which runs them side by side in one process.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cordon_cpu.h"
#include "cordon_index.h"
#include "index_data.h"

static double now(void)
{
    return bench_clock(CLOCK_MONOTONIC);
}

/* CPU time of this thread: on a shared machine it is what "one core"
 * means; the wall clock also counts time other processes took. */
static double cpu_now(void)
{
    return bench_clock(CLOCK_THREAD_CPUTIME_ID);
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

typedef struct {
    double cpu; /* queries per CPU second, median over repetitions */
    double wall;
} rate_t;

/* Runs queries [0, nq) of the set reps times; returns the median rates. */
static rate_t rate(const cordon_index_t *idx, const cordon_hash256_t *qs,
                   int nvar, size_t nq, int t, cordon_index_method_t m,
                   int reps, size_t *hits)
{
    double r[64], w[64];
    cordon_index_results_t res = {0};
    cordon_index_query_opts_t o = {0};
    o.method = m;
    *hits = 0;
    for (int k = 0; k < reps; k++) {
        double t0 = now(), c0 = cpu_now();
        size_t h = 0;
        for (size_t i = 0; i < nq; i++) {
            if (cordon_index_query(idx, &qs[i * (size_t)nvar], nvar, t, &o,
                                   &res)) {
                fprintf(stderr, "query failed\n");
                exit(2);
            }
            h += res.count;
        }
        r[k] = (double)nq / (cpu_now() - c0);
        w[k] = (double)nq / (now() - t0);
        *hits = h;
    }
    cordon_index_results_free(&res);
    rate_t out = {bench_median(r, reps), bench_median(w, reps)};
    return out;
}

static int same_results(const cordon_index_t *idx, const cordon_hash256_t *q,
                        int nvar, int t)
{
    cordon_index_results_t a = {0}, b = {0};
    cordon_index_query_opts_t oa = {0}, ob = {0};
    oa.method = CORDON_INDEX_AUTO;
    ob.method = CORDON_INDEX_SCAN;
    int ok = !cordon_index_query(idx, q, nvar, t, &oa, &a) &&
             !cordon_index_query(idx, q, nvar, t, &ob, &b) &&
             a.count == b.count;
    for (size_t i = 0; ok && i < a.count; i++)
        ok = a.hits[i].id == b.hits[i].id &&
             a.hits[i].distance == b.hits[i].distance &&
             a.hits[i].variant == b.hits[i].variant;
    cordon_index_results_free(&a);
    cordon_index_results_free(&b);
    return ok;
}

int main(int argc, char **argv)
{
    const char *sizes = "1000000,10000000", *data = "uniform,clustered";
    int reps = 5, json = 0, t = 31, wide = 0;
    size_t nqueries = 2000;
    cordon_index_opts_t opts;
    cordon_index_opts_default(&opts);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--wide-ids")) {
            wide = 1;
        } else if (!strcmp(a, "--sizes") && v) {
            sizes = v, i++;
        } else if (!strcmp(a, "--data") && v) {
            data = v, i++;
        } else if (!strcmp(a, "--reps") && v) {
            reps = atoi(v), i++;
        } else if (!strcmp(a, "--queries") && v) {
            nqueries = (size_t)atol(v), i++;
        } else if (!strcmp(a, "--substrings") && v) {
            opts.substrings = atoi(v), i++;
        } else if (!strcmp(a, "--entry-bits") && v) {
            opts.entry_bits = atoi(v), i++;
        } else if (!strcmp(a, "--threshold") && v) {
            t = atoi(v), i++;
        } else {
            fprintf(stderr,
                    "usage: %s [--sizes N,N] [--data uniform,clustered] "
                    "[--reps R] [--queries Q] [--substrings K] "
                    "[--entry-bits E] [--threshold T] [--wide-ids] "
                    "[--json]\n",
                    argv[0]);
            return 2;
        }
    }
    if (reps < 1 || reps > 64 || nqueries < 10) {
        fprintf(stderr, "bench_index: bad --reps or --queries\n");
        return 2;
    }
    if (!json)
        printf("# bench_index: path %s, threshold %d, %zu queries x %d "
               "reps (medians); scan baseline on %zu queries x 3 reps\n"
               "# query mix: 50%% stored hashes with 0..40 bits flipped, "
               "50%% random; dihedral = that hash + 7 random variants\n"
               "# rates are queries per CPU second of this thread (one "
               "core); dih_wall/s is the wall clock\n"
               "# ids: %s\n",
               cordon_cpu_path_name(), t, nqueries, reps, nqueries / 20,
               wide ? "above 2^32 (43 bits per record beyond the 21 the "
                      "hash carries at 10M)"
                    : "0..n-1 (3 bits per record beyond the 21 the hash "
                      "carries at 10M)");
    if (!json)
        printf("%-9s %-9s %7s %6s %4s %9s %8s %8s %8s %8s %6s %6s %6s\n",
               "size", "data", "build_s", "B/hash", "subs", "single/s", "dih/s",
               "dih_wall", "scan1/s", "scan8/s", "x_1", "x_8", "hits/q");
    char *sl = strdup(sizes);
    for (char *ss = strtok(sl, ","); ss; ss = strtok(NULL, ",")) {
        size_t n = (size_t)atol(ss);
        char *dl = strdup(data);
        char *save = NULL;
        for (char *ds = strtok_r(dl, ",", &save); ds;
             ds = strtok_r(NULL, ",", &save)) {
            int clustered = !strcmp(ds, "clustered");
            cordon_hash256_t *h = malloc(n * sizeof *h);
            uint64_t *id = malloc(n * sizeof *id);
            cordon_hash256_t *q1 = malloc(nqueries * sizeof *q1);
            cordon_hash256_t *q8 = malloc(nqueries * 8 * sizeof *q8);
            if (!h || !id || !q1 || !q8) {
                fprintf(stderr, "bench_index: out of memory\n");
                return 2;
            }
            bench_index_data(n, clustered, h, nqueries, q1, q8);
            for (size_t i = 0; i < n; i++)
                id[i] = wide ? 0x100000000ull + i * 7919 : i;
            cordon_index_t *idx = NULL;
            if (cordon_index_create(&opts, &idx)) {
                fprintf(stderr, "bench_index: bad options\n");
                return 2;
            }
            long rss0 = rss_kb();
            double t0 = now(), c0 = cpu_now();
            int err = cordon_index_add_bulk(idx, h, id, NULL, n, NULL);
            double build = now() - t0, build_cpu = cpu_now() - c0;
            /* Cross-check of cordon_index_memory() from the kernel's view. */
            double rss_bph = (double)(rss_kb() - rss0) * 1024.0 / (double)n;
            if (err) {
                fprintf(stderr, "bench_index: build failed (%d)\n", err);
                return 2;
            }
            cordon_index_stats_t st;
            cordon_index_stats(idx, &st);
            size_t hs, hd, hx;
            rate_t single =
                rate(idx, q1, 1, nqueries, t, CORDON_INDEX_AUTO, reps, &hs);
            rate_t dih =
                rate(idx, q8, 8, nqueries, t, CORDON_INDEX_AUTO, reps, &hd);
            size_t nscan = nqueries / 20;
            rate_t scan1 =
                rate(idx, q1, 1, nscan, t, CORDON_INDEX_SCAN, 3, &hx);
            rate_t scan8 =
                rate(idx, q8, 8, nscan, t, CORDON_INDEX_SCAN, 3, &hx);
            int bad = 0;
            for (size_t i = 0; i < nscan; i++)
                bad += !same_results(idx, &q8[i * 8], 8, t) +
                       !same_results(idx, &q1[i], 1, t);
            double bph = (double)st.memory / (double)st.entries;
            if (json) {
                printf("{\"bench\":\"index\",\"size\":%zu,\"data\":\"%s\","
                       "\"threshold\":%d,\"path\":\"%s\",\"wide_ids\":%d,"
                       "\"build_s\":%.3f,\"build_cpu_s\":%.3f,"
                       "\"bytes_per_hash\":%.2f,\"rss_bytes_per_hash\":%.2f,"
                       "\"substrings\":%d,\"entry_bits\":%d,"
                       "\"page_records\":%d,"
                       "\"single_qps\":%.1f,\"dihedral_qps\":%.1f,"
                       "\"single_qps_wall\":%.1f,\"dihedral_qps_wall\":%.1f,"
                       "\"scan_single_qps\":%.2f,\"scan_dihedral_qps\":%.2f,"
                       "\"hits_per_query\":%.3f,\"mismatches\":%d}\n",
                       n, ds, t, cordon_cpu_path_name(), wide, build, build_cpu,
                       bph, rss_bph, st.substrings, st.entry_bits,
                       st.page_records, single.cpu, dih.cpu, single.wall,
                       dih.wall, scan1.cpu, scan8.cpu,
                       (double)hd / (double)nqueries, bad);
            } else {
                printf("%-9zu %-9s %7.2f %6.1f %4d %9.0f %8.0f %8.0f %8.1f "
                       "%8.1f %6.1f %6.1f %6.2f%s\n",
                       n, ds, build, bph, st.substrings, single.cpu, dih.cpu,
                       dih.wall, scan1.cpu, scan8.cpu, single.cpu / scan1.cpu,
                       dih.cpu / scan8.cpu, (double)hd / (double)nqueries,
                       bad ? "  MISMATCH" : "");
            }
            fflush(stdout);
            cordon_index_free(idx);
            free(h);
            free(id);
            free(q1);
            free(q8);
            if (bad)
                return 1;
        }
        free(dl);
    }
    free(sl);
    return 0;
}
