/*
 * bench_hashdb - bulk import of N PDQ hashes through the batch API, loading
 * every hash back (what the in-memory index does at start-up), an exact PDQ
 * lookup (a full scan: PDQ is not indexed by value), and the database size
 * per hash.
 *
 * Baseline, measured in the same run: raw LMDB appends of the same number of
 * 33-byte values (one table, sequential keys, same batch size), i.e. the
 * least any LMDB-backed store can do; ratios against it hold on a noisy
 * machine.
 *
 * Usage: bench_hashdb [--n N] [--batch B] [--runs R] [--dir DIR] [--sync]
 *                     [--keep]
 *   --n      hashes (default 1000000)
 *   --batch  items per transaction (default 20000)
 *   --runs   repetitions of the cheap measurements (median reported);
 *            the import itself runs R times only when N <= 1000000
 *   --dir    where the databases go (default $CORDON_CACHE or
 *            ~/.cache/cordon, subdirectory bench-hashdb)
 *   --sync   fsync at every commit (default: MDB_NOSYNC, as a bulk load
 *            would; the import is redone safely if the machine dies)
 * Output: one JSON object per line on stdout, then a table on stderr.
 */
#include <errno.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cordon_error.h"
#include "hdb.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void make_hash(uint64_t i, cordon_hash256_t *h)
{
    uint64_t s = i * 0x2545f4914f6cdd1dull + 7;
    for (int k = 0; k < 4; k++)
        h->w[k] = splitmix(&s);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void rm_db(const char *path)
{
    char lock[1100];
    snprintf(lock, sizeof lock, "%s-lock", path);
    unlink(path);
    unlink(lock);
}

static int mkdirs(const char *dir)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            mkdir(tmp, 0755);
            *p = '/';
        }
    }
    return mkdir(tmp, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

/* Raw LMDB: N sequential appends of 33-byte values. */
static double bench_raw(const char *path, uint64_t n, uint64_t batch, int sync)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    rm_db(path);
    mdb_env_create(&env);
    mdb_env_set_mapsize(env, (size_t)(n * 120 + (64 << 20)));
    if (mdb_env_open(env, path, MDB_NOSUBDIR | (sync ? 0 : MDB_NOSYNC), 0644))
        return -1;
    double t0 = now_s();
    for (uint64_t i = 0; i < n;) {
        mdb_txn_begin(env, NULL, 0, &txn);
        mdb_dbi_open(txn, NULL, 0, &dbi);
        mdb_cursor_open(txn, dbi, &cur);
        for (uint64_t end = i + batch; i < n && i < end; i++) {
            uint8_t kb[8], vb[33];
            cordon_hash256_t h;
            make_hash(i, &h);
            for (int k = 0; k < 8; k++)
                kb[k] = (uint8_t)((i + 1) >> (56 - 8 * k));
            memcpy(vb, &h, 32);
            vb[32] = 90;
            MDB_val k = {8, kb}, v = {33, vb};
            if (mdb_cursor_put(cur, &k, &v, MDB_APPEND))
                return -1;
        }
        if (mdb_txn_commit(txn))
            return -1;
    }
    double t = now_s() - t0;
    mdb_env_close(env);
    rm_db(path);
    return t;
}

