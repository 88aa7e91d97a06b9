/*
 * index.c - exact Hamming radius search: multi-index hashing over a sorted
 * record array, an unindexed tail, and SIMD linear scans.
 *
 * Layout. The indexed part keeps its records (hash, id, flags) in one array
 * sorted by the top bits of substring 0; that array is the primary table, so
 * substring 0 costs no extra memory and its candidates are verified where
 * they lie. Since a record's primary bucket is implied by its position,
 * those directory bits of the stored hash hold the low bits of its id
 * instead (the rest of the id, when wider, sits in a packed side array):
 * distances are computed with those bits masked and completed from the
 * bucket number, which a visit knows and a binary search over the directory
 * recovers otherwise. Substrings 1..k-1 each have a secondary table: a
 * directory over the substring's top bits and, per bucket, the remaining
 * bits of each entry's substring (the fingerprint) and the page of records
 * it belongs to, Elias-Fano coded (index_kernels.h describes the stream). A
 * page is 2^pshift consecutive records: four by default, two cache lines.
 *
 * Memory. The big arrays are 2 MiB aligned and advised to use huge pages,
 * since queries touch them at random; the secondary tables share one such
 * block. Directories keep 2 bytes per bucket (a 16-bit offset from a 32-bit
 * base per 64 buckets). At 10 million records: 32-byte hashes, 3 bits of id
 * (ids below 2^24), 10 tables of about 23.5 bits per entry, 0.7 bytes of
 * directories: 62.9 bytes per record.
 *
 * Speed. A query is a stream of random memory accesses (directory buckets,
 * then pages), so the query pipelines fetch a chunk of them ahead of use;
 * see benchmarks/index.md for where the time goes.
 *
 * Search. With k substrings and threshold T, any hash within T of the query
 * has some substring i within r_i of the query's, where the radii satisfy
 * sum(r_i + 1) = T + 1 (pigeonhole; r_i = floor(T/k) for the first
 * T mod k + 1 substrings and one less for the rest). For each table we visit
 * every directory bucket within r_i of the query's top bits, keep entries
 * whose fingerprint is within the remaining radius, and verify the whole
 * page each survivor points at with the exact 256-bit distance. Hits are
 * deduplicated per record at the end, so a record reached through several
 * tables or pages is reported once.
 */
#include "cordon_index.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "cordon_cpu.h"
#include "cordon_error.h"
#include "index_kernels.h"

#define MAX_SUB 16
#define MIN_SUB 8
/* Below this many records no secondary tables are built: a scan is as fast. */
#define MIH_MIN_RECORDS 4096
#define TAIL_MIN 4096
#define TAIL_MAX 65536
/* Batch sizes of the query pipeline. */
#define VISIT_CHUNK 1024
/* Most verification tasks queued at once. Tasks found while one chunk of
 * visits is processed are prefetched at its end, in one burst with the
 * next chunk's buckets, and verified a chunk later; only a chunk with more
 * tasks than this verifies early (with demand loads). */
#define TASK_CAP 4096
#define SCAN_CHUNK 8192
/* Effective cost of a random memory access for the planner, in ns. */
#define RA_NS 60.0
/* Visits whose memory is fetched together, a chunk ahead of their use. */
#define VISIT_PIPE 64
#define PF_MAX_BYTES 512

/* A directory: 2^bits + 1 rising offsets. The compact form keeps a 32-bit
 * base per 64 buckets and a 16-bit offset from it per bucket; it is used
 * whenever every group of 64 buckets spans fewer than 65536 entries, i.e.
 * unless some buckets are enormous. */
typedef struct {
    uint32_t *full; /* [nb + 1], or NULL in the compact form */
    uint32_t *base; /* [(nb >> 6) + 1] */
    uint16_t *off;  /* [nb + 1] */
    size_t nb;
} dir_t;

typedef struct {
    uint16_t bit;  /* first bit of the substring */
    uint8_t width; /* substring bits, <= 32 */
    uint8_t dbits; /* directory bits: the substring's top bits */
    uint8_t fbits; /* fingerprint bits following them (secondary tables) */
    uint8_t lbits; /* Elias-Fano low bits of a page (secondary tables) */
    uint32_t hz;   /* Elias-Fano high parts per bucket (secondary tables) */
    dir_t dir;
    uint8_t *data; /* bucket streams, inside idx->sec (secondary tables) */
} table_t;

struct cordon_index {
    cordon_index_opts_t opts;
    /* The indexed part. */
    size_t n;      /* records, dead ones included */
    size_t nalloc; /* records the arrays were allocated for */
    size_t ndead;
    /* [n], 64-byte aligned, primary-table order; bits [ipos, ipos + ibits)
     * of word 0 hold the low bits of the id, not of the hash. */
    cordon_hash256_t *hash;
    int ibits, ipos;
    uint64_t m0;    /* word-0 mask of the hash bits proper */
    int xbits;      /* id bits above ibits, packed per record in idhi */
    uint8_t *idhi;  /* [n * xbits bits], or NULL when xbits is 0 */
    uint8_t *flags; /* [n], or NULL while every flag is zero */
    uint64_t *dead; /* bitmap of removed records, or NULL */
    int nsub;       /* substrings with tables; 1 = primary only */
    int pshift;
    table_t tab[MAX_SUB];
    uint8_t *sec; /* every secondary table's bucket streams */
    size_t sec_bytes;
    /* The tail: recent adds, unsorted, scanned by every query. */
    size_t tn, tcap;
    cordon_hash256_t *thash;
    uint64_t *tid;
    uint8_t *tflags; /* [tcap], or NULL while every tail flag is zero */
};

/* ------------------------------------------------------------------------ */
/* Small helpers                                                             */

static inline int popcount64(uint64_t x)
{
    return __builtin_popcountll(x);
}

static inline int hash_distance(const cordon_hash256_t *a,
                                const cordon_hash256_t *b)
{
    return popcount64(a->w[0] ^ b->w[0]) + popcount64(a->w[1] ^ b->w[1]) +
           popcount64(a->w[2] ^ b->w[2]) + popcount64(a->w[3] ^ b->w[3]);
}

static inline int hash_equal(const cordon_hash256_t *a,
                             const cordon_hash256_t *b)
{
    return ((a->w[0] ^ b->w[0]) | (a->w[1] ^ b->w[1]) | (a->w[2] ^ b->w[2]) |
            (a->w[3] ^ b->w[3])) == 0;
}

/* Bits [bit, bit + width) of the hash, width <= 32. */
/* 64-bit so that callers may shift a 32-bit key right by its full width
 * (a primary table with no directory bits, in indexes under 16 entries). */
static inline uint64_t sub_key(const cordon_hash256_t *h, unsigned bit,
                               unsigned width)
{
    unsigned wi = bit >> 6, sh = bit & 63;
    uint64_t v = h->w[wi] >> sh;
    if (sh + width > 64)
        v |= h->w[wi + 1] << (64 - sh);
    return v & ((1ull << width) - 1);
}

static inline uint32_t primary_bucket(const cordon_index_t *idx,
                                      const cordon_hash256_t *h)
{
    const table_t *t = &idx->tab[0];
    return (uint32_t)(sub_key(h, t->bit, t->width) >> (t->width - t->dbits));
}

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* ORs v (< 2^57) into a zeroed bit stream at bitpos. */
static inline void or_bits(uint8_t *base, uint64_t bitpos, uint64_t v)
{
    uint8_t *p = base + (bitpos >> 3);
    uint64_t x = load64(p) | (v << (bitpos & 7));
    memcpy(p, &x, 8);
}

/* Reads w <= 64 bits at bitpos (the stream has 8 readable bytes past it). */
static inline uint64_t get_bits(const uint8_t *base, uint64_t bitpos, int w)
{
    if (w <= 32)
        return cordon__bits57(base, bitpos) & ((1ull << w) - 1);
    uint64_t lo = cordon__bits57(base, bitpos) & 0xffffffffu;
    uint64_t hi = cordon__bits57(base, bitpos + 32) &
                  (w == 64 ? 0xffffffffu : (1ull << (w - 32)) - 1);
    return lo | hi << 32;
}

static inline void put_bits(uint8_t *base, uint64_t bitpos, uint64_t v, int w)
{
    if (w > 32) {
        or_bits(base, bitpos, v & 0xffffffffu);
        or_bits(base, bitpos + 32, v >> 32);
    } else if (w > 0) {
        or_bits(base, bitpos, v);
    }
}

static inline uint32_t dir_get(const dir_t *d, size_t b)
{
    return d->full ? d->full[b] : d->base[b >> 6] + d->off[b];
}

/* Bytes of the packed high id bits of n records (with room for get_bits
 * to read past the last). */
static inline size_t idhi_bytes(size_t n, int xbits)
{
    return (size_t)(((uint64_t)n * (unsigned)xbits + 7) / 8 + 16);
}

/* The id of indexed record r. */
static inline uint64_t rec_id(const cordon_index_t *idx, size_t r)
{
    uint64_t lo = idx->ibits ? (idx->hash[r].w[0] >> idx->ipos) &
                                   ((1ull << idx->ibits) - 1)
                             : 0;
    if (!idx->xbits)
        return lo;
    return lo | get_bits(idx->idhi, (uint64_t)r * (unsigned)idx->xbits,
                         idx->xbits)
                    << idx->ibits;
}

