/*
 * pdq_avx512.c - the PDQ box filter with AVX-512 (F, BW, VL), bit-identical
 * to the generic path in pdq.c.
 *
 * Every float operation of the reference is kept, in the same order, for
 * every row and column; only independent rows or columns share a vector.
 * What differs from the AVX2 path is the schedule:
 *
 * - Blocks of 32 rows go through all four passes one chunk of 64 columns
 *   at a time, so the transposed tiles the row passes work on are small
 *   rings that stay in L1 instead of full-width tiles in L2.
 * - Each 1-D pass is written once, as the reference's four phases folded
 *   into one loop over the "front" index f (the newest input the running
 *   sum has taken): add in[f] while f < n, subtract in[f - w] once f >= w,
 *   and emit output f - half + 1 once f >= half - 1, divided by the number
 *   of inputs in the window. Streaming a pass is then just advancing f.
 * - Division by that count is done as q = a*r, e = fma(-q, c, a),
 *   q' = fma(e, r, q) with r = 1/c rounded: with r within half an ulp of
 *   1/c and q within one ulp of a/c, q' is the correctly rounded a/c
 *   (Markstein's correction theorem), i.e. exactly what the division
 *   gives. tests/test_pdq.c checks it exhaustively over whole binades.
 */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "pdq_internal.h"

#define INLINE static inline __attribute__((always_inline))

#ifndef PDQ512_RB
#define PDQ512_RB 32
#define PDQ512_CW 64
#endif
enum {
    RB = PDQ512_RB, /* rows per block */
    CW = PDQ512_CW, /* columns per chunk */
    NV = RB / 16,   /* vectors per column in the row passes */
    NG = CW / 16,   /* vectors per row in the column pass */
};

/* Columns kept by the transposed rings: a chunk plus the window behind
 * it, rounded up to a power of two so that the index is a mask. */
static size_t ring_cols(int win_x)
{
    size_t n = 128;
    while (n < (size_t)win_x + CW)
        n <<= 1;
    return n;
}

static size_t up16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

size_t cordon__pdq_avx512_floats(int width, int win_x, int win_y)
{
    size_t pitch = cordon__pdq_pitch(width);
    size_t wmax = (size_t)(win_x > win_y ? win_x : win_y);
    return up16(wmax + 1)                     /* 1/c table */
           + ((size_t)win_y + 2 + RB) * pitch /* C1 ring and sums */
           + 2 * ring_cols(win_x) * RB        /* R1 and R2 input rings */
           + (2 * (size_t)CW + 64) * RB       /* O, C and S */
           + ((size_t)win_y + 3) * 64;        /* C2 ring, sums, output */
}

typedef struct {
    const cordon_plane_t *img;
    const cordon__pdq_geom_t *g;
    int W, H, wx, wy, hx, hy;
    size_t pitch;
    size_t rmask;     /* ring_cols - 1 */
    const float *inv; /* inv[c] = 1.0f / c */
    float *ring1, *c1sum;
    float *T, *T2; /* transposed rings: RB floats per column */
    float *O;      /* R1 output of one chunk: CW columns of RB rows */
    float *C;      /* C1 output of one chunk: RB rows of CW columns */
    float *S;      /* R2 output at the 64 sample columns: 64 x RB */
    float *ring2, *c2sum, *c2out;
    __m512 r1[NV], r2[NV]; /* running sums of the row passes */
    int y0;              /* first front row of the current block */
    /* Per front row of the block: its ring slot (NULL past the image),
     * the slot leaving the window (NULL before it fills), and the window
     * count when it emits (0 when it does not). */
    float *in_row[RB], *old_row[RB];
    int emit_cnt[RB];
    int nrows;  /* front rows in the block */
    int e0, ne; /* first C1 output row of the block, and count */
    int sj;     /* next sample column to emit in R2 */
} f512_t;

/* Inputs in the window when the front is at f: min(f + 1, n) minus those
 * already dropped, max(0, f + 1 - w). */
