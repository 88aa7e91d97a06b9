/* engine/index: every query agrees exactly with a brute-force reference. */
#include <stdlib.h>
#include <string.h>

#include "cordon_cpu.h"
#include "cordon_error.h"
#include "cordon_index.h"
#include "harness.h"
#include "index_kernels.h"

/* ---- fixed-seed PRNG (splitmix64) and hash helpers ---------------------- */

static uint64_t rng_state;

static void rng_seed(uint64_t s)
{
    rng_state = s;
}

static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static unsigned rng_below(unsigned n)
{
    return (unsigned)(rng() % n);
}

static cordon_hash256_t rand_hash(void)
{
    cordon_hash256_t h;
    for (int i = 0; i < 4; i++)
        h.w[i] = rng();
    return h;
}

/* Flips exactly k distinct bits. */
static cordon_hash256_t perturb(cordon_hash256_t h, int k)
{
    cordon_hash256_t mask = {{0, 0, 0, 0}};
    int set = 0;
    while (set < k) {
        unsigned b = rng_below(256);
        if (!((mask.w[b >> 6] >> (b & 63)) & 1)) {
            mask.w[b >> 6] |= 1ull << (b & 63);
            set++;
        }
    }
    for (int i = 0; i < 4; i++)
        h.w[i] ^= mask.w[i];
    return h;
}

static int dist(const cordon_hash256_t *a, const cordon_hash256_t *b)
{
    int d = 0;
    for (int i = 0; i < 4; i++)
        d += __builtin_popcountll(a->w[i] ^ b->w[i]);
    return d;
}

/* ---- the reference: a plain list and a brute-force search --------------- */

typedef struct {
    cordon_hash256_t h;
    uint64_t id;
    uint8_t flags;
    uint8_t alive;
} ref_t;

typedef struct {
    ref_t *e;
    size_t n, cap;
} refset_t;

static void ref_add(refset_t *r, cordon_hash256_t h, uint64_t id, uint8_t fl)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 1024;
        r->e = realloc(r->e, r->cap * sizeof *r->e);
        if (!r->e)
            abort();
    }
    r->e[r->n++] = (ref_t){h, id, fl, 1};
}

static int hit_cmp(const void *a, const void *b)
{
    const cordon_index_hit_t *x = a, *y = b;
    if (x->distance != y->distance)
        return x->distance < y->distance ? -1 : 1;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    for (int w = 3; w >= 0; w--)
        if (x->hash.w[w] != y->hash.w[w])
            return x->hash.w[w] < y->hash.w[w] ? -1 : 1;
    return 0;
}

/* Expected hits, sorted as the index sorts them; returns the count. */
static size_t ref_query(const refset_t *r, const cordon_hash256_t *q, int nq,
                        int t, uint8_t skip, cordon_index_hit_t *out)
{
    size_t m = 0;
    for (size_t i = 0; i < r->n; i++) {
        const ref_t *e = &r->e[i];
        if (!e->alive || (e->flags & skip))
            continue;
        int best = 1000, bv = 0;
        for (int v = 0; v < nq; v++) {
            int d = dist(&e->h, &q[v]);
            if (d < best) {
                best = d;
                bv = v;
            }
        }
        if (best <= t) {
            out[m].id = e->id;
            out[m].hash = e->h;
            out[m].distance = (uint16_t)best;
            out[m].variant = (uint8_t)bv;
            out[m].flags = e->flags;
            m++;
        }
    }
    qsort(out, m, sizeof *out, hit_cmp);
    return m;
}

static int hits_equal(const cordon_index_hit_t *a, const cordon_index_hit_t *b)
{
    return a->id == b->id && a->distance == b->distance &&
           a->variant == b->variant && a->flags == b->flags &&
           memcmp(&a->hash, &b->hash, sizeof a->hash) == 0;
}

static cordon_index_hit_t *expect_buf;

/* Runs one query through the index and the reference and compares them;
 * returns the number of hits (or -1 on a mismatch, already reported). */
static long check_query(const cordon_index_t *idx, const refset_t *r,
                        const cordon_hash256_t *q, int nq, int t,
                        const cordon_index_query_opts_t *o,
                        cordon_index_results_t *res)
{
    size_t ne = ref_query(r, q, nq, t, o ? o->skip_flags : 0, expect_buf);
    int err = cordon_index_query(idx, q, nq, t, o, res);
    if (err != CORDON_OK) {
        CHECK_EQ(err, CORDON_OK);
        return -1;
    }
    if (res->count != ne) {
        CHECK_MSG(res->count == ne, "t=%d nq=%d method=%d: %zu hits, want %zu",
                  t, nq, o ? (int)o->method : 0, res->count, ne);
        return -1;
    }
    for (size_t i = 0; i < ne; i++) {
        if (!hits_equal(&res->hits[i], &expect_buf[i])) {
            CHECK_MSG(0,
                      "t=%d hit %zu: id %llu d %d v %d, want id %llu d %d "
                      "v %d",
                      t, i, (unsigned long long)res->hits[i].id,
                      res->hits[i].distance, res->hits[i].variant,
                      (unsigned long long)expect_buf[i].id,
                      expect_buf[i].distance, expect_buf[i].variant);
            return -1;
        }
    }
    return (long)ne;
}