/* The primary bucket holding indexed record r: a binary search. */
static size_t rec_bucket(const cordon_index_t *idx, size_t r)
{
    const dir_t *d = &idx->tab[0].dir;
    size_t lo = 0, hi = d->nb; /* dir[lo] <= r < dir[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (dir_get(d, mid) <= r)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* The stored hash of indexed record r, which lies in primary bucket b,
 * its directory bits restored. */
static inline void rec_hash_in(const cordon_index_t *idx, size_t r, size_t b,
                               cordon_hash256_t *h)
{
    *h = idx->hash[r];
    if (idx->ibits)
        h->w[0] = (h->w[0] & idx->m0) | ((uint64_t)b << idx->ipos);
}

/* The same when the bucket is not known. */
static inline void rec_hash(const cordon_index_t *idx, size_t r,
                            cordon_hash256_t *h)
{
    rec_hash_in(idx, r, idx->ibits ? rec_bucket(idx, r) : 0, h);
}

static int ceil_log2(size_t n)
{
    int lg = 0;
    while (lg < 63 && ((size_t)1 << lg) < n)
        lg++;
    return lg;
}

static int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Allocations of the index's big arrays. Past a few megabytes they are
 * 2 MiB aligned and advised to use huge pages: queries touch them at random,
 * and with 4 KiB pages nearly every access would also miss the TLB. */
#define HUGE_MIN (4u << 20)
#define HUGE_ALIGN (2u << 20)

/* What xaligned() really takes for a request of `bytes`. */
static size_t alloc_size(size_t bytes)
{
    size_t sz = (bytes + 63) & ~(size_t)63;
    if (!sz)
        sz = 64;
    if (sz >= HUGE_MIN)
        sz = (sz + HUGE_ALIGN - 1) & ~(size_t)(HUGE_ALIGN - 1);
    return sz;
}

static void *xaligned(size_t bytes)
{
    size_t sz = alloc_size(bytes);
    if (sz < HUGE_MIN)
        return aligned_alloc(64, sz);
    void *p = aligned_alloc(HUGE_ALIGN, sz);
#ifdef MADV_HUGEPAGE
    if (p)
        (void)madvise(p, sz, MADV_HUGEPAGE);
#endif
    return p;
}

static void *xcalloc(size_t bytes)
{
    void *p = xaligned(bytes);
    if (p)
        memset(p, 0, bytes);
    return p;
}

/* Grows *p (elements of esz bytes) to hold at least need; 0 or ENOMEM. */
static int grow(void **p, size_t *cap, size_t need, size_t esz)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 256;
    while (nc < need) {
        if (nc > SIZE_MAX / 2 / esz)
            return CORDON_ENOMEM;
        nc *= 2;
    }
    void *q = realloc(*p, nc * esz);
    if (!q)
        return CORDON_ENOMEM;
    *p = q;
    *cap = nc;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Kernels: scalar versions and the one dispatch point                       */

static inline int masked_distance(const cordon_hash256_t *a,
                                  const cordon_hash256_t *b, uint64_t m0)
{
    return popcount64((a->w[0] ^ b->w[0]) & m0) +
           popcount64(a->w[1] ^ b->w[1]) + popcount64(a->w[2] ^ b->w[2]) +
           popcount64(a->w[3] ^ b->w[3]);
}

size_t cordon__index_scan_scalar(const cordon_hash256_t *recs, size_t n,
                                 const cordon_hash256_t *q, int nq, int t,
                                 uint64_t m0, uint32_t base, uint64_t *out)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        int best = masked_distance(&recs[i], &q[0], m0), bv = 0;
        for (int v = 1; v < nq; v++) {
            int d = masked_distance(&recs[i], &q[v], m0);
            if (d < best) {
                best = d;
                bv = v;
            }
        }
        if (best <= t)
            out[m++] = CORDON__HIT(base + (uint32_t)i, best, bv);
    }
    return m;
}

size_t cordon__index_efilter_scalar(const uint8_t *data, uint64_t boff,
                                    uint32_t nb, int f, int l, uint32_t H,
                                    uint32_t qfp, int rr, uint32_t *out)
{
    return cordon__efilter_body(data, boff, nb, f, l, H, qfp, rr, out);
}

size_t cordon__index_verify_scalar(const cordon_hash256_t *recs,
                                   const uint64_t *tasks, size_t ntasks,
                                   const cordon_hash256_t *q, int t,
                                   uint64_t m0, uint64_t *out)
{
    return cordon__verify_body(recs, tasks, ntasks, q, t, m0, out, 16,
                               cordon__index_scan_scalar);
}

static cordon__verify_fn pick_verify(void)
{
    unsigned f = cordon_cpu_features();
#if defined(__x86_64__)
    if (f & CORDON_CPU_AVX512)
        return cordon__index_verify_avx512;
    if (f & CORDON_CPU_AVX2)
        return cordon__index_verify_avx2;
#endif
    (void)f;
    return cordon__index_verify_scalar;
}

static cordon__scan_fn pick_scan(void)
{
    unsigned f = cordon_cpu_features();
#if defined(__x86_64__)
    if (f & CORDON_CPU_AVX512)
        return cordon__index_scan_avx512;
    if (f & CORDON_CPU_AVX2)
        return cordon__index_scan_avx2;
#endif
    (void)f;
    return cordon__index_scan_scalar;
}

static cordon__efilter_fn pick_filter(void)
{
    unsigned f = cordon_cpu_features();
#if defined(__x86_64__)
    if (f & CORDON_CPU_AVX512)
        return cordon__index_efilter_avx512;
    if (f & CORDON_CPU_AVX2)
        return cordon__index_efilter_avx2;
#endif
    (void)f;
    return cordon__index_efilter_scalar;
}

/* ------------------------------------------------------------------------ */
/* Options, creation, teardown                                               */

void cordon_index_opts_default(cordon_index_opts_t *opts)
{
    if (opts)
        memset(opts, 0, sizeof *opts);
}

static int opts_valid(const cordon_index_opts_t *o)
{
    if (o->substrings && (o->substrings < MIN_SUB || o->substrings > MAX_SUB))
        return 0;
    if (o->entry_bits && (o->entry_bits < 16 || o->entry_bits > 32))
        return 0;
    if (o->tail_limit > CORDON_INDEX_MAX_ENTRIES)
        return 0;
    return 1;
}

int cordon_index_create(const cordon_index_opts_t *opts, cordon_index_t **out)
{
    if (!out)
        return CORDON_EINVAL;
    *out = NULL;
    cordon_index_opts_t o;
    cordon_index_opts_default(&o);
    if (opts)
        o = *opts;
    if (!opts_valid(&o))
        return CORDON_EINVAL;
    cordon_index_t *idx = calloc(1, sizeof *idx);
    if (!idx)
        return CORDON_ENOMEM;
    idx->opts = o;
    idx->m0 = ~0ull;
    *out = idx;
    return CORDON_OK;
}

static void dir_free(dir_t *d)
{
    free(d->full);
    free(d->base);
    free(d->off);
    memset(d, 0, sizeof *d);
}

static size_t dir_bytes(const dir_t *d)
{
    if (d->full)
        return alloc_size((d->nb + 1) * sizeof *d->full);
    if (d->off)
        return alloc_size((d->nb + 1) * sizeof *d->off) +
               alloc_size(((d->nb >> 6) + 1) * sizeof *d->base);
    return 0;
}

/* Takes over full[0..nb] and converts it to the compact form if it fits
 * (and memory allows; the full form works as well). */
static void dir_set(dir_t *d, uint32_t *full, size_t nb)
{
    d->nb = nb;
    d->full = full;
    for (size_t g = 0; g <= (nb >> 6); g++) {
        size_t last = (g << 6) + 63 < nb ? (g << 6) + 63 : nb;
        if (full[last] - full[g << 6] > 65535)
            return;
    }
    uint32_t *base = xaligned(((nb >> 6) + 1) * sizeof *base);
    uint16_t *off = xaligned((nb + 1) * sizeof *off);
    if (!base || !off) {
        free(base);
        free(off);
        return;
    }
    for (size_t g = 0; g <= (nb >> 6); g++)
        base[g] = full[g << 6];
    for (size_t b = 0; b <= nb; b++)
        off[b] = (uint16_t)(full[b] - base[b >> 6]);
    free(full);
    d->full = NULL;
    d->base = base;
    d->off = off;
}

static void free_indexed(cordon_index_t *idx)
{
    for (int i = 0; i < MAX_SUB; i++)
        dir_free(&idx->tab[i].dir);
    memset(idx->tab, 0, sizeof idx->tab);
    free(idx->sec);
    free(idx->hash);
    free(idx->idhi);
    free(idx->flags);
    free(idx->dead);
    idx->sec = NULL;
    idx->sec_bytes = 0;
    idx->hash = NULL;
    idx->idhi = NULL;
    idx->flags = NULL;
    idx->dead = NULL;
    idx->n = idx->ndead = 0;
    idx->nsub = 0;
    idx->ibits = idx->ipos = idx->xbits = 0;
    idx->m0 = ~0ull;
}

void cordon_index_free(cordon_index_t *idx)
{
    if (!idx)
        return;
    free_indexed(idx);
    free(idx->thash);
    free(idx->tid);
    free(idx->tflags);
    free(idx);
}

/* ------------------------------------------------------------------------ */
/* Geometry                                                                  */

typedef struct {
    int nsub; /* 1 = primary only */
    int pshift;
    table_t tab[MAX_SUB]; /* bit, width, dbits, fbits, lbits, hz only */
} geom_t;