INLINE int window_count(int f, int n, int w)
{
    int hi = f + 1 < n ? f + 1 : n;
    int lo = f + 1 - w > 0 ? f + 1 - w : 0;
    return hi - lo;
}

INLINE __m512 div_count(__m512 a, const float *inv, int c)
{
    __m512 vc = _mm512_set1_ps((float)c), vr = _mm512_set1_ps(inv[c]);
    __m512 q = _mm512_mul_ps(a, vr);
    __m512 e = _mm512_fnmadd_ps(q, vc, a);
    return _mm512_fmadd_ps(e, vr, q);
}

INLINE __mmask16 lanes(int n)
{
    return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
}

/* r[i] = row i (16 floats) becomes r[j] = column j. */
INLINE void transpose16(__m512 r[16])
{
    __m512 t[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    /* Each 128-bit lane L of t[4q + c] now holds column 4L + c of rows
     * 4q .. 4q+3 once the pairs are merged: */
#pragma GCC unroll 16
    for (int i = 0; i < 16; i += 4) {
        __m512 a = t[i], b = t[i + 1], c = t[i + 2], d = t[i + 3];
        t[i] = _mm512_shuffle_ps(a, c, 0x44);
        t[i + 1] = _mm512_shuffle_ps(a, c, 0xEE);
        t[i + 2] = _mm512_shuffle_ps(b, d, 0x44);
        t[i + 3] = _mm512_shuffle_ps(b, d, 0xEE);
    }
    /* ... and a 4x4 transpose of 128-bit blocks finishes each column. */
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        __m512 u0 = _mm512_shuffle_f32x4(t[c], t[4 + c], 0x44);
        __m512 u1 = _mm512_shuffle_f32x4(t[c], t[4 + c], 0xEE);
        __m512 u2 = _mm512_shuffle_f32x4(t[8 + c], t[12 + c], 0x44);
        __m512 u3 = _mm512_shuffle_f32x4(t[8 + c], t[12 + c], 0xEE);
        r[c] = _mm512_shuffle_f32x4(u0, u2, 0x88);
        r[4 + c] = _mm512_shuffle_f32x4(u0, u2, 0xDD);
        r[8 + c] = _mm512_shuffle_f32x4(u1, u3, 0x88);
        r[12 + c] = _mm512_shuffle_f32x4(u1, u3, 0xDD);
    }
}

/* 16 bytes from each of a, b, c, d into 128-bit lanes 0..3. The merges
 * are masked broadcast loads: load-unit work, not shuffles. */
INLINE __m512i lanes_from4(const void *a, const void *b, const void *c,
                           const void *d)
{
    __m512i v = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)a));
    v = _mm512_mask_broadcast_i32x4(v, 0x00F0,
                                    _mm_loadu_si128((const __m128i *)b));
    v = _mm512_mask_broadcast_i32x4(v, 0x0F00,
                                    _mm_loadu_si128((const __m128i *)c));
    return _mm512_mask_broadcast_i32x4(v, 0xF000,
                                       _mm_loadu_si128((const __m128i *)d));
}

/* The 4x4 transpose inside every 128-bit lane: element e of lane L of
 * out[j] is element j of lane L of x[e]. */
INLINE void transpose_lanes4(const __m512 x[4], __m512 out[4])
{
    __m512 t0 = _mm512_unpacklo_ps(x[0], x[1]);
    __m512 t1 = _mm512_unpackhi_ps(x[0], x[1]);
    __m512 t2 = _mm512_unpacklo_ps(x[2], x[3]);
    __m512 t3 = _mm512_unpackhi_ps(x[2], x[3]);
    out[0] = _mm512_shuffle_ps(t0, t2, 0x44);
    out[1] = _mm512_shuffle_ps(t0, t2, 0xEE);
    out[2] = _mm512_shuffle_ps(t1, t3, 0x44);
    out[3] = _mm512_shuffle_ps(t1, t3, 0xEE);
}

/* The 16x16 block at src (rows ld floats apart) transposed: out[j] =
 * column j. The first two stages come from 128-bit broadcast loads
 * merged under masks, which keeps them off the shuffle unit; the last two
 * are in-lane shuffles. */