/* ---- data sets ---------------------------------------------------------- */

static void make_uniform(refset_t *r, size_t n, uint64_t seed)
{
    rng_seed(seed);
    for (size_t i = 0; i < n; i++)
        ref_add(r, rand_hash(), 1000000 + i, 0);
}

/* Centres with members at distances 0..40, including exact duplicates
 * under other ids: the near-duplicate load real banks have. */
static void make_clustered(refset_t *r, size_t n, size_t per, uint64_t seed)
{
    rng_seed(seed);
    cordon_hash256_t c = rand_hash();
    for (size_t i = 0; i < n; i++) {
        if (i % per == 0)
            c = rand_hash();
        ref_add(r, perturb(c, (int)rng_below(41)), 5000000 + i, 0);
    }
}

static int build(cordon_index_t **idx, const refset_t *r,
                 const cordon_index_opts_t *o)
{
    cordon_hash256_t *h = malloc(r->n * sizeof *h);
    uint64_t *id = malloc(r->n * sizeof *id);
    uint8_t *fl = malloc(r->n);
    if (!h || !id || !fl)
        abort();
    for (size_t i = 0; i < r->n; i++) {
        h[i] = r->e[i].h;
        id[i] = r->e[i].id;
        fl[i] = r->e[i].flags;
    }
    int err = cordon_index_create(o, idx);
    size_t added = 0;
    if (!err)
        err = cordon_index_add_bulk(*idx, h, id, fl, r->n, &added);
    free(h);
    free(id);
    free(fl);
    if (!err && added != r->n)
        err = CORDON_EINTERNAL;
    return err;
}

/* A realistic query: a stored hash moved 0..40 bits, or a random one. */
static cordon_hash256_t pick_query(const refset_t *r)
{
    if (rng_below(4) == 0)
        return rand_hash();
    return perturb(r->e[rng_below((unsigned)r->n)].h, (int)rng_below(41));
}

static const cordon_index_method_t methods[] = {
    CORDON_INDEX_AUTO, CORDON_INDEX_MIH, CORDON_INDEX_SCAN};

/* Every threshold 0..64 plus 128 and 256, every method, on n queries. */
static void sweep(const cordon_index_t *idx, const refset_t *r, int nqueries,
                  uint64_t seed, long *total_hits)
{
    cordon_index_results_t res;
    cordon_index_results_init(&res);
    rng_seed(seed);
    for (int qi = 0; qi < nqueries; qi++) {
        cordon_hash256_t q = pick_query(r);
        for (int t = 0; t <= 66; t++) {
            int tt = t <= 64 ? t : t == 65 ? 128 : 256;
            for (int m = 0; m < 3; m++) {
                /* The large thresholds return everything: check them on a
                 * few queries only, and not through the slow forced MIH. */
                if (tt > 64 && (qi > 1 || m == 1))
                    continue;
                cordon_index_query_opts_t o = {0};
                o.method = methods[m];
                long got = check_query(idx, r, &q, 1, tt, &o, &res);
                if (got < 0)
                    goto out;
                *total_hits += got;
            }
        }
    }
out:
    cordon_index_results_free(&res);
}

/* ---- tests -------------------------------------------------------------- */

TEST(uniform_agrees_with_brute_force)
{
    refset_t r = {0};
    make_uniform(&r, 40000, 1);
    cordon_index_t *idx = NULL;
    REQUIRE(build(&idx, &r, NULL) == CORDON_OK);
    cordon_index_stats_t st;
    cordon_index_stats(idx, &st);
    CHECK_EQ(st.entries, 40000);
    CHECK_GE(st.substrings, 8); /* the multi-index path is really built */
    long hits = 0;
    sweep(idx, &r, 12, 2, &hits);
    CHECK_GT(hits, 1000); /* near-duplicate queries did find things */
    cordon_index_free(idx);
    free(r.e);
}