static int auto_substrings(size_t n)
{
    /* Theory (Norouzi et al.) puts the optimum near 256 / log2(n)
     * substrings, so that a substring value holds about one record. On a
     * Zen 5 core 11 measured best from 1 to 10 million records, 12 at 1
     * million being as fast; below that the scan competes anyway and more,
     * narrower substrings keep each table's visits cheap. */
    int lg = ceil_log2(n);
    return lg >= 20 ? 11 : lg >= 18 ? 12 : lg >= 16 ? 14 : 16;
}

/* Directory bits of the primary table: buckets of 4 to 8 records (2 or 3
 * cache lines, read as one stretch), whose records are whole 32-byte hashes.
 * At 10 million records buckets of about 10 records measured 25% slower
 * (in an earlier layout; 2% faster in this one, within the noise), and
 * buckets of 2.4 no faster while their directory cost 0.4 bytes per hash
 * more. The directory bits also hold id bits. */
static int primary_dbits(size_t n)
{
    return ceil_log2(n > 1 ? n : 2) - 3;
}

static void choose_geom(const cordon_index_t *idx, size_t n, geom_t *g)
{
    memset(g, 0, sizeof *g);
    int lg = ceil_log2(n > 1 ? n : 2);
    int k = idx->opts.substrings ? idx->opts.substrings : auto_substrings(n);
    if (n < MIH_MIN_RECORDS)
        k = MIN_SUB; /* only the primary table is built */
    int w[MAX_SUB];
    if (!idx->opts.substrings && n >= MIH_MIN_RECORDS && k == 11) {
        /* The automatic layout. A secondary table costs about its
         * substring width + log2(pages) - log2(records) + 2 bits per
         * entry, and its chance candidates (entries whose substring lies
         * within the radius) fall by half per bit of an r = 2 table but
         * double per bit taken from the last, r = 1 table (at T = 31): so
         * that one gets 20 bits, which pays for three 24-bit ones among the
         * others. The primary's bits cost no memory, but bits beyond its
         * directory's do no filtering either (its buckets are verified
         * whole), so it gets just those and the secondaries the rest: at
         * 10 million records 21 bits instead of 26, 1,960 chance
         * candidates per query hash instead of 2,700. */
        w[0] = clampi(primary_dbits(n), 8, 32);
        w[k - 1] = 20;
        int rest = 256 - w[0] - w[k - 1], mid = k - 2;
        for (int i = 1; i < k - 1; i++)
            w[i] = rest / mid + (i - 1 < rest % mid ? 1 : 0);
    } else {
        /* Equal widths; the primary substring takes the leftover bits (at
         * most k - 1 more, <= 32): they cost no memory, only verification. */
        int ws = 256 / k;
        w[0] = 256 - (k - 1) * ws;
        for (int i = 1; i < k; i++)
            w[i] = ws;
    }
    for (int i = 0, bit = 0; i < k; i++) {
        g->tab[i].bit = (uint16_t)bit;
        g->tab[i].width = (uint8_t)w[i];
        bit += w[i];
    }
    g->tab[0].dbits = (uint8_t)clampi(primary_dbits(n), 0, w[0]);
    g->pshift = 0;
    if (n < MIH_MIN_RECORDS) {
        g->nsub = 1;
        return;
    }
    g->nsub = k;
    /* Pages of four records (two adjacent cache lines, which cost about
     * as much as one: what a random access costs on the machines measured
     * is reaching the page, not the line) unless entry_bits asks
     * otherwise: each bit below 29 doubles the page. Against pages of two
     * they save a bit per entry and table, which paid for the primary's
     * narrower substring above. */
    int ps = idx->opts.entry_bits ? clampi(29 - idx->opts.entry_bits, 0, 6) : 2;
    g->pshift = ps;
    size_t npages = ((n - 1) >> ps) + 1;
    for (int i = 1; i < k; i++) {
        /* Secondary buckets of about 128 entries (some 400 bytes, read as
         * one stretch): fewer buckets would mean more to visit, more would
         * mean more bytes per visit; the directory costs 2 bytes per
         * bucket. (The bits per entry do not depend on the split between
         * directory and fingerprint: Elias-Fano's low bits take up the
         * difference.) */
        int ds = clampi(lg - 7, 1, w[i]);
        /* Elias-Fano: low bits of about log2(pages per entry of a
         * bucket). */
        double per = (double)npages * (double)((size_t)1 << ds) / (double)n;
        int l = 0;
        while (l < 31 && (double)(1ull << (l + 1)) <= per)
            l++;
        g->tab[i].dbits = (uint8_t)ds;
        g->tab[i].fbits = (uint8_t)(w[i] - ds);
        g->tab[i].lbits = (uint8_t)l;
        g->tab[i].hz = (uint32_t)(((npages - 1) >> l) + 1);
    }
}

/* Bit offset of bucket b's stream in a secondary table, from its first
 * entry number s. */
static inline uint64_t bucket_bit(const table_t *t, uint64_t s, uint64_t b)
{
    return s * (unsigned)(t->fbits + t->lbits + 1) + b * t->hz;
}

/* ------------------------------------------------------------------------ */
/* Build                                                                     */

typedef struct {
    const cordon_hash256_t *hash;
    const uint64_t *id;
    /* When not NULL, the source is this index's indexed part (hash and id
     * are then unused: its records are unpacked). */
    const cordon_index_t *packed;
    const uint8_t *flags; /* NULL = zero */
    const uint64_t *dead; /* NULL = none dead */
    size_t n;
} source_t;

/* Bits of a bucket number partitioned in the first radix pass: 256 output
 * streams stay in L1, and each partition then fits in L2. */
#define RADIX_HI 8

/*
 * Stable two-pass radix ordering of m items by key[i] (kbits bits): writes
 * perm (final position -> item) and dir (2^kbits + 1 bucket starts). tmp
 * holds m words. A single pass would scatter into 2^kbits places at once
 * and miss the cache on nearly every write.
 */
static void radix_perm(const uint32_t *key, size_t m, int kbits, uint64_t *tmp,
                       uint32_t *perm, uint32_t *dir)
{
    int hb = kbits < RADIX_HI ? kbits : RADIX_HI, lb = kbits - hb;
    size_t nh = (size_t)1 << hb;
    uint32_t hcur[(1 << RADIX_HI) + 1];
    memset(dir, 0, ((size_t)1 << kbits) * sizeof *dir + sizeof *dir);
    for (size_t i = 0; i < m; i++)
        dir[key[i] + 1]++;
    for (size_t b = 0; b < (nh << lb); b++)
        dir[b + 1] += dir[b];
    for (size_t h = 0; h < nh; h++)
        hcur[h] = dir[h << lb];
    for (size_t i = 0; i < m; i++)
        tmp[hcur[key[i] >> lb]++] = ((uint64_t)key[i] << 32) | i;
    for (size_t h = 0; h < nh; h++) {
        /* The partition's bucket cursors (dir entries) stay in cache. */
        size_t lo = dir[h << lb], hi = dir[(h + 1) << lb];
        for (size_t j = lo; j < hi; j++)
            perm[dir[tmp[j] >> 32]++] = (uint32_t)tmp[j];
    }
    /* dir[b] now holds the end of bucket b: shift back to starts. */
    for (size_t b = (nh << lb); b > 0; b--)
        dir[b] = dir[b - 1];
    dir[0] = 0;
}

static int rec_less(const cordon_hash256_t *ha, uint64_t ia, uint32_t oa,
                    const cordon_hash256_t *hb, uint64_t ib, uint32_t ob)
{
    for (int w = 3; w >= 0; w--)
        if (ha->w[w] != hb->w[w])
            return ha->w[w] < hb->w[w];
    if (ia != ib)
        return ia < ib;
    return oa < ob;
}

typedef struct {
    const cordon_hash256_t *h;
    const uint64_t *id;
    const uint32_t *orig;
} rec_ctx_t;

static int rec_qcmp(const void *a, const void *b, void *ctx)
{
    const rec_ctx_t *c = ctx;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    if (rec_less(&c->h[x], c->id[x], c->orig[x], &c->h[y], c->id[y],
                 c->orig[y]))
        return -1;
    return rec_less(&c->h[y], c->id[y], c->orig[y], &c->h[x], c->id[x],
                    c->orig[x]);
}

/*
 * Sorts the contiguous records [lo, hi) by (hash, id, input order) and
 * drops exact (hash, id) repeats, keeping the earliest input. Returns the
 * new end. Small buckets, the common case, are insertion-sorted in place;
 * large ones (heavy duplication) go through qsort on an index.
 */