INLINE void load_transpose16(const float *src, size_t ld, __m512 out[16])
{
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) {
        __m512 x[4];
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            const float *p = src + (size_t)i * ld + 4 * q;
            x[i] = _mm512_castsi512_ps(
                lanes_from4(p, p + 4 * ld, p + 8 * ld, p + 12 * ld));
        }
        /* Lane L of x[i] holds row 4L + i. */
        transpose_lanes4(x, out + 4 * q);
    }
}

/* Luma of the n (1..16) pixels at p, as the reference computes it:
 * (0.299f*R + 0.587f*G) + 0.114f*B, each product rounded. Lanes past n
 * are zero. */
INLINE __m512 luma16(const uint8_t *p, int n, cordon_pixfmt_t fmt)
{
    __m512i r, g, b;
    if (fmt == CORDON_PIX_GRAY8) {
        __m128i v = _mm_maskz_loadu_epi8(lanes(n), p);
        return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(v));
    }
    if (fmt == CORDON_PIX_RGB8) {
        __mmask64 m = ((__mmask64)1 << (3 * n)) - 1;
        __m512i v = _mm512_maskz_loadu_epi8(m, p);
        /* 128-bit lane l takes pixels 4l .. 4l+3 (bytes 12l .. 12l+11). */
        v = _mm512_permutexvar_epi32(
            _mm512_setr_epi32(0, 1, 2, 0, 3, 4, 5, 0, 6, 7, 8, 0, 9, 10, 11, 0),
            v);
        const int z = (int)0x80808000;
        r = _mm512_shuffle_epi8(v, _mm512_set4_epi32(z | 9, z | 6, z | 3, z));
        g = _mm512_shuffle_epi8(v,
                                _mm512_set4_epi32(z | 10, z | 7, z | 4, z | 1));
        b = _mm512_shuffle_epi8(v,
                                _mm512_set4_epi32(z | 11, z | 8, z | 5, z | 2));
    } else {
        __m512i v = _mm512_maskz_loadu_epi32(lanes(n), p);
        __m512i ff = _mm512_set1_epi32(0xFF);
        r = _mm512_and_si512(v, ff);
        g = _mm512_and_si512(_mm512_srli_epi32(v, 8), ff);
        b = _mm512_and_si512(_mm512_srli_epi32(v, 16), ff);
    }
    __m512 y = _mm512_add_ps(
        _mm512_mul_ps(_mm512_set1_ps(0.299f), _mm512_cvtepi32_ps(r)),
        _mm512_mul_ps(_mm512_set1_ps(0.587f), _mm512_cvtepi32_ps(g)));
    return _mm512_add_ps(
        y, _mm512_mul_ps(_mm512_set1_ps(0.114f), _mm512_cvtepi32_ps(b)));
}

INLINE float *ring_col(float *ring, size_t rmask, int x)
{
    return ring + ((size_t)x & rmask) * RB;
}

static inline float *c1_slot(f512_t *s, int row)
{
    return s->ring1 + (size_t)(row % (s->wy + 1 + RB)) * s->pitch;
}

/* Luma of 16 rows x 16 pixels (from byte offset off of each row), as 16
 * column vectors. Each 128-bit lane L of a load takes 4 pixels of row
 * 4L + i through a masked broadcast, so the first two transpose stages
 * cost loads instead of shuffles; in-lane shuffles pick the channels of
 * the 4 pixels and one 4x4 in-lane transpose finishes. Reads 16 bytes
 * per 4 pixels: the caller keeps that inside each row. */