TEST(clustered_agrees_with_brute_force)
{
    refset_t r = {0};
    make_clustered(&r, 40000, 200, 3);
    long hits = 0;
    static const int subs[] = {0, 8, 11, 16};
    static const int ebits[] = {0, 16, 24, 32};
    for (int c = 0; c < 4; c++) {
        cordon_index_opts_t o;
        cordon_index_opts_default(&o);
        o.substrings = subs[c];
        o.entry_bits = ebits[c];
        cordon_index_t *idx = NULL;
        REQUIRE(build(&idx, &r, &o) == CORDON_OK);
        sweep(idx, &r, 4, 4 + (uint64_t)c, &hits);
        cordon_index_free(idx);
    }
    CHECK_GT(hits, 10000);
    free(r.e);
}

/* Flips `per` distinct bits among the top `top` bits of every w-bit
 * substring except `keep`. */
static cordon_hash256_t perturb_others(cordon_hash256_t h, int keep, int w,
                                       int top, int per)
{
    for (int s = 0; s < 256 / w; s++) {
        if (s == keep)
            continue;
        cordon_hash256_t mask = {{0, 0, 0, 0}};
        for (int set = 0; set < per;) {
            int b = s * w + w - top + (int)rng_below((unsigned)top);
            if ((mask.w[b >> 6] >> (b & 63)) & 1)
                continue;
            mask.w[b >> 6] |= 1ull << (b & 63);
            set++;
        }
        for (int i = 0; i < 4; i++)
            h.w[i] ^= mask.w[i];
    }
    return h;
}

/* Each record, queried with r+1 bits flipped in the directory bits of every
 * substring but one (28 or 30 bits in all), is within 31 but reachable only
 * through that one substring's table: every table and every page, the last
 * partial one included, must deliver. */
TEST(every_record_through_every_table)
{
    static const int subs[] = {16, 8};
    for (int c = 0; c < 2; c++) {
        refset_t r = {0};
        make_uniform(&r, c ? 4099 : 5003, 30 + (uint64_t)c);
        cordon_index_opts_t o;
        cordon_index_opts_default(&o);
        o.substrings = subs[c];
        cordon_index_t *idx = NULL;
        REQUIRE(build(&idx, &r, &o) == CORDON_OK);
        int w = 256 / subs[c], per = 32 / subs[c]; /* r + 1 at T = 31 */
        cordon_index_stats_t st;
        cordon_index_stats(idx, &st);
        int top = st.primary_bits < st.secondary_bits ? st.primary_bits
                                                      : st.secondary_bits;
        REQUIRE(top >= per && st.substrings == subs[c]);
        cordon_index_results_t res = {0};
        cordon_index_query_opts_t qo = {0};
        qo.method = CORDON_INDEX_MIH;
        size_t missed = 0;
        /* With 8 substrings every record goes through every table. */
        for (size_t qi = 0; qi < r.n * (c ? 8 : 1); qi++) {
            size_t i = c ? qi / 8 : qi;
            int keep = (int)(qi % (size_t)subs[c]);
            cordon_hash256_t q = perturb_others(r.e[i].h, keep, w, top, per);
            int k = per * (subs[c] - 1);
            REQUIRE(cordon_index_query(idx, &q, 1, 31, &qo, &res) == CORDON_OK);
            int found = 0;
            for (size_t j = 0; j < res.count; j++)
                found |=
                    res.hits[j].id == r.e[i].id && res.hits[j].distance == k;
            missed += !found;
        }
        CHECK_EQ(missed, 0);
        cordon_index_results_free(&res);
        cordon_index_free(idx);
        free(r.e);
    }
}

TEST(small_sets_and_empty_index)
{
    cordon_index_t *idx = NULL;
    REQUIRE(cordon_index_create(NULL, &idx) == CORDON_OK);
    cordon_index_results_t res = {0};
    cordon_hash256_t q = {{1, 2, 3, 4}};
    CHECK_EQ(cordon_index_query(idx, &q, 1, 31, NULL, &res), CORDON_OK);
    CHECK_EQ(res.count, 0);
    CHECK_EQ(cordon_index_size(idx), 0);
    cordon_index_free(idx);
    /* Sizes around the smallest directories: a primary table of 0 bits
     * (under 16 entries) and of a few bits; first in the tail, then
     * indexed. */
    static const size_t sizes[] = {1, 2, 15, 16, 17, 33, 300};
    long hits = 0;
    for (int z = 0; z < 7; z++) {
        REQUIRE(cordon_index_create(NULL, &idx) == CORDON_OK);
        refset_t r = {0};
        make_uniform(&r, sizes[z], 5 + (uint64_t)z);
        for (size_t i = 0; i < r.n; i++)
            CHECK_EQ(cordon_index_add(idx, &r.e[i].h, r.e[i].id, 0), CORDON_OK);
        sweep(idx, &r, 4, 6, &hits);
        CHECK_EQ(cordon_index_compact(idx), CORDON_OK);
        sweep(idx, &r, 4, 7, &hits);
        CHECK_EQ(cordon_index_remove(idx, &r.e[0].h, r.e[0].id), CORDON_OK);
        r.e[0].alive = 0;
        sweep(idx, &r, 2, 8, &hits);
        CHECK_EQ(cordon_index_size(idx), r.n - 1);
        cordon_index_free(idx);
        free(r.e);
    }
    CHECK_GT(hits, 100);
    cordon_index_results_free(&res);
}