static size_t sort_dedupe(cordon_hash256_t *h, uint64_t *id, uint8_t *fl,
                          uint32_t *orig, size_t lo, size_t hi,
                          uint32_t *idxbuf)
{
    size_t n = hi - lo;
    if (n > 32) {
        rec_ctx_t c = {h, id, orig};
        for (size_t i = 0; i < n; i++)
            idxbuf[i] = (uint32_t)(lo + i);
        qsort_r(idxbuf, n, sizeof *idxbuf, rec_qcmp, &c);
        /* Apply the permutation by cycles. */
        for (size_t i = 0; i < n; i++) {
            if (idxbuf[i] == (uint32_t)(lo + i))
                continue;
            cordon_hash256_t th = h[lo + i];
            uint64_t ti = id[lo + i];
            uint8_t tf = fl[lo + i];
            uint32_t to = orig[lo + i];
            size_t j = i;
            for (;;) {
                size_t k = idxbuf[j] - lo;
                idxbuf[j] = (uint32_t)(lo + j);
                if (k == i) {
                    h[lo + j] = th;
                    id[lo + j] = ti;
                    fl[lo + j] = tf;
                    orig[lo + j] = to;
                    break;
                }
                h[lo + j] = h[lo + k];
                id[lo + j] = id[lo + k];
                fl[lo + j] = fl[lo + k];
                orig[lo + j] = orig[lo + k];
                j = k;
            }
        }
    } else {
        for (size_t i = lo + 1; i < hi; i++) {
            cordon_hash256_t th = h[i];
            uint64_t ti = id[i];
            uint8_t tf = fl[i];
            uint32_t to = orig[i];
            size_t j = i;
            while (j > lo &&
                   rec_less(&th, ti, to, &h[j - 1], id[j - 1], orig[j - 1])) {
                h[j] = h[j - 1];
                id[j] = id[j - 1];
                fl[j] = fl[j - 1];
                orig[j] = orig[j - 1];
                j--;
            }
            h[j] = th;
            id[j] = ti;
            fl[j] = tf;
            orig[j] = to;
        }
    }
    size_t out = lo;
    for (size_t i = lo; i < hi; i++) {
        if (i > lo && id[i] == id[out - 1] && hash_equal(&h[i], &h[out - 1]))
            continue;
        if (out != i) {
            h[out] = h[i];
            id[out] = id[i];
            fl[out] = fl[i];
            orig[out] = orig[i];
        }
        out++;
    }
    return out;
}

/* Builds the secondary table t over the final records into its stream
 * (zeroed, already placed in idx->sec); tmp holds n words. */
static int build_secondary(cordon_index_t *idx, table_t *t, uint64_t *tmp)
{
    size_t nb = (size_t)1 << t->dbits;
    uint32_t *cur = NULL;
    uint32_t *dir = xcalloc((nb + 1) * sizeof *dir);
    int hb = t->dbits < RADIX_HI ? t->dbits : RADIX_HI, lb = t->dbits - hb;
    size_t nh = (size_t)1 << hb;
    cur = malloc(((size_t)1 << lb) * sizeof *cur);
    if (!dir || !cur)
        goto fail;
    unsigned f = t->fbits, l = t->lbits, ps = (unsigned)idx->pshift;
    uint32_t fmask = (uint32_t)((1ull << f) - 1), lmask = (1u << l) - 1;
    for (size_t r = 0; r < idx->n; r++)
        dir[(sub_key(&idx->hash[r], t->bit, t->width) >> f) + 1]++;
    for (size_t b = 0; b < nb; b++)
        dir[b + 1] += dir[b];
    /* Pass 1: (key, record) pairs into 256 partitions, in record order. */
    uint32_t hcur[(1 << RADIX_HI) + 1];
    for (size_t h = 0; h < nh; h++)
        hcur[h] = dir[h << lb];
    for (size_t r = 0; r < idx->n; r++) {
        uint32_t key = (uint32_t)sub_key(&idx->hash[r], t->bit, t->width);
        tmp[hcur[(key >> f) >> lb]++] = ((uint64_t)key << 32) | r;
    }
    /* Pass 2: each partition's buckets are written in an L2-sized stretch
     * of the stream; records stay in order, so pages rise in a bucket. */
    for (size_t h = 0; h < nh; h++) {
        size_t lo = dir[h << lb], hi = dir[(h + 1) << lb];
        memcpy(cur, &dir[h << lb], ((size_t)1 << lb) * sizeof *cur);
        for (size_t j = lo; j < hi; j++) {
            uint32_t key = (uint32_t)(tmp[j] >> 32), r = (uint32_t)tmp[j];
            uint32_t b = key >> f;
            uint32_t s0 = dir[b], cnt = dir[b + 1] - s0;
            uint32_t e = cur[b & (((uint32_t)1 << lb) - 1)]++ - s0;
            uint64_t bo = bucket_bit(t, s0, b);
            uint32_t page = r >> ps;
            if (f)
                or_bits(t->data, bo + (uint64_t)e * f, key & fmask);
            uint64_t u0 = bo + (uint64_t)cnt * f;
            or_bits(t->data, u0 + e + (page >> l), 1);
            if (l)
                or_bits(t->data, u0 + cnt + t->hz + (uint64_t)e * l,
                        page & lmask);
        }
    }
    free(cur);
    dir_set(&t->dir, dir, nb);
    return CORDON_OK;
fail:
    free(cur);
    free(dir);
    return CORDON_ENOMEM;
}

/* Bytes of table t's stream over n records, rounded to a cache line. */
static size_t table_bytes(const table_t *t, size_t n)
{
    uint64_t bits = bucket_bit(t, n, (uint64_t)1 << t->dbits);
    return (size_t)((bits + 511) / 512 * 64);
}

/* Copies the live records of a source into the gathering arrays. */
static size_t gather(const source_t *src, cordon_hash256_t *gh, uint64_t *gid,
                     uint8_t *gfl)
{
    size_t m = 0;
    const cordon_index_t *p = src->packed;
    if (p) {
        const dir_t *d = &p->tab[0].dir;
        for (size_t b = 0; b < d->nb; b++) {
            for (size_t r = dir_get(d, b); r < dir_get(d, b + 1); r++) {
                if (src->dead && (src->dead[r >> 6] >> (r & 63)) & 1)
                    continue;
                rec_hash_in(p, r, b, &gh[m]);
                gid[m] = rec_id(p, r);
                gfl[m] = src->flags ? src->flags[r] : 0;
                m++;
            }
        }
        return m;
    }
    for (size_t i = 0; i < src->n; i++) {
        if (src->dead && (src->dead[i >> 6] >> (i & 63)) & 1)
            continue;
        gh[m] = src->hash[i];
        gid[m] = src->id[i];
        gfl[m] = src->flags ? src->flags[i] : 0;
        m++;
    }
    return m;
}

/*
 * Replaces the indexed part and the tail with the live records of the
 * sources, deduplicated by (hash, id): the first occurrence wins. On failure
 * the index is unchanged.
 */