INLINE void luma_tile(const uint8_t *const rows[16], size_t off,
                      cordon_pixfmt_t fmt, __m512 out[16])
{
    const __m512i ff = _mm512_set1_epi32(0xFF);
    const __m512 kr = _mm512_set1_ps(0.299f), kg = _mm512_set1_ps(0.587f),
                 kb = _mm512_set1_ps(0.114f);
    int bpp = (int)fmt;
    __m512i gray[4];
    if (fmt == CORDON_PIX_GRAY8)
        for (int i = 0; i < 4; i++)
            gray[i] = lanes_from4(rows[i] + off, rows[4 + i] + off,
                                  rows[8 + i] + off, rows[12 + i] + off);
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) {
        __m512 y[4];
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            if (fmt == CORDON_PIX_GRAY8) {
                const int z = (int)0x80808000 | 4 * q;
                __m512i d = _mm512_shuffle_epi8(
                    gray[i], _mm512_set4_epi32(z | 3, z | 2, z | 1, z));
                y[i] = _mm512_cvtepi32_ps(d);
                continue;
            }
            size_t o = off + (size_t)(4 * q * bpp);
            __m512i v = lanes_from4(rows[i] + o, rows[4 + i] + o,
                                    rows[8 + i] + o, rows[12 + i] + o);
            __m512 r, g, b;
            if (fmt == CORDON_PIX_RGB8) {
                const int z = (int)0x80808000;
                r = _mm512_cvtepi32_ps(_mm512_shuffle_epi8(
                    v, _mm512_set4_epi32(z | 9, z | 6, z | 3, z)));
                g = _mm512_cvtepi32_ps(_mm512_shuffle_epi8(
                    v, _mm512_set4_epi32(z | 10, z | 7, z | 4, z | 1)));
                b = _mm512_cvtepi32_ps(_mm512_shuffle_epi8(
                    v, _mm512_set4_epi32(z | 11, z | 8, z | 5, z | 2)));
            } else {
                r = _mm512_cvtepi32_ps(_mm512_and_si512(v, ff));
                g = _mm512_cvtepi32_ps(
                    _mm512_and_si512(_mm512_srli_epi32(v, 8), ff));
                b = _mm512_cvtepi32_ps(
                    _mm512_and_si512(_mm512_srli_epi32(v, 16), ff));
            }
            y[i] = _mm512_add_ps(
                _mm512_add_ps(_mm512_mul_ps(kr, r), _mm512_mul_ps(kg, g)),
                _mm512_mul_ps(kb, b));
        }
        /* Lane L of y[i]: row 4L + i, pixels 4q .. 4q+3. */
        transpose_lanes4(y, out + 4 * q);
    }
}

/* Luma of the block's rows at columns [x0, x1) into the ring T. Rows past
 * the image repeat its last row, so every lane stays finite. */
static void luma_chunk(f512_t *s, int x0, int x1)
{
    const cordon_plane_t *img = s->img;
    int bpp = (int)img->format;
    for (int h = 0; h < RB; h += 16) {
        const uint8_t *rows[16];
        for (int r = 0; r < 16; r++) {
            int y = s->y0 + h + r;
            rows[r] =
                img->data + (size_t)(y < s->H ? y : s->H - 1) * img->stride;
            /* 32 rows read side by side are more streams than the
             * hardware prefetcher follows: fetch two chunks ahead. */
            if (x1 + 2 * CW <= s->W)
                for (int o = 0; o < CW * bpp; o += 64)
                    _mm_prefetch((const char *)rows[r] +
                                     (size_t)(x0 + 2 * CW) * bpp + o,
                                 _MM_HINT_T0);
        }
        /* luma_tile reads 16 bytes per 4 pixels: RGB needs 2 pixels of
         * slack after a tile, the others none. */
        int fast_end = s->W - (img->format == CORDON_PIX_RGB8 ? 2 : 0);
        for (int x = x0; x < x1; x += 16) {
            int n = x1 - x < 16 ? x1 - x : 16;
            __m512 v[16];
            if (n == 16 && x + 16 <= fast_end) {
                luma_tile(rows, (size_t)x * bpp, img->format, v);
            } else {
                for (int r = 0; r < 16; r++)
                    v[r] = luma16(rows[r] + (size_t)x * bpp, n, img->format);
                transpose16(v);
            }
            for (int c = 0; c < n; c++)
                _mm512_store_ps(ring_col(s->T, s->rmask, x + c) + h, v[c]);
        }
    }
}