TEST(dihedral_variants_are_tagged)
{
    refset_t r = {0};
    make_uniform(&r, 30000, 8);
    cordon_index_t *idx = NULL;
    REQUIRE(build(&idx, &r, NULL) == CORDON_OK);
    cordon_index_results_t res = {0};
    rng_seed(9);
    int tagged[8] = {0};
    for (int it = 0; it < 80; it++) {
        /* Eight variants: some near different stored hashes, some near the
         * same one at different distances, some random. */
        cordon_hash256_t q[8];
        size_t target = rng_below((unsigned)r.n);
        for (int v = 0; v < 8; v++) {
            switch (rng_below(4)) {
            case 0:
                q[v] = rand_hash();
                break;
            case 1:
                q[v] = perturb(r.e[target].h, (int)rng_below(36));
                break;
            default:
                q[v] = perturb(r.e[rng_below((unsigned)r.n)].h,
                               (int)rng_below(36));
            }
        }
        int nq = 1 + (it % 8);
        for (int m = 0; m < 3; m++) {
            cordon_index_query_opts_t o = {0};
            o.method = methods[m];
            if (check_query(idx, &r, q, nq, 31, &o, &res) < 0)
                goto out;
        }
        for (size_t i = 0; i < res.count; i++) {
            CHECK_LT(res.hits[i].variant, nq);
            tagged[res.hits[i].variant]++;
            /* The reported variant really has the reported distance and no
             * variant does better. */
            CHECK_EQ(dist(&res.hits[i].hash, &q[res.hits[i].variant]),
                     res.hits[i].distance);
            for (int v = 0; v < nq; v++)
                CHECK_GE(dist(&res.hits[i].hash, &q[v]), res.hits[i].distance);
        }
    }
    for (int v = 0; v < 8; v++)
        CHECK_GT(tagged[v], 0);
    /* Two variants at the same distance from one entry: the lower wins. */
    cordon_hash256_t q2[3];
    q2[0] = rand_hash();
    q2[1] = perturb(r.e[7].h, 5);
    q2[2] = perturb(r.e[7].h, 5);
    CHECK_EQ(cordon_index_query(idx, q2, 3, 31, NULL, &res), CORDON_OK);
    REQUIRE(res.count == 1);
    CHECK_EQ(res.hits[0].id, r.e[7].id);
    CHECK_EQ(res.hits[0].variant, 1);
    CHECK_EQ(res.hits[0].distance, 5);
out:
    cordon_index_results_free(&res);
    cordon_index_free(idx);
    free(r.e);
}