static int rebuild(cordon_index_t *idx, const source_t *src, int nsrc)
{
    int err = CORDON_ENOMEM;
    size_t total = 0;
    int nonempty = 0, clean = 1;
    const source_t *only = NULL;
    for (int s = 0; s < nsrc; s++) {
        total += src[s].n;
        if (src[s].n) {
            nonempty++;
            only = &src[s];
            clean &= !src[s].dead && !src[s].packed;
        }
    }
    if (total > CORDON_INDEX_MAX_ENTRIES)
        return CORDON_ETOOLARGE;

    cordon_index_t nw;
    memset(&nw, 0, sizeof nw);
    nw.opts = idx->opts;
    cordon_hash256_t *gh = NULL;
    uint64_t *gid = NULL, *tmp = NULL;
    uint8_t *gfl = NULL, *fl = NULL;
    uint32_t *key = NULL, *perm = NULL, *idxbuf = NULL;
    uint64_t *id64 = NULL;
    const cordon_hash256_t *ih;
    const uint64_t *iid;
    const uint8_t *ifl;
    size_t m = 0;

    if (nonempty <= 1 && clean) {
        /* One clean source (a bulk load into an empty index): read it in
         * place instead of copying hundreds of megabytes. */
        ih = only ? only->hash : NULL;
        iid = only ? only->id : NULL;
        ifl = only ? only->flags : NULL;
        m = only ? only->n : 0;
    } else {
        gh = xaligned(total * sizeof *gh);
        gid = xaligned(total * sizeof *gid);
        gfl = xaligned(total);
        if (!gh || !gid || !gfl)
            goto fail;
        for (int s = 0; s < nsrc; s++)
            m += gather(&src[s], gh + m, gid + m, gfl + m);
        ih = gh;
        iid = gid;
        ifl = gfl;
    }

    geom_t g;
    choose_geom(idx, m, &g);
    memcpy(nw.tab, g.tab, sizeof nw.tab);
    nw.nsub = g.nsub;
    nw.pshift = g.pshift;

    /* Order the records by primary bucket. */
    table_t *t0 = &nw.tab[0];
    size_t nb = (size_t)1 << t0->dbits;
    unsigned sh0 = t0->width - t0->dbits;
    uint32_t *pdir = NULL;
    key = xaligned(m * sizeof *key);
    perm = xaligned(m * sizeof *perm);
    tmp = xaligned(m * sizeof *tmp);
    pdir = xcalloc((nb + 1) * sizeof *pdir);
    t0->dir.full = pdir; /* freed with nw on failure */
    t0->dir.nb = nb;
    nw.hash = xaligned(m * sizeof *nw.hash);
    id64 = xaligned(m * sizeof *id64);
    fl = xaligned(m);
    if (!key || !perm || !tmp || !pdir || !nw.hash || !id64 || !fl)
        goto fail;
    for (size_t i = 0; i < m; i++)
        key[i] = sub_key(&ih[i], t0->bit, t0->width) >> sh0;
    radix_perm(key, m, t0->dbits, tmp, perm, pdir);
    free(key);
    key = NULL;
    for (size_t j = 0; j < m; j++) {
        if (j + 16 < m)
            __builtin_prefetch(&ih[perm[j + 16]]);
        nw.hash[j] = ih[perm[j]];
        id64[j] = iid[perm[j]];
        fl[j] = ifl ? ifl[perm[j]] : 0;
    }
    /* Sort and deduplicate inside each bucket, compacting as we go. */
    size_t maxb = 0;
    for (size_t b = 0; b < nb; b++)
        if (pdir[b + 1] - pdir[b] > maxb)
            maxb = pdir[b + 1] - pdir[b];
    idxbuf = malloc((maxb ? maxb : 1) * sizeof *idxbuf);
    if (!idxbuf)
        goto fail;
    size_t out = 0;
    for (size_t b = 0; b < nb; b++) {
        size_t lo = pdir[b], hi = pdir[b + 1];
        size_t end = sort_dedupe(nw.hash, id64, fl, perm, lo, hi, idxbuf);
        pdir[b] = (uint32_t)out;
        if (out != lo) {
            memmove(&nw.hash[out], &nw.hash[lo], (end - lo) * sizeof *nw.hash);
            memmove(&id64[out], &id64[lo], (end - lo) * sizeof *id64);
            memmove(&fl[out], &fl[lo], end - lo);
        }
        out += end - lo;
    }
    pdir[nb] = (uint32_t)out;
    nw.n = out;
    free(idxbuf);
    idxbuf = NULL;
    free(perm);
    perm = NULL;
    /* Ids: the low ibits in place of the directory bits of the hash, the
     * rest packed in as few bits as the largest id needs. */
    uint64_t maxid = 0;
    for (size_t r = 0; r < out; r++)
        maxid = id64[r] > maxid ? id64[r] : maxid;
    int idbits = 0;
    while (idbits < 64 && (maxid >> idbits))
        idbits++;
    nw.ibits = t0->dbits;
    nw.ipos = t0->width - t0->dbits;
    nw.m0 = ~(((1ull << nw.ibits) - 1) << nw.ipos);
    nw.xbits = idbits > nw.ibits ? idbits - nw.ibits : 0;
    if (nw.xbits) {
        nw.idhi = xcalloc(idhi_bytes(out, nw.xbits));
        if (!nw.idhi)
            goto fail;
    }
    for (size_t r = 0; r < out; r++) {
        if (nw.ibits)
            nw.hash[r].w[0] =
                (nw.hash[r].w[0] & nw.m0) |
                ((id64[r] & ((1ull << nw.ibits) - 1)) << nw.ipos);
        if (nw.xbits)
            put_bits(nw.idhi, (uint64_t)r * (unsigned)nw.xbits,
                     id64[r] >> nw.ibits, nw.xbits);
    }
    free(id64);
    id64 = NULL;
    int anyflag = 0;
    for (size_t r = 0; r < out && !anyflag; r++)
        anyflag = fl[r] != 0;
    if (anyflag) {
        nw.flags = fl;
        fl = NULL;
    }
    free(fl);
    fl = NULL;
    free(gh);
    gh = NULL;
    free(gid);
    gid = NULL;
    free(gfl);
    gfl = NULL;

    /* One block for every secondary stream: fewer huge-page roundings. */
    if (nw.nsub > 1) {
        size_t tot = 0;
        for (int i = 1; i < nw.nsub; i++)
            tot += table_bytes(&nw.tab[i], nw.n);
        nw.sec_bytes = tot + CORDON_INDEX_ENT_PAD;
        nw.sec = xcalloc(nw.sec_bytes);
        if (!nw.sec)
            goto fail;
        tot = 0;
        for (int i = 1; i < nw.nsub; i++) {
            nw.tab[i].data = nw.sec + tot;
            tot += table_bytes(&nw.tab[i], nw.n);
        }
    }
    for (int i = 1; i < nw.nsub; i++) {
        err = build_secondary(&nw, &nw.tab[i], tmp);
        if (err)
            goto fail;
    }
    free(tmp);
    tmp = NULL;
    /* t0->dir.full is pdir: convert it last, when nothing can fail. */
    t0->dir.full = NULL;
    dir_set(&t0->dir, pdir, nb);

    /* Commit: the tail's records are now in the indexed part. */
    free_indexed(idx);
    idx->n = nw.n;
    idx->nalloc = m;
    idx->hash = nw.hash;
    idx->ibits = nw.ibits;
    idx->ipos = nw.ipos;
    idx->m0 = nw.m0;
    idx->xbits = nw.xbits;
    idx->idhi = nw.idhi;
    idx->flags = nw.flags;
    idx->nsub = nw.nsub;
    idx->pshift = nw.pshift;
    idx->sec = nw.sec;
    idx->sec_bytes = nw.sec_bytes;
    memcpy(idx->tab, nw.tab, sizeof idx->tab);
    idx->tn = 0;
    if (idx->tflags)
        memset(idx->tflags, 0, idx->tcap);
    return CORDON_OK;
fail:
    free(id64);
    free(idxbuf);
    free(fl);
    free(tmp);
    free(perm);
    free(key);
    free(gfl);
    free(gid);
    free(gh);
    free_indexed(&nw);
    return err ? err : CORDON_ENOMEM;
}

static int compact_with(cordon_index_t *idx, const source_t *extra)
{
    source_t src[3];
    int ns = 0;
    src[ns++] = (source_t){NULL, NULL, idx, idx->flags, idx->dead, idx->n};
    src[ns++] =
        (source_t){idx->thash, idx->tid, NULL, idx->tflags, NULL, idx->tn};
    if (extra)
        src[ns++] = *extra;
    return rebuild(idx, src, ns);
}

int cordon_index_compact(cordon_index_t *idx)
{
    if (!idx)
        return CORDON_EINVAL;
    return compact_with(idx, NULL);
}

/* ------------------------------------------------------------------------ */
/* Updates                                                                   */

static size_t tail_limit(const cordon_index_t *idx)
{
    if (idx->opts.tail_limit)
        return idx->opts.tail_limit;
    size_t l = idx->n / 128;
    return l < TAIL_MIN ? TAIL_MIN : l > TAIL_MAX ? TAIL_MAX : l;
}

static inline int is_dead(const cordon_index_t *idx, size_t r)
{
    return idx->dead && ((idx->dead[r >> 6] >> (r & 63)) & 1);
}

/* Position of the live pair in the indexed part, or SIZE_MAX. */
static size_t find_indexed(const cordon_index_t *idx, const cordon_hash256_t *h,
                           uint64_t id)
{
    if (!idx->n)
        return SIZE_MAX;
    uint32_t b = primary_bucket(idx, h);
    const dir_t *d = &idx->tab[0].dir;
    for (size_t r = dir_get(d, b); r < dir_get(d, b + 1); r++) {
        const cordon_hash256_t *x = &idx->hash[r];
        /* In bucket b the masked bits are h's own. */
        if (rec_id(idx, r) == id && ((x->w[0] ^ h->w[0]) & idx->m0) == 0 &&
            x->w[1] == h->w[1] && x->w[2] == h->w[2] && x->w[3] == h->w[3] &&
            !is_dead(idx, r))
            return r;
    }
    return SIZE_MAX;
}

static size_t find_tail(const cordon_index_t *idx, const cordon_hash256_t *h,
                        uint64_t id)
{
    for (size_t i = 0; i < idx->tn; i++) {
        if (idx->tid[i] == id && hash_equal(&idx->thash[i], h))
            return i;
    }
    return SIZE_MAX;
}

static int tail_reserve(cordon_index_t *idx, size_t need)
{
    if (need <= idx->tcap)
        return 0;
    size_t nc = idx->tcap ? idx->tcap * 2 : 256;
    while (nc < need)
        nc *= 2;
    cordon_hash256_t *h = xaligned(nc * sizeof *h);
    uint64_t *id = realloc(idx->tid, nc * sizeof *id);
    if (id)
        idx->tid = id;
    uint8_t *fl = NULL;
    if (idx->tflags) {
        fl = realloc(idx->tflags, nc);
        if (fl) {
            memset(fl + idx->tcap, 0, nc - idx->tcap);
            idx->tflags = fl;
        }
    }
    if (!h || !id || (idx->tflags && !fl)) {
        free(h);
        return CORDON_ENOMEM;
    }
    if (idx->tn)
        memcpy(h, idx->thash, idx->tn * sizeof *h);
    free(idx->thash);
    idx->thash = h;
    idx->tcap = nc;
    return 0;
}

int cordon_index_add(cordon_index_t *idx, const cordon_hash256_t *hash,
                     uint64_t id, uint8_t flags)
{
    if (!idx || !hash)
        return CORDON_EINVAL;
    if (find_indexed(idx, hash, id) != SIZE_MAX ||
        find_tail(idx, hash, id) != SIZE_MAX)
        return CORDON_EEXIST;
    if (cordon_index_size(idx) >= CORDON_INDEX_MAX_ENTRIES)
        return CORDON_ETOOLARGE;
    if (idx->tn >= tail_limit(idx))
        (void)cordon_index_compact(idx); /* on failure the tail just grows */
    if (tail_reserve(idx, idx->tn + 1))
        return CORDON_ENOMEM;
    if (flags && !idx->tflags) {
        idx->tflags = calloc(idx->tcap, 1);
        if (!idx->tflags)
            return CORDON_ENOMEM;
    }
    idx->thash[idx->tn] = *hash;
    idx->tid[idx->tn] = id;
    if (idx->tflags)
        idx->tflags[idx->tn] = flags;
    idx->tn++;
    return CORDON_OK;
}

int cordon_index_add_bulk(cordon_index_t *idx, const cordon_hash256_t *hashes,
                          const uint64_t *ids, const uint8_t *flags, size_t n,
                          size_t *added)
{
    if (added)
        *added = 0;
    if (!idx || (n && (!hashes || !ids)))
        return CORDON_EINVAL;
    if (n > CORDON_INDEX_MAX_ENTRIES)
        return CORDON_ETOOLARGE;
    if (!n)
        return CORDON_OK;
    size_t before = cordon_index_size(idx);
    source_t extra = {hashes, ids, NULL, flags, NULL, n};
    int err = compact_with(idx, &extra);
    if (err)
        return err;
    if (added)
        *added = cordon_index_size(idx) - before;
    return CORDON_OK;
}