/* One step of a row pass at front f over the transposed ring `ring`
 * (n columns, window w, emitting once f >= h1). Returns the window count
 * when the step emits, else 0. */
INLINE int row_step(const float *ring, size_t rmask, int f, int n, int w,
                    int h1, __m512 acc[NV])
{
    if (f < n) {
        const float *in = ring_col((float *)ring, rmask, f);
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            acc[v] = _mm512_add_ps(acc[v], _mm512_load_ps(in + 16 * v));
    }
    if (f >= w) {
        const float *old = ring_col((float *)ring, rmask, f - w);
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            acc[v] = _mm512_sub_ps(acc[v], _mm512_load_ps(old + 16 * v));
    }
    return f >= h1 ? window_count(f, n, w) : 0;
}

INLINE void store_div(float *o, const __m512 acc[NV], const float *inv, int c)
{
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++)
        _mm512_store_ps(o + 16 * v, div_count(acc[v], inv, c));
}

/* R1 with the front over [f0, f1); outputs from column oa go to O. */
static void r1_chunk(f512_t *s, int f0, int f1, int oa)
{
    int W = s->W, w = s->wx, h1 = s->hx - 1;
    __m512 acc[NV];
    memcpy(acc, s->r1, sizeof acc);
    /* Fronts in [lo, hi) add, subtract and emit with the full window. */
    int lo = w > h1 ? w : h1, hi = W;
    lo = lo > f0 ? lo : f0;
    hi = hi < f1 ? hi : f1;
    if (lo > hi)
        lo = hi = f1;
    for (int f = f0; f < lo; f++) {
        int c = row_step(s->T, s->rmask, f, W, w, h1, acc);
        if (c)
            store_div(s->O + (size_t)(f - h1 - oa) * RB, acc, s->inv, c);
    }
    const __m512 vc = _mm512_set1_ps((float)w), vr = _mm512_set1_ps(s->inv[w]);
    const float *in = ring_col(s->T, s->rmask, 0);
    float *o = s->O + (size_t)(lo - h1 - oa) * RB;
    for (int f = lo; f < hi; f++, o += RB) {
        const float *pi = in + ((size_t)f & s->rmask) * RB;
        const float *po = in + ((size_t)(f - w) & s->rmask) * RB;
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            acc[v] = _mm512_add_ps(acc[v], _mm512_load_ps(pi + 16 * v));
            acc[v] = _mm512_sub_ps(acc[v], _mm512_load_ps(po + 16 * v));
            __m512 q = _mm512_mul_ps(acc[v], vr);
            q = _mm512_fmadd_ps(_mm512_fnmadd_ps(q, vc, acc[v]), vr, q);
            _mm512_store_ps(o + 16 * v, q);
        }
    }
    for (int f = hi; f < f1; f++) {
        int c = row_step(s->T, s->rmask, f, W, w, h1, acc);
        if (c)
            store_div(s->O + (size_t)(f - h1 - oa) * RB, acc, s->inv, c);
    }
    memcpy(s->r1, acc, sizeof acc);
}

/* The transposed R1 outputs of columns [oa, oa + n) become rows of the C1
 * ring (only rows that exist in the image). */
static void o_to_ring(f512_t *s, int oa, int n)
{
    for (int i0 = 0; i0 < n; i0 += 16) {
        int m = n - i0 < 16 ? n - i0 : 16;
        for (int h = 0; h < RB; h += 16) {
            __m512 v[16];
            load_transpose16(s->O + (size_t)i0 * RB + h, RB, v);
            for (int r = 0; r < 16; r++)
                if (s->in_row[h + r])
                    _mm512_mask_storeu_ps(s->in_row[h + r] + oa + i0, lanes(m),
                                          v[r]);
        }
    }
}

/* C1 over the block's front rows for columns [oa, oa + n), n <= CW: NG
 * independent column sums per row. Outputs go to C, row-major. */