static double bench_import(const char *path, uint64_t n, uint64_t batch,
                           int sync)
{
    hdb_t *db;
    hdb_opts_t o = {0};
    o.nosync = !sync;
    rm_db(path);
    if (hdb_open(path, &o, &db) != CORDON_OK)
        return -1;
    hdb_bank_spec_t bs = {"BENCH", 1, NULL, NULL, 0};
    if (hdb_bank_create(db, &bs, NULL) != CORDON_OK)
        return -1;
    const char *labels[] = {"entity:bench"};
    double t0 = now_s();
    for (uint64_t i = 0; i < n;) {
        hdb_batch_t *b;
        if (hdb_batch_begin(db, &b) != CORDON_OK)
            return -1;
        for (uint64_t end = i + batch; i < n && i < end; i++) {
            hdb_signal_t s;
            memset(&s, 0, sizeof s);
            s.type = HDB_SIG_PDQ;
            s.quality = 90;
            make_hash(i, &s.pdq);
            hdb_item_spec_t spec;
            memset(&spec, 0, sizeof spec);
            spec.bank = "BENCH";
            spec.labels = labels;
            spec.nlabels = 1;
            spec.prov.source = HDB_SOURCE_FILE;
            spec.prov.added_at = 1700000000;
            spec.signals = &s;
            spec.nsignals = 1;
            /* As hdb_import does by default: deduplicate PDQ hashes. */
            if (hdb_batch_add(b, &spec, 0) != CORDON_OK)
                return -1;
        }
        hdb_batch_result_t br;
        int rc = hdb_batch_commit(b, NULL, &br);
        if (rc != CORDON_OK) {
            fprintf(stderr, "commit: %s\n", cordon_strerror(rc));
            return -1;
        }
    }
    double t = now_s() - t0;
    hdb_close(db);
    return t;
}

typedef struct {
    uint64_t n;
    uint64_t xor ;
} iter_ctx_t;

static int count_hashes(void *ctx, const hdb_hash_entry_t *e, size_t n)
{
    iter_ctx_t *c = ctx;
    for (size_t i = 0; i < n; i++)
        c->xor ^= e[i].hash.w[0] ^ e[i].item_id;
    c->n += n;
    return 0;
}