int cordon_index_remove(cordon_index_t *idx, const cordon_hash256_t *hash,
                        uint64_t id)
{
    if (!idx || !hash)
        return CORDON_EINVAL;
    size_t i = find_tail(idx, hash, id);
    if (i != SIZE_MAX) {
        idx->tn--;
        idx->thash[i] = idx->thash[idx->tn];
        idx->tid[i] = idx->tid[idx->tn];
        if (idx->tflags) {
            idx->tflags[i] = idx->tflags[idx->tn];
            idx->tflags[idx->tn] = 0;
        }
        return CORDON_OK;
    }
    size_t r = find_indexed(idx, hash, id);
    if (r == SIZE_MAX)
        return CORDON_ENOTFOUND;
    if (!idx->dead) {
        idx->dead = calloc((idx->n + 63) / 64, sizeof *idx->dead);
        if (!idx->dead)
            return CORDON_ENOMEM;
    }
    idx->dead[r >> 6] |= 1ull << (r & 63);
    idx->ndead++;
    if (idx->ndead > 64 && idx->ndead > idx->n / 4)
        (void)cordon_index_compact(idx); /* on failure the dead just wait */
    return CORDON_OK;
}

int cordon_index_set_flags(cordon_index_t *idx, const cordon_hash256_t *hash,
                           uint64_t id, uint8_t flags)
{
    if (!idx || !hash)
        return CORDON_EINVAL;
    size_t i = find_tail(idx, hash, id);
    if (i != SIZE_MAX) {
        if (!idx->tflags && flags) {
            idx->tflags = calloc(idx->tcap, 1);
            if (!idx->tflags)
                return CORDON_ENOMEM;
        }
        if (idx->tflags)
            idx->tflags[i] = flags;
        return CORDON_OK;
    }
    size_t r = find_indexed(idx, hash, id);
    if (r == SIZE_MAX)
        return CORDON_ENOTFOUND;
    if (!idx->flags && flags) {
        idx->flags = calloc(idx->n, 1);
        if (!idx->flags)
            return CORDON_ENOMEM;
    }
    if (idx->flags)
        idx->flags[r] = flags;
    return CORDON_OK;
}

/* ------------------------------------------------------------------------ */
/* Introspection                                                             */

size_t cordon_index_size(const cordon_index_t *idx)
{
    return idx ? idx->n - idx->ndead + idx->tn : 0;
}

size_t cordon_index_memory(const cordon_index_t *idx)
{
    if (!idx)
        return 0;
    size_t b = sizeof *idx;
    size_t n = idx->nalloc;
    if (idx->hash)
        b += alloc_size(n * sizeof *idx->hash);
    if (idx->idhi)
        b += alloc_size(idhi_bytes(idx->n, idx->xbits));
    if (idx->flags)
        b += idx->n;
    if (idx->dead)
        b += (idx->n + 63) / 64 * 8;
    for (int i = 0; i < idx->nsub; i++)
        b += dir_bytes(&idx->tab[i].dir);
    if (idx->sec)
        b += alloc_size(idx->sec_bytes);
    if (idx->thash)
        b += alloc_size(idx->tcap * sizeof *idx->thash);
    b += idx->tcap * sizeof *idx->tid;
    if (idx->tflags)
        b += idx->tcap;
    return b;
}

void cordon_index_stats(const cordon_index_t *idx, cordon_index_stats_t *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!idx)
        return;
    out->entries = cordon_index_size(idx);
    out->indexed = idx->n;
    out->dead = idx->ndead;
    out->tail = idx->tn;
    out->memory = cordon_index_memory(idx);
    out->substrings = idx->nsub > 1 ? idx->nsub : 0;
    if (idx->nsub > 1 && idx->n) {
        /* Average bits per entry of a table, rounded. */
        const table_t *t = &idx->tab[1];
        uint64_t bits = bucket_bit(t, idx->n, (uint64_t)1 << t->dbits);
        out->entry_bits = (int)((bits + idx->n / 2) / idx->n);
    }
    out->page_records = idx->nsub > 1 ? 1 << idx->pshift : 0;
    out->primary_bits = idx->tab[0].dbits;
    out->secondary_bits = idx->nsub > 1 ? idx->tab[1].dbits : 0;
}

/* ------------------------------------------------------------------------ */
/* Query                                                                     */

typedef struct {
    uint64_t *stage; /* staged hits, CORDON__HIT words */
    size_t nstage, capstage;
    uint64_t *visit; /* (table, variant, remaining radius, bucket) */
    size_t capvisit;
    uint64_t *task; /* CORDON__TASK words */
    size_t ntask, captask;
    size_t nready;  /* queued tasks whose lines were prefetched */
    uint32_t *surv; /* survivor pages of one bucket */
    size_t capsurv;
    uint32_t *order; /* for sorting hits */
    size_t caporder;
} scratch_t;

void cordon_index_results_init(cordon_index_results_t *res)
{
    if (res)
        memset(res, 0, sizeof *res);
}

void cordon_index_results_free(cordon_index_results_t *res)
{
    if (!res)
        return;
    scratch_t *s = res->scratch;
    if (s) {
        free(s->stage);
        free(s->visit);
        free(s->task);
        free(s->surv);
        free(s->order);
        free(s);
    }
    free(res->hits);
    memset(res, 0, sizeof *res);
}

/* The query's fixed inputs, shared by its stages. */
typedef struct {
    const cordon_index_t *idx;
    const cordon_hash256_t *q;
    int nq;
    int t; /* effective threshold; max_hits may lower it */
    const cordon_index_query_opts_t *o;
    scratch_t *s;
    cordon__scan_fn scan;
    cordon__efilter_fn filter;
    cordon__verify_fn verify;
    int t0; /* the caller's threshold, which set the radii */
} query_t;

/* Id and flags of staged record rec (indexed part or tail). */
static inline void rec_id_flags(const cordon_index_t *idx, uint32_t rec,
                                uint64_t *id, uint8_t *fl)
{
    if (rec < idx->n) {
        *id = rec_id(idx, rec);
        *fl = idx->flags ? idx->flags[rec] : 0;
    } else {
        rec -= (uint32_t)idx->n;
        *id = idx->tid[rec];
        *fl = idx->tflags ? idx->tflags[rec] : 0;
    }
}

/* The full stored hash of staged record rec. */
static inline void rec_full_hash(const cordon_index_t *idx, uint32_t rec,
                                 cordon_hash256_t *h)
{
    if (rec < idx->n)
        rec_hash(idx, rec, h);
    else
        *h = idx->thash[rec - idx->n];
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    const cordon_index_t *idx;
    const uint64_t *stage;
} order_ctx_t;

static int hit_order_cmp(const void *a, const void *b, void *ctx)
{
    const order_ctx_t *c = ctx;
    uint64_t x = c->stage[*(const uint32_t *)a];
    uint64_t y = c->stage[*(const uint32_t *)b];
    int dx = CORDON__HIT_DIST(x), dy = CORDON__HIT_DIST(y);
    if (dx != dy)
        return dx < dy ? -1 : 1;
    cordon_hash256_t hx, hy;
    uint64_t ix, iy;
    uint8_t fx, fy;
    rec_id_flags(c->idx, CORDON__HIT_REC(x), &ix, &fx);
    rec_id_flags(c->idx, CORDON__HIT_REC(y), &iy, &fy);
    if (ix != iy)
        return ix < iy ? -1 : 1;
    rec_full_hash(c->idx, CORDON__HIT_REC(x), &hx);
    rec_full_hash(c->idx, CORDON__HIT_REC(y), &hy);
    for (int w = 3; w >= 0; w--) {
        if (hx.w[w] != hy.w[w])
            return hx.w[w] < hy.w[w] ? -1 : 1;
    }
    return 0;
}

/*
 * Turns the staged hits into a deduplicated, filtered list in result order,
 * kept at the front of the stage. With max_hits it also truncates and lowers
 * the effective threshold, since nothing farther can make the cut.
 */
static int settle(query_t *qr, int *truncated)
{
    scratch_t *s = qr->s;
    const cordon_index_t *idx = qr->idx;
    size_t n = s->nstage;
    int sorted = 1;
    for (size_t i = 1; i < n && sorted; i++)
        sorted = s->stage[i - 1] <= s->stage[i];
    if (!sorted)
        qsort(s->stage, n, sizeof *s->stage, u64_cmp);
    /* One word per record: the first is the smallest distance, then the
     * lowest variant. */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t h = s->stage[i];
        uint32_t rec = CORDON__HIT_REC(h);
        if (m && CORDON__HIT_REC(s->stage[m - 1]) == rec)
            continue;
        if (rec < idx->n && is_dead(idx, rec))
            continue;
        uint64_t id;
        uint8_t fl;
        rec_id_flags(idx, rec, &id, &fl);
        if (fl & qr->o->skip_flags)
            continue;
        if (qr->o->filter && !qr->o->filter(qr->o->filter_ctx, id, fl))
            continue;
        s->stage[m++] = h;
    }
    if (m == 0) {
        s->nstage = 0;
        return CORDON_OK;
    }
    if (grow((void **)&s->order, &s->caporder, m, sizeof *s->order))
        return CORDON_ENOMEM;
    for (size_t i = 0; i < m; i++)
        s->order[i] = (uint32_t)i;
    order_ctx_t oc = {idx, s->stage};
    qsort_r(s->order, m, sizeof *s->order, hit_order_cmp, &oc);
    size_t keep = m;
    if (qr->o->max_hits && keep > qr->o->max_hits) {
        keep = qr->o->max_hits;
        *truncated = 1;
    }
    /* Permute the kept words into result order, reusing order[] as the
     * destination of a gather through a temporary tail of the stage. */
    if (grow((void **)&s->stage, &s->capstage, m + keep, sizeof *s->stage))
        return CORDON_ENOMEM;
    for (size_t i = 0; i < keep; i++)
        s->stage[m + i] = s->stage[s->order[i]];
    memmove(s->stage, s->stage + m, keep * sizeof *s->stage);
    s->nstage = keep;
    if (qr->o->max_hits && keep == qr->o->max_hits && keep)
        qr->t = CORDON__HIT_DIST(s->stage[keep - 1]);
    return CORDON_OK;
}