static void c1_chunk(f512_t *s, int oa, int n)
{
    __mmask16 m[NG];
    __m512 acc[NG];
    float *cs = s->c1sum + oa;
#pragma GCC unroll 4
    for (int g = 0; g < NG; g++) {
        m[g] = n > 16 * g ? lanes(n - 16 * g) : 0;
        acc[g] = s->y0 == 0 ? _mm512_setzero_ps()
                            : _mm512_maskz_loadu_ps(m[g], cs + 16 * g);
    }
    float *o = s->C;
    for (int r = 0; r < s->nrows; r++) {
        const float *in = s->in_row[r], *old = s->old_row[r];
        if (in) {
            in += oa;
#pragma GCC unroll 4
            for (int g = 0; g < NG; g++)
                acc[g] = _mm512_add_ps(
                    acc[g], _mm512_maskz_loadu_ps(m[g], in + 16 * g));
        }
        if (old) {
            old += oa;
#pragma GCC unroll 4
            for (int g = 0; g < NG; g++)
                acc[g] = _mm512_sub_ps(
                    acc[g], _mm512_maskz_loadu_ps(m[g], old + 16 * g));
        }
        int c = s->emit_cnt[r];
        if (c) {
#pragma GCC unroll 4
            for (int g = 0; g < NG; g++)
                _mm512_store_ps(o + 16 * g, div_count(acc[g], s->inv, c));
            o += CW;
        }
    }
#pragma GCC unroll 4
    for (int g = 0; g < NG; g++)
        _mm512_mask_storeu_ps(cs + 16 * g, m[g], acc[g]);
}

/* The C1 rows in C, columns [oa, oa + n), into the transposed ring T2. */
static void c_to_t2(f512_t *s, int oa, int n)
{
    for (int i0 = 0; i0 < n; i0 += 16) {
        int m = n - i0 < 16 ? n - i0 : 16;
        for (int h = 0; h < RB; h += 16) {
            __m512 v[16];
            load_transpose16(s->C + (size_t)h * CW + i0, CW, v);
            for (int c = 0; c < m; c++)
                _mm512_store_ps(ring_col(s->T2, s->rmask, oa + i0 + c) + h,
                                v[c]);
        }
    }
}

/* R2 with the front over [f0, f1): divides only where a sample column is
 * due, into S. */
static void r2_chunk(f512_t *s, int f0, int f1)
{
    int W = s->W, w = s->wx, h1 = s->hx - 1;
    const int *sc = s->g->sample_col;
    __m512 acc[NV];
    memcpy(acc, s->r2, sizeof acc);
    const float *ring = s->T2;
    int f = f0;
    while (f < f1) {
        int due = s->sj < 64 ? sc[s->sj] + h1 : f1;
        /* Plain add-and-subtract steps up to the next due sample. */
        int stop = due < f1 ? due : f1;
        int lo = f > w ? f : w, hi = stop < W ? stop : W;
        for (; f < stop && f < lo; f++)
            row_step(ring, s->rmask, f, W, w, h1, acc);
        for (; f < hi; f++) {
            const float *pi = ring + ((size_t)f & s->rmask) * RB;
            const float *po = ring + ((size_t)(f - w) & s->rmask) * RB;
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) {
                acc[v] = _mm512_add_ps(acc[v], _mm512_load_ps(pi + 16 * v));
                acc[v] = _mm512_sub_ps(acc[v], _mm512_load_ps(po + 16 * v));
            }
        }
        for (; f < stop; f++)
            row_step(ring, s->rmask, f, W, w, h1, acc);
        if (f == due && f < f1) {
            int c = row_step(ring, s->rmask, f, W, w, h1, acc);
            for (; s->sj < 64 && sc[s->sj] + h1 == f; s->sj++)
                store_div(s->S + (size_t)s->sj * RB, acc, s->inv, c);
            f++;
        }
    }
    memcpy(s->r2, acc, sizeof acc);
}

/* C2 on the 64 sample columns, front row k; v is the input row, or NULL
 * once the front has passed the last row. */