TEST(incremental_add_remove_and_duplicates)
{
    refset_t r = {0};
    make_clustered(&r, 20000, 100, 10);
    cordon_index_opts_t o;
    cordon_index_opts_default(&o);
    o.tail_limit = 1500; /* force rebuilds along the way */
    cordon_index_t *idx = NULL;
    REQUIRE(build(&idx, &r, &o) == CORDON_OK);
    cordon_index_results_t res = {0};
    rng_seed(11);
    long hits = 0;
    for (int step = 0; step < 5000; step++) {
        unsigned op = rng_below(10);
        if (op < 5) {
            /* A new entry: often a copy of a stored hash under a new id. */
            cordon_hash256_t h = rng_below(3)
                                     ? perturb(r.e[rng_below((unsigned)r.n)].h,
                                               (int)rng_below(20))
                                     : rand_hash();
            uint64_t id = 9000000 + (uint64_t)step;
            uint8_t fl = (uint8_t)(rng_below(4) == 0 ? 2 : 0);
            CHECK_EQ(cordon_index_add(idx, &h, id, fl), CORDON_OK);
            ref_add(&r, h, id, fl);
        } else if (op < 8) {
            size_t i = rng_below((unsigned)r.n);
            int want = r.e[i].alive ? CORDON_OK : CORDON_ENOTFOUND;
            CHECK_EQ(cordon_index_remove(idx, &r.e[i].h, r.e[i].id), want);
            r.e[i].alive = 0;
        } else if (op < 9) {
            /* Re-adding a live pair is refused; a removed one comes back. */
            size_t i = rng_below((unsigned)r.n);
            int want = r.e[i].alive ? CORDON_EEXIST : CORDON_OK;
            CHECK_EQ(cordon_index_add(idx, &r.e[i].h, r.e[i].id, r.e[i].flags),
                     want);
            r.e[i].alive = 1;
        } else {
            size_t i = rng_below((unsigned)r.n);
            uint8_t fl = (uint8_t)rng_below(4);
            int want = r.e[i].alive ? CORDON_OK : CORDON_ENOTFOUND;
            CHECK_EQ(cordon_index_set_flags(idx, &r.e[i].h, r.e[i].id, fl),
                     want);
            if (r.e[i].alive)
                r.e[i].flags = fl;
        }
        if (step % 50 == 0) {
            size_t live = 0;
            for (size_t i = 0; i < r.n; i++)
                live += r.e[i].alive;
            CHECK_EQ(cordon_index_size(idx), live);
            cordon_hash256_t q = pick_query(&r);
            cordon_index_query_opts_t qo = {0};
            qo.skip_flags = (uint8_t)(step % 100 == 0 ? 2 : 0);
            long got = check_query(idx, &r, &q, 1, 31, &qo, &res);
            if (got < 0)
                break;
            hits += got;
        }
    }
    CHECK_GT(hits, 50);
    /* A missing pair: unknown id for a stored hash, and unknown hash. */
    cordon_hash256_t x = rand_hash();
    CHECK_EQ(cordon_index_remove(idx, &r.e[0].h, 77), CORDON_ENOTFOUND);
    CHECK_EQ(cordon_index_remove(idx, &x, r.e[0].id), CORDON_ENOTFOUND);
    /* Compaction keeps exactly the live entries. */
    CHECK_EQ(cordon_index_compact(idx), CORDON_OK);
    cordon_index_stats_t st;
    cordon_index_stats(idx, &st);
    CHECK_EQ(st.tail, 0);
    CHECK_EQ(st.dead, 0);
    long got = 0;
    sweep(idx, &r, 3, 12, &got);
    cordon_index_results_free(&res);
    cordon_index_free(idx);
    free(r.e);
}

TEST(bulk_skips_existing_and_repeated_pairs)
{
    refset_t r = {0};
    make_uniform(&r, 5000, 13);
    cordon_index_t *idx = NULL;
    REQUIRE(build(&idx, &r, NULL) == CORDON_OK);
    /* Same hash under a second id is a new entry; the same pair is not. */
    cordon_hash256_t h[4] = {r.e[0].h, r.e[0].h, r.e[1].h, r.e[1].h};
    uint64_t id[4] = {r.e[0].id, 42, 43, 43};
    size_t added = 99;
    CHECK_EQ(cordon_index_add_bulk(idx, h, id, NULL, 4, &added), CORDON_OK);
    CHECK_EQ(added, 2);
    CHECK_EQ(cordon_index_size(idx), 5002);
    cordon_index_results_t res = {0};
    CHECK_EQ(cordon_index_query(idx, &r.e[0].h, 1, 0, NULL, &res), CORDON_OK);
    REQUIRE(res.count == 2);
    CHECK_EQ(res.hits[0].id, 42); /* same distance: ordered by id */
    CHECK_EQ(res.hits[1].id, r.e[0].id);
    CHECK_EQ(cordon_index_add(idx, &r.e[1].h, 43, 0), CORDON_EEXIST);
    cordon_index_results_free(&res);
    cordon_index_free(idx);
    free(r.e);
}

/* Ids beyond 32 bits: stored in 8 bytes, and the index switches width as
 * entries come and go without losing a bit. */
TEST(wide_ids)
{
    refset_t r = {0};
    make_uniform(&r, 6000, 40);
    cordon_index_t *idx = NULL;
    REQUIRE(build(&idx, &r, NULL) == CORDON_OK);
    size_t narrow = cordon_index_memory(idx);
    cordon_hash256_t h = rand_hash();
    uint64_t big = 0xfedcba9876543210ull;
    CHECK_EQ(cordon_index_add(idx, &h, big, 3), CORDON_OK);
    ref_add(&r, h, big, 3);
    long hits = 0;
    sweep(idx, &r, 2, 41, &hits); /* the wide id in the tail */
    CHECK_EQ(cordon_index_compact(idx), CORDON_OK);
    CHECK_GE(cordon_index_memory(idx), narrow + 4 * 6000);
    sweep(idx, &r, 2, 42, &hits); /* now in the indexed part */
    cordon_index_results_t res = {0};
    CHECK_EQ(cordon_index_query(idx, &h, 1, 0, NULL, &res), CORDON_OK);
    REQUIRE(res.count == 1);
    CHECK_EQ(res.hits[0].id, big);
    CHECK_EQ(res.hits[0].flags, 3);
    CHECK_EQ(cordon_index_remove(idx, &h, big), CORDON_OK);
    CHECK_EQ(cordon_index_compact(idx), CORDON_OK);
    /* Back to 4-byte ids; only the tail buffer, now allocated, remains. */
    CHECK_LE(cordon_index_memory(idx), narrow + 16384);
    r.e[r.n - 1].alive = 0;
    sweep(idx, &r, 2, 43, &hits);
    cordon_index_results_free(&res);
    cordon_index_free(idx);
    free(r.e);
}