/* Makes room for `more` staged hits, settling first when max_hits allows. */
static int stage_reserve(query_t *qr, size_t more, int *truncated)
{
    scratch_t *s = qr->s;
    size_t lim = qr->o->max_hits;
    if (lim && s->nstage >= 4 * lim + 4096) {
        int err = settle(qr, truncated);
        if (err)
            return err;
    }
    if (grow((void **)&s->stage, &s->capstage, s->nstage + more,
             sizeof *s->stage))
        return CORDON_ENOMEM;
    return CORDON_OK;
}

/* Completes the staged hits from `from` on whose distances are lower
 * bounds (all of them with all = 1, else those marked CORDON__HIT_OPEN):
 * restores each record's directory bits and takes its smallest distance
 * over all variants, which is what the record's final hit reports. Rare:
 * only records within the threshold on the other bits get here. */
static void resolve(query_t *qr, size_t from, int all)
{
    scratch_t *s = qr->s;
    size_t m = from;
    for (size_t i = from; i < s->nstage; i++) {
        uint64_t h = s->stage[i];
        if (!all && CORDON__HIT_DIST(h) != CORDON__HIT_OPEN) {
            s->stage[m++] = h;
            continue;
        }
        uint32_t rec = CORDON__HIT_REC(h);
        cordon_hash256_t x;
        rec_full_hash(qr->idx, rec, &x);
        /* Writes at most one word, at m <= i. */
        m += cordon__index_scan_scalar(&x, 1, qr->q, qr->nq, qr->t, ~0ull, rec,
                                       &s->stage[m]);
    }
    s->nstage = m;
}

/* Scans records [lo, hi) of the given array against all variants; m0 masks
 * word 0 (the indexed part's id bits), whose hits are then completed. */
static int scan_range(query_t *qr, const cordon_hash256_t *recs, size_t lo,
                      size_t hi, uint32_t base, uint64_t m0, int *truncated)
{
    for (size_t i = lo; i < hi; i += SCAN_CHUNK) {
        size_t c = hi - i < SCAN_CHUNK ? hi - i : SCAN_CHUNK;
        int err = stage_reserve(qr, c, truncated);
        if (err)
            return err;
        size_t from = qr->s->nstage;
        qr->s->nstage +=
            qr->scan(recs + i, c, qr->q, qr->nq, qr->t, m0,
                     base + (uint32_t)i, qr->s->stage + qr->s->nstage);
        if (m0 != ~0ull)
            resolve(qr, from, 1);
    }
    return CORDON_OK;
}

/* Prefetches [p, e), at most PF_MAX_BYTES of it. */
static inline void prefetch_span(const char *p, const char *e)
{
    if (e - p > PF_MAX_BYTES)
        e = p + PF_MAX_BYTES;
    for (; p < e; p += 64)
        __builtin_prefetch(p);
}

/* Verifies the first n queued tasks and keeps the rest queued. */
static int flush_tasks(query_t *qr, size_t n, int *truncated)
{
    scratch_t *s = qr->s;
    if (!n)
        return CORDON_OK;
    size_t recs = 0;
    for (size_t i = 0; i < n; i++)
        recs += CORDON__TASK_CNT(s->task[i]);
    int err = stage_reserve(qr, recs, truncated);
    if (err)
        return err;
    size_t from = s->nstage;
    s->nstage += qr->verify(qr->idx->hash, s->task, n, qr->q, qr->t,
                            qr->idx->m0, s->stage + s->nstage);
    resolve(qr, from, 0);
    memmove(s->task, s->task + n, (s->ntask - n) * sizeof *s->task);
    s->ntask -= n;
    s->nready = s->nready > n ? s->nready - n : 0;
    return CORDON_OK;
}

/* At the end of a chunk of visits: verifies the tasks prefetched at the
 * previous chunk's end, then prefetches the lines of those queued since
 * (at most PF_MAX_BYTES per task), which the next chunk's time covers.
 * Against verifying each CORDON__VERIFY_BATCH tasks as they were queued
 * (relying on the verifier's batched loads alone), it won 14 of 21
 * alternating runs at 10M, by about 5% in the median: within the noise of
 * this machine, but never clearly slower (benchmarks/index.md). */
static int cycle_tasks(query_t *qr, int *truncated)
{
    scratch_t *s = qr->s;
    int err = flush_tasks(qr, s->nready, truncated);
    if (err)
        return err;
    for (size_t i = 0; i < s->ntask; i++) {
        const cordon_hash256_t *r =
            &qr->idx->hash[CORDON__TASK_REC(s->task[i])];
        prefetch_span((const char *)r,
                      (const char *)(r + CORDON__TASK_CNT(s->task[i])));
    }
    s->nready = s->ntask;
    return CORDON_OK;
}

static int push_task(query_t *qr, uint32_t rec, uint32_t cnt, int v, int add,
                     int *truncated)
{
    scratch_t *s = qr->s;
    while (cnt) {
        uint32_t c = cnt < CORDON__TASK_MAX ? cnt : CORDON__TASK_MAX;
        if (s->ntask >= TASK_CAP) {
            int err = flush_tasks(qr, s->ntask, truncated);
            if (err)
                return err;
        }
        s->task[s->ntask++] = CORDON__TASK(rec, c, v, add);
        rec += c;
        cnt -= c;
    }
    return CORDON_OK;
}

#define VISIT(tab, var, rr, b)                                                 \
    (((uint64_t)(tab) << 48) | ((uint64_t)(var) << 40) |                       \
     ((uint64_t)(rr) << 32) | (uint64_t)(b))
#define VISIT_TAB(x) ((int)((x) >> 48))
#define VISIT_VAR(x) ((int)(((x) >> 40) & 0xff))
#define VISIT_RR(x) ((int)(((x) >> 32) & 0xff))
#define VISIT_B(x) ((uint32_t)(x))

static int radius_of(int sub, int k, int t)
{
    int base = t / k, extra = t % k;
    return sub <= extra ? base : base - 1;
}

/* Reads the bucket bounds of visits [i, i + n) and prefetches the buckets.
 * The directory loads are independent of each other, so the core overlaps
 * them; the bucket prefetches then overlap with filtering the previous
 * chunk. */
static void fetch_chunk(const cordon_index_t *idx, const uint64_t *vis,
                        size_t n, uint32_t *lo, uint32_t *hi)
{
    for (size_t j = 0; j < n; j++) {
        const table_t *t = &idx->tab[VISIT_TAB(vis[j])];
        uint32_t b = VISIT_B(vis[j]);
        lo[j] = dir_get(&t->dir, b);
        hi[j] = dir_get(&t->dir, b + 1);
    }
    for (size_t j = 0; j < n; j++) {
        int ti = VISIT_TAB(vis[j]);
        const char *p, *e;
        if (ti == 0) {
            p = (const char *)&idx->hash[lo[j]];
            e = (const char *)&idx->hash[hi[j]];
        } else {
            const table_t *t = &idx->tab[ti];
            uint32_t b = VISIT_B(vis[j]);
            p = (const char *)t->data + (bucket_bit(t, lo[j], b) >> 3);
            e = (const char *)t->data +
                ((bucket_bit(t, hi[j], b + 1) + 7) >> 3);
        }
        prefetch_span(p, e);
    }
}

/* Processes directory visits, a chunk at a time with the next chunk's
 * memory in flight. (Prefetching the directory entries a chunk earlier
 * still measured slower: the miss queue is the bottleneck.) */
