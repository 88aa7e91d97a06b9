/*
 * index_data.h - the synthetic hashes and query mix of the index benchmarks
 * (bench_index, ab_index), so that both measure the same load.
 *
 * Data: "uniform" is random 256-bit hashes; "clustered" is groups of 20
 * near-duplicates (a random centre, members 0..40 bits from it), the load a
 * bank of re-uploads has. Queries: half are stored hashes with 0..40 bits
 * flipped (uniformly), half are random hashes; a dihedral query puts that
 * hash at a random variant position and fills the other seven with random
 * hashes, which is how the unrelated orientations of a real image behave.
 * Everything comes from one seeded generator, so a size gives the same data
 * and queries in every program and run.
 */
#ifndef CORDON_BENCH_INDEX_DATA_H
#define CORDON_BENCH_INDEX_DATA_H

#include <stdlib.h>
#include <time.h>

#include "cordon_pdq.h"

static uint64_t bench_rs;

static inline uint64_t bench_rng(void)
{
    uint64_t z = (bench_rs += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline cordon_hash256_t bench_rand_hash(void)
{
    cordon_hash256_t h;
    for (int i = 0; i < 4; i++)
        h.w[i] = bench_rng();
    return h;
}

/* h with k distinct bits flipped. */
static inline cordon_hash256_t bench_perturb(cordon_hash256_t h, int k)
{
    cordon_hash256_t m = {{0, 0, 0, 0}};
    for (int set = 0; set < k;) {
        unsigned b = (unsigned)(bench_rng() & 255);
        if ((m.w[b >> 6] >> (b & 63)) & 1)
            continue;
        m.w[b >> 6] |= 1ull << (b & 63);
        set++;
    }
    for (int i = 0; i < 4; i++)
        h.w[i] ^= m.w[i];
    return h;
}

/* Fills h[0..n) and the queries: q1[0..nq) single, q8[0..8 nq) dihedral. */
static inline void bench_index_data(size_t n, int clustered,
                                    cordon_hash256_t *h, size_t nq,
                                    cordon_hash256_t *q1, cordon_hash256_t *q8)
{
    bench_rs = 0x1234567 + n;
    cordon_hash256_t c = bench_rand_hash();
    for (size_t i = 0; i < n; i++) {
        if (clustered) {
            if (i % 20 == 0)
                c = bench_rand_hash();
            h[i] = bench_perturb(c, (int)(bench_rng() % 41));
        } else {
            h[i] = bench_rand_hash();
        }
    }
    for (size_t i = 0; i < nq; i++) {
        if (i & 1) {
            q1[i] = bench_rand_hash();
        } else {
            cordon_hash256_t s = h[bench_rng() % n];
            q1[i] = bench_perturb(s, (int)(bench_rng() % 41));
        }
        int pos = (int)(bench_rng() % 8);
        for (int v = 0; v < 8; v++)
            q8[i * 8 + v] = v == pos ? q1[i] : bench_rand_hash();
    }
}

static inline double bench_clock(clockid_t c)
{
    struct timespec t;
    clock_gettime(c, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static inline int bench_dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of v[0..n), which it sorts. */
static inline double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, bench_dcmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#endif