static int keep_even(void *ctx, uint64_t id, uint8_t flags)
{
    (*(int *)ctx)++;
    (void)flags;
    return (id & 1) == 0;
}

TEST(filters_and_max_hits)
{
    refset_t r = {0};
    make_clustered(&r, 20000, 400, 14);
    for (size_t i = 0; i < r.n; i++)
        r.e[i].flags = (uint8_t)(i % 3 == 0 ? 1 : 0);
    cordon_index_t *idx = NULL;
    REQUIRE(build(&idx, &r, NULL) == CORDON_OK);
    cordon_index_results_t res = {0}, all = {0};
    const cordon_hash256_t *q = &r.e[400].h;
    /* skip_flags matches the reference's skipping. */
    cordon_index_query_opts_t o = {0};
    o.skip_flags = 1;
    CHECK_GT(check_query(idx, &r, q, 1, 40, &o, &res), 50);
    for (size_t i = 0; i < res.count; i++)
        CHECK_EQ(res.hits[i].flags & 1, 0);
    /* The callback sees candidates and drops odd ids. */
    int calls = 0;
    cordon_index_query_opts_t f = {0};
    f.filter = keep_even;
    f.filter_ctx = &calls;
    CHECK_EQ(cordon_index_query(idx, q, 1, 40, NULL, &all), CORDON_OK);
    CHECK_EQ(cordon_index_query(idx, q, 1, 40, &f, &res), CORDON_OK);
    size_t even = 0;
    for (size_t i = 0; i < all.count; i++)
        even += (all.hits[i].id & 1) == 0;
    CHECK_EQ(res.count, even);
    CHECK_GE(calls, (int)all.count);
    /* max_hits keeps a prefix of the full, ordered list, for both methods
     * and for limits that do and do not trigger early settling. */
    static const size_t lims[] = {1, 7, 100, 100000};
    for (int m = 0; m < 3; m++) {
        for (int l = 0; l < 4; l++) {
            cordon_index_query_opts_t lo = {0};
            lo.method = methods[m];
            lo.max_hits = lims[l];
            CHECK_EQ(cordon_index_query(idx, q, 1, 256, &lo, &res), CORDON_OK);
            CHECK_EQ(cordon_index_query(idx, q, 1, 256, NULL, &all), CORDON_OK);
            size_t want = all.count < lims[l] ? all.count : lims[l];
            REQUIRE(res.count == want);
            CHECK_EQ(res.truncated, all.count > lims[l]);
            for (size_t i = 0; i < want; i++)
                CHECK(hits_equal(&res.hits[i], &all.hits[i]));
        }
    }
    CHECK_EQ(all.count, r.n); /* threshold 256 returns everything */
    cordon_index_results_free(&res);
    cordon_index_results_free(&all);
    cordon_index_free(idx);
    free(r.e);
}

TEST(bad_arguments)
{
    cordon_index_t *idx = NULL;
    cordon_index_opts_t o;
    cordon_index_opts_default(&o);
    o.substrings = 7;
    CHECK_EQ(cordon_index_create(&o, &idx), CORDON_EINVAL);
    CHECK(idx == NULL);
    o.substrings = 0;
    o.entry_bits = 33;
    CHECK_EQ(cordon_index_create(&o, &idx), CORDON_EINVAL);
    CHECK_EQ(cordon_index_create(NULL, NULL), CORDON_EINVAL);
    REQUIRE(cordon_index_create(NULL, &idx) == CORDON_OK);
    cordon_index_results_t res = {0};
    cordon_hash256_t q[9] = {{{0}}};
    CHECK_EQ(cordon_index_query(idx, q, 0, 31, NULL, &res), CORDON_EINVAL);
    CHECK_EQ(cordon_index_query(idx, q, 9, 31, NULL, &res), CORDON_EINVAL);
    CHECK_EQ(cordon_index_query(idx, q, 1, -1, NULL, &res), CORDON_EINVAL);
    CHECK_EQ(cordon_index_query(idx, q, 1, 257, NULL, &res), CORDON_EINVAL);
    CHECK_EQ(cordon_index_query(idx, q, 1, 31, NULL, NULL), CORDON_EINVAL);
    CHECK_EQ(cordon_index_add(idx, NULL, 1, 0), CORDON_EINVAL);
    CHECK_EQ(cordon_index_remove(idx, q, 1), CORDON_ENOTFOUND);
    CHECK_EQ(cordon_index_add_bulk(idx, NULL, NULL, NULL, 1, NULL),
             CORDON_EINVAL);
    cordon_index_results_free(&res);
    cordon_index_results_free(NULL);
    cordon_index_free(idx);
    cordon_index_free(NULL);
}