static int run_visits(query_t *qr, const uint64_t *vis, size_t nv,
                      const uint32_t *qkey, int *truncated)
{
    const cordon_index_t *idx = qr->idx;
    scratch_t *s = qr->s;
    uint32_t lo[2][VISIT_PIPE], hi[2][VISIT_PIPE];
    int cur = 0, k = idx->nsub;
    if (nv)
        fetch_chunk(idx, vis, nv < VISIT_PIPE ? nv : VISIT_PIPE, lo[0], hi[0]);
    for (size_t base = 0; base < nv; base += VISIT_PIPE, cur ^= 1) {
        if (base) {
            int err = cycle_tasks(qr, truncated);
            if (err)
                return err;
        }
        size_t cn = nv - base < VISIT_PIPE ? nv - base : VISIT_PIPE;
        size_t nb = base + VISIT_PIPE;
        if (nb < nv)
            fetch_chunk(idx, vis + nb,
                        nv - nb < VISIT_PIPE ? nv - nb : VISIT_PIPE,
                        lo[cur ^ 1], hi[cur ^ 1]);
        for (size_t j = 0; j < cn; j++) {
            uint64_t x = vis[base + j];
            int ti = VISIT_TAB(x), v = VISIT_VAR(x);
            uint32_t l = lo[cur][j], h = hi[cur][j];
            if (l == h)
                continue;
            int err;
            if (ti == 0) {
                /* The bucket's masked bits differ from the query's in
                 * exactly the bits the visit flipped. */
                int add = radius_of(0, k, qr->t0) - VISIT_RR(x);
                err = push_task(qr, l, h - l, v, add, truncated);
                if (err)
                    return err;
                continue;
            }
            const table_t *t = &idx->tab[ti];
            if (grow((void **)&s->surv, &s->capsurv, h - l + 16,
                     sizeof *s->surv))
                return CORDON_ENOMEM;
            uint32_t qk = qkey[v * MAX_SUB + ti];
            uint32_t qfp = qk & (uint32_t)((1ull << t->fbits) - 1);
            uint32_t b = VISIT_B(x);
            size_t ns = qr->filter(t->data, bucket_bit(t, l, b), h - l,
                                   t->fbits, t->lbits, t->hz, qfp,
                                   VISIT_RR(x), s->surv);
            for (size_t q = 0; q < ns; q++) {
                uint32_t r0 = s->surv[q] << idx->pshift;
                uint32_t c = 1u << idx->pshift;
                if (r0 + c > idx->n)
                    c = (uint32_t)idx->n - r0;
                err = push_task(qr, r0, c, v, CORDON__ADD_OPEN, truncated);
                if (err)
                    return err;
            }
        }
    }
    return CORDON_OK;
}

/* Enumerates the buckets within radius r of qb over d bits, in rising
 * distance, resumably. */
typedef struct {
    uint32_t qb;
    int d, r, j;
    uint64_t m;
} ball_t;

static void ball_init(ball_t *it, uint32_t qb, int d, int r)
{
    it->qb = qb;
    it->d = d;
    it->r = r < d ? r : d;
    it->j = 0;
    it->m = 0;
}

/* Next bucket, or 0 when done; *dist receives its distance. */
static int ball_next(ball_t *it, uint32_t *b, int *dist)
{
    if (it->j > it->r)
        return 0;
    *b = it->qb ^ (uint32_t)it->m;
    *dist = it->j;
    if (it->j == 0) {
        it->j = 1;
        it->m = 1;
    } else {
        /* Gosper's hack: the next larger mask with as many bits set. */
        uint64_t c = it->m & (~it->m + 1), rr = it->m + c;
        it->m = (((rr ^ it->m) >> 2) / c) | rr;
    }
    if (it->m >= (1ull << it->d)) {
        it->j++;
        it->m = (1ull << it->j) - 1;
    }
    return 1;
}

static int query_mih(query_t *qr, int *truncated)
{
    const cordon_index_t *idx = qr->idx;
    scratch_t *s = qr->s;
    uint32_t qkey[CORDON_INDEX_MAX_VARIANTS * MAX_SUB];
    int k = idx->nsub;
    for (int v = 0; v < qr->nq; v++)
        for (int i = 0; i < k; i++)
            qkey[v * MAX_SUB + i] =
                sub_key(&qr->q[v], idx->tab[i].bit, idx->tab[i].width);
    if (grow((void **)&s->visit, &s->capvisit, VISIT_CHUNK, sizeof *s->visit) ||
        grow((void **)&s->task, &s->captask, TASK_CAP, sizeof *s->task))
        return CORDON_ENOMEM;
    s->ntask = 0;
    s->nready = 0;
    size_t nv = 0;
    /* Radii come from the caller's threshold, not the effective one, so that
     * lowering the latter mid-query only prunes verification. */
    int t0 = qr->t0;
    for (int v = 0; v < qr->nq; v++) {
        for (int i = 0; i < k; i++) {
            int r = radius_of(i, k, t0);
            if (r < 0)
                continue;
            const table_t *t = &idx->tab[i];
            ball_t it;
            /* 64-bit shift: a table may have no directory bits at all. */
            ball_init(&it,
                      (uint32_t)((uint64_t)qkey[v * MAX_SUB + i] >>
                                 (t->width - t->dbits)),
                      t->dbits, r);
            uint32_t b;
            int dist;
            while (ball_next(&it, &b, &dist)) {
                s->visit[nv++] = VISIT(i, v, r - dist, b);
                if (nv == VISIT_CHUNK) {
                    int err = run_visits(qr, s->visit, nv, qkey, truncated);
                    if (err)
                        return err;
                    nv = 0;
                }
            }
        }
    }
    int err = run_visits(qr, s->visit, nv, qkey, truncated);
    if (!err)
        err = flush_tasks(qr, qr->s->ntask, truncated);
    return err;
}

/* Cost of a random visit to `recs` consecutive records of 32 bytes: one
 * memory round trip for the first line, half of one for each further line
 * (they stream), and the comparisons. */
static double run_cost(double recs)
{
    double lines = recs / 2 < 1 ? 1 : recs / 2;
    return RA_NS * (1 + 0.5 * (lines - 1)) + recs * 0.5;
}

/*
 * Estimated cost in nanoseconds of multi-index hashing against the scan,
 * assuming uniformly spread hashes, for picking the cheaper method. The
 * constants were fitted to CPU-time measurements on a Zen 5 core shared
 * with other work (benchmarks/index.md): a random memory access about 60 ns
 * in effect, a scanned record about 1 ns plus 0.12 ns per query hash. At 10
 * million records they predict 0.33 ms for a single query (measured 0.32)
 * and favour the scan for layouts whose pages are too coarse to pay.
 */
static int mih_is_cheaper(const cordon_index_t *idx, int nq, int t)
{
    if (idx->nsub < 2)
        return 0;
    double n = (double)idx->n, mih = 0;
    for (int i = 0; i < idx->nsub; i++) {
        int r = radius_of(i, idx->nsub, t);
        if (r < 0)
            continue;
        const table_t *tb = &idx->tab[i];
        /* Buckets within r over d bits, and entries within r over d + f. */
        double vis = 0, c = 1, surv = 0, cf = 1;
        int d = tb->dbits, w = d + tb->fbits;
        for (int j = 0; j <= r && j <= d; j++) {
            vis += c;
            c = c * (d - j) / (j + 1);
        }
        for (int j = 0; j <= r && j <= w; j++) {
            surv += cf;
            cf = cf * (w - j) / (j + 1);
        }
        double per = n / (double)((size_t)1 << d);
        if (i == 0) {
            mih += vis * run_cost(per);
        } else {
            surv *= n / (double)((uint64_t)1 << w);
            mih += vis * (RA_NS + per * 0.1) +
                   surv * run_cost((double)(1 << idx->pshift));
        }
    }
    mih *= nq;
    double scan = n * (1.0 + 0.12 * nq);
    return mih < scan;
}

int cordon_index_query(const cordon_index_t *idx, const cordon_hash256_t *q,
                       int nq, int threshold,
                       const cordon_index_query_opts_t *qopts,
                       cordon_index_results_t *res)
{
    if (res) {
        res->count = 0;
        res->truncated = 0;
    }
    if (!idx || !q || !res || nq < 1 || nq > CORDON_INDEX_MAX_VARIANTS ||
        threshold < 0 || threshold > CORDON_INDEX_MAX_THRESHOLD)
        return CORDON_EINVAL;
    static const cordon_index_query_opts_t no_opts;
    const cordon_index_query_opts_t *o = qopts ? qopts : &no_opts;
    if (o->method != CORDON_INDEX_AUTO && o->method != CORDON_INDEX_SCAN &&
        o->method != CORDON_INDEX_MIH)
        return CORDON_EINVAL;
    if (!res->scratch) {
        res->scratch = calloc(1, sizeof(scratch_t));
        if (!res->scratch)
            return CORDON_ENOMEM;
    }
    query_t qr = {idx,
                  q,
                  nq,
                  threshold,
                  o,
                  res->scratch,
                  pick_scan(),
                  pick_filter(),
                  pick_verify(),
                  threshold};
    qr.s->nstage = 0;
    int truncated = 0, err = CORDON_OK;
    if (idx->n) {
        int mih = o->method == CORDON_INDEX_MIH
                      ? idx->nsub > 1
                      : o->method == CORDON_INDEX_AUTO &&
                            mih_is_cheaper(idx, nq, threshold);
        err = mih ? query_mih(&qr, &truncated)
                  : scan_range(&qr, idx->hash, 0, idx->n, 0, idx->m0,
                               &truncated);
    }
    if (!err && idx->tn)
        err = scan_range(&qr, idx->thash, 0, idx->tn, (uint32_t)idx->n, ~0ull,
                         &truncated);
    if (!err)
        err = settle(&qr, &truncated);
    if (!err &&
        grow((void **)&res->hits, &res->cap, qr.s->nstage, sizeof *res->hits))
        err = CORDON_ENOMEM;
    if (err) {
        res->count = 0;
        return err;
    }
    for (size_t i = 0; i < qr.s->nstage; i++) {
        uint64_t h = qr.s->stage[i];
        cordon_index_hit_t *o2 = &res->hits[i];
        rec_id_flags(idx, CORDON__HIT_REC(h), &o2->id, &o2->flags);
        rec_full_hash(idx, CORDON__HIT_REC(h), &o2->hash);
        o2->distance = (uint16_t)CORDON__HIT_DIST(h);
        o2->variant = (uint8_t)CORDON__HIT_VAR(h);
    }
    res->count = qr.s->nstage;
    res->truncated = truncated;
    return CORDON_OK;
}