static void c2_push(f512_t *s, int k, const float *v, float out[64][64])
{
    int H = s->H, w = s->wy, h1 = s->hy - 1;
    float *slot = s->ring2 + (size_t)(k % (w + 1)) * 64;
    const float *old =
        k >= w ? s->ring2 + (size_t)((k - w) % (w + 1)) * 64 : NULL;
    if (v)
        memcpy(slot, v, 64 * sizeof *v);
    for (int g = 0; g < 64; g += 16) {
        __m512 sum =
            k == 0 ? _mm512_setzero_ps() : _mm512_load_ps(s->c2sum + g);
        if (k < H)
            sum = _mm512_add_ps(sum, _mm512_load_ps(slot + g));
        if (old)
            sum = _mm512_sub_ps(sum, _mm512_load_ps(old + g));
        _mm512_store_ps(s->c2sum + g, sum);
        if (k >= h1)
            _mm512_store_ps(s->c2out + g,
                            div_count(sum, s->inv, window_count(k, H, w)));
    }
    if (k >= h1)
        cordon__pdq_emit_final(s->g, k - h1, s->c2out, out);
}

/* One block of RB front rows through all four passes. */
static void run_block(f512_t *s, float out[64][64])
{
    int W = s->W, hx1 = s->hx - 1;
    int has_input = s->y0 < s->H;
    int kend = s->H + s->hy - 1;
    int first = s->y0 > s->hy - 1 ? s->y0 : s->hy - 1;
    int last = s->y0 + RB < kend ? s->y0 + RB : kend;
    s->e0 = first - (s->hy - 1);
    s->ne = last > first ? last - first : 0;
    for (int v = 0; v < NV; v++)
        s->r1[v] = s->r2[v] = _mm512_setzero_ps();
    s->nrows = kend - s->y0 < RB ? kend - s->y0 : RB;
    for (int r = 0; r < RB; r++) {
        int k = s->y0 + r;
        s->in_row[r] = r < s->nrows && k < s->H ? c1_slot(s, k) : NULL;
        s->old_row[r] =
            r < s->nrows && k >= s->wy ? c1_slot(s, k - s->wy) : NULL;
        s->emit_cnt[r] =
            r < s->nrows && k >= s->hy - 1 ? window_count(k, s->H, s->wy) : 0;
    }
    s->sj = 0;
    /* With input rows, the chunk loop follows R1's front, and C1 and R2
     * take R1's outputs; past the image, C1 only drains its window. */
    int fend = has_input ? W + hx1 : W;
    for (int f0 = 0; f0 < fend; f0 += CW) {
        int f1 = f0 + CW < fend ? f0 + CW : fend;
        int oa, ob;
        if (has_input) {
            if (f0 < W)
                luma_chunk(s, f0, f1 < W ? f1 : W);
            oa = f0 > hx1 ? f0 - hx1 : 0;
            ob = f1 - hx1;
            r1_chunk(s, f0, f1, oa);
            if (ob <= oa)
                continue;
            o_to_ring(s, oa, ob - oa);
        } else {
            oa = f0;
            ob = f1;
        }
        c1_chunk(s, oa, ob - oa);
        c_to_t2(s, oa, ob - oa);
        r2_chunk(s, oa, ob);
    }
    r2_chunk(s, W, W + hx1);
    float row[64];
    for (int t = 0; t < s->ne; t++) {
        for (int j = 0; j < 64; j++)
            row[j] = s->S[(size_t)j * RB + t];
        c2_push(s, s->e0 + t, row, out);
    }
}