/* ---- SIMD paths --------------------------------------------------------- */

static const unsigned paths[] = {0, CORDON_CPU_POPCNT | CORDON_CPU_AVX2, ~0u};

TEST(kernels_identical_on_every_path)
{
    unsigned saved = cordon_cpu_features();
    rng_seed(15);
    size_t n = 1000;
    cordon_hash256_t *recs = aligned_alloc(64, n * sizeof *recs);
    uint64_t *out[3];
    for (int p = 0; p < 3; p++)
        out[p] = malloc(n * sizeof *out[p]);
    REQUIRE(recs && out[0] && out[1] && out[2]);
    cordon_hash256_t q[8];
    for (int v = 0; v < 8; v++)
        q[v] = rand_hash();
    for (size_t i = 0; i < n; i++)
        recs[i] = perturb(q[rng_below(8)], (int)rng_below(140));
    recs[3] = q[2]; /* distance 0 and 256 */
    for (int w = 0; w < 4; w++)
        recs[4].w[w] = ~q[0].w[w];
    /* Scan: every variant count, threshold, length and misalignment, with
     * and without a word-0 mask (the indexed part's id bits). */
    for (int nq = 1; nq <= 8; nq++) {
        for (int t = 0; t <= 256; t += 37) {
            for (size_t off = 0; off < 9; off++) {
                uint64_t mask = off & 1 ? ~(0x3fffffull << 2) : ~0ull;
                size_t len = n - off - (size_t)nq * 3;
                size_t m0 = cordon__index_scan_scalar(recs + off, len, q, nq, t,
                                                      mask, 17, out[0]);
                /* The scalar scan against a plain reference. */
                size_t want = 0;
                for (size_t i = 0; i < len; i++) {
                    cordon_hash256_t a = recs[off + i];
                    int best = 1000;
                    for (int v = 0; v < nq; v++) {
                        cordon_hash256_t b = q[v];
                        a.w[0] &= mask;
                        b.w[0] &= mask;
                        int d = dist(&a, &b);
                        best = d < best ? d : best;
                    }
                    want += best <= t;
                }
                CHECK_EQ(m0, want);
                if (saved & CORDON_CPU_AVX2) {
                    size_t m1 = cordon__index_scan_avx2(recs + off, len, q, nq,
                                                        t, mask, 17, out[1]);
                    CHECK_EQ(m1, m0);
                    CHECK(memcmp(out[1], out[0], m0 * 8) == 0);
                }
                if (saved & CORDON_CPU_AVX512) {
                    size_t m2 = cordon__index_scan_avx512(
                        recs + off, len, q, nq, t, mask, 17, out[2]);
                    CHECK_EQ(m2, m0);
                    CHECK(memcmp(out[2], out[0], m0 * 8) == 0);
                }
            }
        }
    }
    /* Bucket filter: every fingerprint width, Elias-Fano split, radius,
     * bucket size and bit alignment, against a direct computation. */
    size_t cap = 1 << 16;
    uint8_t *buf = malloc(cap + 64);
    uint32_t *fps = malloc(600 * 4), *pages = malloc(600 * 4);
    uint32_t *want = malloc(600 * 4), *got[3];
    for (int p = 0; p < 3; p++)
        got[p] = malloc((600 + 16) * 4); /* vector filters store whole groups */
    REQUIRE(buf && fps && pages && want && got[0] && got[1] && got[2]);
    for (int f = 0; f <= 31; f++) {
        for (int it = 0; it < 12; it++) {
            int l = (int)rng_below(20);
            uint32_t nb = rng_below(it < 2 ? 3 : 600);
            uint32_t H = 1 + rng_below(200);
            uint64_t boff = rng_below(8) + 8 * rng_below(4);
            /* Rising pages below H << l. */
            uint64_t lim = (uint64_t)H << l;
            for (uint32_t j = 0; j < nb; j++) {
                fps[j] = (uint32_t)(rng() & ((1ull << f) - 1));
                pages[j] = (uint32_t)(rng() % lim);
            }
            for (uint32_t j = 1; j < nb; j++) /* insertion sort */
                for (uint32_t k = j; k > 0 && pages[k - 1] > pages[k]; k--) {
                    uint32_t x = pages[k];
                    pages[k] = pages[k - 1];
                    pages[k - 1] = x;
                }
            memset(buf, 0, cap + 64);
            for (uint32_t j = 0; j < nb; j++) {
                uint64_t u0 = boff + (uint64_t)nb * f;
                uint64_t v[3] = {fps[j], 1, pages[j] & ((1u << l) - 1)};
                uint64_t at[3] = {boff + (uint64_t)j * f,
                                  u0 + j + (pages[j] >> l),
                                  u0 + nb + H + (uint64_t)j * l};
                int w[3] = {f, 1, l};
                for (int k = 0; k < 3; k++)
                    for (int b = 0; b < w[k]; b++)
                        if ((v[k] >> b) & 1)
                            buf[(at[k] + b) >> 3] |=
                                (uint8_t)(1u << ((at[k] + b) & 7));
            }
            uint32_t qfp = (uint32_t)(rng() & ((1ull << f) - 1));
            int rr = (int)rng_below(4);
            size_t nw = 0;
            for (uint32_t j = 0; j < nb; j++)
                if (__builtin_popcount(fps[j] ^ qfp) <= rr)
                    want[nw++] = pages[j];
            size_t m0 = cordon__index_efilter_scalar(buf, boff, nb, f, l, H,
                                                     qfp, rr, got[0]);
            CHECK_EQ(m0, nw);
            CHECK(memcmp(got[0], want, nw * 4) == 0);
            if (saved & CORDON_CPU_AVX2) {
                size_t m1 = cordon__index_efilter_avx2(buf, boff, nb, f, l, H,
                                                       qfp, rr, got[1]);
                CHECK_EQ(m1, nw);
                CHECK(memcmp(got[1], want, nw * 4) == 0);
            }
            if (saved & CORDON_CPU_AVX512) {
                size_t m2 = cordon__index_efilter_avx512(buf, boff, nb, f, l,
                                                         H, qfp, rr, got[2]);
                CHECK_EQ(m2, nw);
                CHECK(memcmp(got[2], want, nw * 4) == 0);
            }
        }
    }
    free(buf);
    free(fps);
    free(pages);
    free(want);
    for (int p = 0; p < 3; p++)
        free(got[p]);
    for (int p = 0; p < 3; p++)
        free(out[p]);
    free(recs);
    cordon_cpu_set_features(saved);
}