int main(int argc, char **argv)
{
    uint64_t n = 1000000, batch = 20000;
    int runs = 3, sync = 0, keep = 0;
    char dir[900];
    const char *cache = getenv("CORDON_CACHE");
    const char *home = getenv("HOME");
    if (cache && *cache)
        snprintf(dir, sizeof dir, "%s/bench-hashdb", cache);
    else
        snprintf(dir, sizeof dir, "%s/.cache/cordon/bench-hashdb",
                 home ? home : "/tmp");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--n") && i + 1 < argc)
            n = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            batch = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            snprintf(dir, sizeof dir, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--sync"))
            sync = 1;
        else if (!strcmp(argv[i], "--keep"))
            keep = 1;
        else {
            fprintf(stderr,
                    "usage: %s [--n N] [--batch B] [--runs R] [--dir DIR] "
                    "[--sync] [--keep]\n",
                    argv[0]);
            return 2;
        }
    }
    if (n == 0 || batch == 0 || runs < 1 || runs > 99 || mkdirs(dir)) {
        fprintf(stderr, "bad arguments or cannot create %s\n", dir);
        return 2;
    }
    char path[1000], rawpath[1000];
    snprintf(path, sizeof path, "%s/bench.cordon", dir);
    snprintf(rawpath, sizeof rawpath, "%s/raw.lmdb", dir);
    int import_runs = n <= 1000000 ? runs : 1;
    double t_raw[99], t_imp[99], t_iter[99], t_look[99];

    for (int r = 0; r < import_runs; r++) {
        t_raw[r] = bench_raw(rawpath, n, batch, sync);
        t_imp[r] = bench_import(path, n, batch, sync);
        if (t_raw[r] < 0 || t_imp[r] < 0) {
            fprintf(stderr, "benchmark failed\n");
            return 1;
        }
    }
    double raw = median(t_raw, import_runs), imp = median(t_imp, import_runs);

    hdb_t *db;
    hdb_opts_t o = {0};
    o.readonly = 1;
    if (hdb_open(path, &o, &db) != CORDON_OK)
        return 1;
    iter_ctx_t ic = {0, 0};
    for (int r = 0; r < runs; r++) {
        ic.n = 0;
        double t0 = now_s();
        if (hdb_iter_hashes(db, HDB_ITER_PDQ, count_hashes, &ic, NULL))
            return 1;
        t_iter[r] = now_s() - t0;
    }
    if (ic.n != n) {
        fprintf(stderr, "iteration saw %llu hashes, not %llu\n",
                (unsigned long long)ic.n, (unsigned long long)n);
        return 1;
    }
    double iter = median(t_iter, runs);

    /* PDQ is not indexed by value: an exact lookup scans every item. */
    const uint64_t nl = 3;
    for (int r = 0; r < runs; r++) {
        uint64_t s = 12345 + (uint64_t)r, hits = 0;
        double t0 = now_s();
        for (uint64_t i = 0; i < nl; i++) {
            hdb_signal_t q;
            memset(&q, 0, sizeof q);
            q.type = HDB_SIG_PDQ;
            make_hash(splitmix(&s) % n, &q.pdq);
            uint64_t id;
            size_t found;
            if (hdb_lookup(db, &q, NULL, &id, 1, &found) == CORDON_OK && found)
                hits++;
        }
        t_look[r] = now_s() - t0;
        if (hits != nl)
            fprintf(stderr, "warning: lookups found %llu of %llu\n",
                    (unsigned long long)hits, (unsigned long long)nl);
    }
    double look = median(t_look, runs);
    hdb_stats_t st;
    hdb_stats(db, &st);
    hdb_close(db);
    if (!keep)
        rm_db(path);

    printf("{\"bench\":\"hashdb\",\"case\":\"baseline_raw_lmdb_append\","
           "\"n\":%llu,\"seconds\":%.3f,\"per_s\":%.0f,\"runs\":%d}\n",
           (unsigned long long)n, raw, n / raw, import_runs);
    printf("{\"bench\":\"hashdb\",\"case\":\"import_batch_pdq\",\"n\":%llu,"
           "\"batch\":%llu,\"sync\":%d,\"seconds\":%.3f,\"per_s\":%.0f,"
           "\"vs_baseline\":%.2f,\"runs\":%d}\n",
           (unsigned long long)n, (unsigned long long)batch, sync, imp, n / imp,
           imp / raw, import_runs);
    printf("{\"bench\":\"hashdb\",\"case\":\"iterate_all_pdq\",\"n\":%llu,"
           "\"seconds\":%.3f,\"per_s\":%.0f,\"runs\":%d}\n",
           (unsigned long long)n, iter, n / iter, runs);
    printf("{\"bench\":\"hashdb\",\"case\":\"exact_lookup_pdq\",\"n\":%llu,"
           "\"lookups\":%llu,\"seconds\":%.3f,\"per_s\":%.0f,\"runs\":%d}\n",
           (unsigned long long)n, (unsigned long long)nl, look, nl / look,
           runs);
    printf("{\"bench\":\"hashdb\",\"case\":\"size\",\"n\":%llu,"
           "\"file_bytes\":%llu,\"used_bytes\":%llu,\"bytes_per_hash\":%.1f}\n",
           (unsigned long long)n, (unsigned long long)st.file_size,
           (unsigned long long)st.map_used, (double)st.map_used / n);
    fflush(stdout);

    fprintf(stderr, "\n%-28s %12s %14s %10s\n", "case (median)", "seconds",
            "per second", "ratio");
    fprintf(stderr, "%-28s %12.3f %14.0f %10s\n", "baseline raw LMDB append",
            raw, n / raw, "1.00");
    fprintf(stderr, "%-28s %12.3f %14.0f %10.2f\n", "import (batch API, pdq)",
            imp, n / imp, imp / raw);
    fprintf(stderr, "%-28s %12.3f %14.0f %10s\n", "iterate all pdq", iter,
            n / iter, "");
    fprintf(stderr, "%-28s %12.3f %14.0f %10s\n", "exact pdq lookup (scan)",
            look, nl / look, "");
    fprintf(stderr, "db size: %.1f MB used, %.1f bytes per hash (n=%llu)\n",
            st.map_used / 1e6, (double)st.map_used / n, (unsigned long long)n);
    return 0;
}