void cordon__pdq_filter_avx512(const cordon_plane_t *img,
                               const cordon__pdq_geom_t *g, float *scratch,
                               float out[64][64])
{
    f512_t s;
    memset(&s, 0, sizeof s);
    s.img = img;
    s.g = g;
    s.W = g->width;
    s.H = g->height;
    s.wx = g->win_x;
    s.wy = g->win_y;
    s.hx = g->half_x;
    s.hy = g->half_y;
    s.pitch = cordon__pdq_pitch(s.W);
    size_t rc = ring_cols(s.wx);
    s.rmask = rc - 1;
    int wmax = s.wx > s.wy ? s.wx : s.wy;

    float *p = scratch, *inv = p;
    for (int c = 1; c <= wmax; c++)
        inv[c] = 1.0f / (float)c;
    s.inv = inv;
    p += up16((size_t)wmax + 1);
    /* A block's rows all land in the ring before C1 reads the oldest
     * ones, hence RB rows beyond the window. */
    s.ring1 = p, p += (size_t)(s.wy + 1 + RB) * s.pitch;
    s.c1sum = p, p += s.pitch;
    s.T = p, p += rc * RB;
    s.T2 = p, p += rc * RB;
    s.O = p, p += (size_t)CW * RB;
    memset(s.O, 0, (size_t)CW * RB * sizeof *s.O);
    s.C = p, p += (size_t)CW * RB;
    s.S = p, p += (size_t)64 * RB;
    s.ring2 = p, p += (size_t)(s.wy + 1) * 64;
    s.c2sum = p, p += 64;
    s.c2out = p;
    /* C rows past a block's last output are transposed along with the
     * rest; keep them finite. */
    memset(s.C, 0, (size_t)CW * RB * sizeof *s.C);

    int kend = s.H + s.hy - 1;
    for (s.y0 = 0; s.y0 < kend; s.y0 += RB)
        run_block(&s, out);
    for (int k = s.H; k < kend; k++)
        c2_push(&s, k, NULL, out);
}

/* quality_of() in pdq.c with 16 columns per vector: the same float
 * subtract, multiply by 100 and divide by 255 per pair, truncated to int. */
int cordon__pdq_quality_avx512(const float a[64][64])
{
    const __m512 k100 = _mm512_set1_ps(100.0f), k255 = _mm512_set1_ps(255.0f);
    __m512i sum = _mm512_setzero_si512();
    for (int i = 0; i < 64; i++)
        for (int j = 0; j < 64; j += 16) {
            __m512 x = _mm512_loadu_ps(&a[i][j]);
            if (i < 63) {
                __m512 d = _mm512_sub_ps(x, _mm512_loadu_ps(&a[i + 1][j]));
                d = _mm512_div_ps(_mm512_mul_ps(d, k100), k255);
                sum = _mm512_add_epi32(sum,
                                       _mm512_abs_epi32(_mm512_cvttps_epi32(d)));
            }
            /* horizontal neighbours: column j+l against j+l+1, l < 63 - j */
            __mmask16 m = j == 48 ? 0x7FFF : 0xFFFF;
            __m512 y = _mm512_maskz_loadu_ps(m, &a[i][j + 1]);
            __m512 d = _mm512_sub_ps(x, y);
            d = _mm512_div_ps(_mm512_mul_ps(d, k100), k255);
            sum = _mm512_mask_add_epi32(
                sum, m, sum, _mm512_abs_epi32(_mm512_cvttps_epi32(d)));
        }
    int q = _mm512_reduce_add_epi32(sum) / 90;
    return q > 100 ? 100 : q;
}

/* The first DCT product of pdq.c's dct_16x16() with a row of 64 outputs
 * in four vectors: each output still sums d * a[k][j] in increasing k,
 * multiply then add. */
void cordon__pdq_dct_rows_avx512(const float a[64][64],
                                 const float d[16][64], float t[16][64])
{
    for (int i = 0; i < 16; i++) {
        __m512 acc[4];
        for (int g = 0; g < 4; g++)
            acc[g] = _mm512_setzero_ps();
        for (int k = 0; k < 64; k++) {
            __m512 dk = _mm512_set1_ps(d[i][k]);
#pragma GCC unroll 4
            for (int g = 0; g < 4; g++)
                acc[g] = _mm512_add_ps(
                    acc[g], _mm512_mul_ps(dk, _mm512_loadu_ps(&a[k][16 * g])));
        }
        for (int g = 0; g < 4; g++)
            _mm512_storeu_ps(&t[i][16 * g], acc[g]);
    }
}