TEST(queries_identical_on_every_path)
{
    unsigned saved = cordon_cpu_features();
    refset_t r = {0};
    make_clustered(&r, 30000, 300, 16);
    cordon_index_t *idx = NULL;
    REQUIRE(build(&idx, &r, NULL) == CORDON_OK);
    cordon_index_results_t res[3] = {{0}};
    rng_seed(17);
    for (int it = 0; it < 40; it++) {
        cordon_hash256_t q[8];
        for (int v = 0; v < 8; v++)
            q[v] = pick_query(&r);
        int nq = 1 + it % 8, t = (int)rng_below(70);
        for (int m = 0; m < 3; m++) {
            cordon_index_query_opts_t o = {0};
            o.method = methods[m];
            for (int p = 0; p < 3; p++) {
                cordon_cpu_set_features(paths[p]);
                CHECK_EQ(cordon_index_query(idx, q, nq, t, &o, &res[p]),
                         CORDON_OK);
            }
            for (int p = 1; p < 3; p++) {
                CHECK_EQ(res[p].count, res[0].count);
                for (size_t i = 0; i < res[0].count && i < res[p].count; i++)
                    CHECK(hits_equal(&res[p].hits[i], &res[0].hits[i]));
            }
        }
    }
    cordon_cpu_set_features(saved);
    for (int p = 0; p < 3; p++)
        cordon_index_results_free(&res[p]);
    cordon_index_free(idx);
    free(r.e);
}

int main(int argc, char **argv)
{
    (void)argc;
    th_init(argv[0]);
    expect_buf = malloc(400000 * sizeof *expect_buf);
    if (!expect_buf)
        return 2;
    RUN(bad_arguments);
    RUN(small_sets_and_empty_index);
    RUN(kernels_identical_on_every_path);
    RUN(every_record_through_every_table);
    RUN(uniform_agrees_with_brute_force);
    RUN(clustered_agrees_with_brute_force);
    RUN(dihedral_variants_are_tagged);
    RUN(incremental_add_remove_and_duplicates);
    RUN(bulk_skips_existing_and_repeated_pairs);
    RUN(wide_ids);
    RUN(filters_and_max_hits);
    RUN(queries_identical_on_every_path);
    free(expect_buf);
    return TH_END();
}
