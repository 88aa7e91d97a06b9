/*
 * pdq_avx2.c - the PDQ box filter with AVX2, bit-identical to the generic
 * path in pdq.c.
 *
 * Every float operation of the reference is kept, in the same order, for
 * every row and column; only the iteration across independent rows or
 * columns is vectorised:
 * - row passes run on blocks of 16 rows transposed into column-major
 *   tiles, so one vector holds one column of 8 rows, and two independent
 *   running sums (rows 0-7 and 8-15) hide the add/subtract latency;
 * - the first column pass runs across columns on row-major rows;
 * - the second row pass only divides at the 64 sampled columns, and the
 *   second column pass only runs on those 64 columns.
 */
#include <immintrin.h>
#include <string.h>

#include "pdq_internal.h"

#define B CORDON__PDQ_BLOCK /* 16 rows per block: two 8-lane vectors */

static inline void transpose8(__m256 r[8])
{
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]);
    __m256 t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]);
    __m256 t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]);
    __m256 t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]);
    __m256 t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44);
    __m256 u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44);
    __m256 u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44);
    __m256 u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44);
    __m256 u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/* Luma of 8 pixels starting at p (which holds at least 8 whole pixels):
 * Y = 0.299f*R + 0.587f*G + 0.114f*B, multiplied and summed in the same
 * order as the scalar code. */
static inline __m256 luma8(const uint8_t *p, cordon_pixfmt_t fmt)
{
    if (fmt == CORDON_PIX_GRAY8) {
        __m128i v = _mm_loadl_epi64((const __m128i *)p);
        return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v));
    }
    __m256i v, mr, mg, mb;
    if (fmt == CORDON_PIX_RGB8) {
        /* Lane 0 holds bytes 0-15 (pixels 0-3 at 0-11), lane 1 bytes 8-23
         * (pixels 4-7 at lane offsets 4-15): exactly 24 bytes are read. */
        __m128i lo = _mm_loadu_si128((const __m128i *)p);
        __m128i hi = _mm_loadu_si128((const __m128i *)(p + 8));
        v = _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
#define Z -1
        mr = _mm256_setr_epi8(0, Z, Z, Z, 3, Z, Z, Z, 6, Z, Z, Z, 9, Z, Z, Z, 4,
                              Z, Z, Z, 7, Z, Z, Z, 10, Z, Z, Z, 13, Z, Z, Z);
        mg = _mm256_setr_epi8(1, Z, Z, Z, 4, Z, Z, Z, 7, Z, Z, Z, 10, Z, Z, Z,
                              5, Z, Z, Z, 8, Z, Z, Z, 11, Z, Z, Z, 14, Z, Z, Z);
        mb = _mm256_setr_epi8(2, Z, Z, Z, 5, Z, Z, Z, 8, Z, Z, Z, 11, Z, Z, Z,
                              6, Z, Z, Z, 9, Z, Z, Z, 12, Z, Z, Z, 15, Z, Z, Z);
    } else {
        v = _mm256_loadu_si256((const __m256i *)p);
        mr = _mm256_set1_epi32(0x000000FF);
        mg = mr;
        mb = mr;
        __m256 r = _mm256_cvtepi32_ps(_mm256_and_si256(v, mr));
        __m256 g = _mm256_cvtepi32_ps(
            _mm256_and_si256(_mm256_srli_epi32(v, 8), mg));
        __m256 b = _mm256_cvtepi32_ps(
            _mm256_and_si256(_mm256_srli_epi32(v, 16), mb));
        __m256 y = _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(0.299f), r),
                                 _mm256_mul_ps(_mm256_set1_ps(0.587f), g));
        return _mm256_add_ps(y, _mm256_mul_ps(_mm256_set1_ps(0.114f), b));
    }
#undef Z
    __m256 r = _mm256_cvtepi32_ps(_mm256_shuffle_epi8(v, mr));
    __m256 g = _mm256_cvtepi32_ps(_mm256_shuffle_epi8(v, mg));
    __m256 b = _mm256_cvtepi32_ps(_mm256_shuffle_epi8(v, mb));
    __m256 y = _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(0.299f), r),
                             _mm256_mul_ps(_mm256_set1_ps(0.587f), g));
    return _mm256_add_ps(y, _mm256_mul_ps(_mm256_set1_ps(0.114f), b));
}

/* Luma of rows y0.. (nb valid, the rest repeat the last valid row so that
 * every lane holds finite values) into the column-major tile T[x*B + r]. */
static void luma_block_T(const cordon_plane_t *img, int y0, int nb, float *T)
{
    int W = img->width;
    int bpp = (int)img->format;
    const uint8_t *rows[B];
    for (int r = 0; r < B; r++)
        rows[r] = img->data + (size_t)(y0 + (r < nb ? r : nb - 1)) * img->stride;
    int x = 0;
    for (; x + 8 <= W; x += 8) {
        for (int h = 0; h < B; h += 8) {
            __m256 v[8];
            for (int r = 0; r < 8; r++)
                v[r] = luma8(rows[h + r] + (size_t)x * bpp, img->format);
            transpose8(v);
            for (int c = 0; c < 8; c++)
                _mm256_store_ps(T + (size_t)(x + c) * B + h, v[c]);
        }
    }
    /* The last W % 8 columns, one pixel at a time, same arithmetic. */
    for (; x < W; x++)
        for (int r = 0; r < B; r++) {
            const uint8_t *p = rows[r] + (size_t)x * bpp;
            T[(size_t)x * B + r] =
                img->format == CORDON_PIX_GRAY8
                    ? (float)p[0]
                    : 0.299f * (float)p[0] + 0.587f * (float)p[1] +
                          0.114f * (float)p[2];
        }
}

/* Row-major rows (B of them, `pitch` apart) into the tile T[x*B + r]. */
static void rows_to_T(const float *rows, size_t pitch, int W, float *T)
{
    int x = 0;
    for (; x + 8 <= W; x += 8)
        for (int h = 0; h < B; h += 8) {
            __m256 v[8];
            for (int r = 0; r < 8; r++)
                v[r] = _mm256_loadu_ps(rows + (size_t)(h + r) * pitch + x);
            transpose8(v);
            for (int c = 0; c < 8; c++)
                _mm256_store_ps(T + (size_t)(x + c) * B + h, v[c]);
        }
    for (; x < W; x++)
        for (int r = 0; r < B; r++)
            T[(size_t)x * B + r] = rows[(size_t)r * pitch + x];
}

/* The reference's 1-D box pass along x for all B rows of a tile at once.
 * With `samples` NULL it writes every output to O; otherwise it divides
 * only at the sampled columns (ascending, possibly repeated) and writes
 * S[j*B + r] for sample j. */
static void box_rows_T(const float *T, float *O, int n, int w,
                       const int *samples, float *S)
{
    int half = (w + 2) / 2;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int cnt = 0, ri = 0, li = 0, oi = 0, j = 0;
#define ADD(i)                                                                 \
    s0 = _mm256_add_ps(s0, _mm256_load_ps(T + (size_t)(i) * B));               \
    s1 = _mm256_add_ps(s1, _mm256_load_ps(T + (size_t)(i) * B + 8))
#define SUB(i)                                                                 \
    s0 = _mm256_sub_ps(s0, _mm256_load_ps(T + (size_t)(i) * B));               \
    s1 = _mm256_sub_ps(s1, _mm256_load_ps(T + (size_t)(i) * B + 8))
#define OUT()                                                                  \
    do {                                                                       \
        if (!samples) {                                                        \
            __m256 d = _mm256_set1_ps((float)cnt);                             \
            _mm256_store_ps(O + (size_t)oi * B, _mm256_div_ps(s0, d));         \
            _mm256_store_ps(O + (size_t)oi * B + 8, _mm256_div_ps(s1, d));     \
        } else if (j < 64 && samples[j] == oi) {                               \
            __m256 d = _mm256_set1_ps((float)cnt);                             \
            __m256 q0 = _mm256_div_ps(s0, d), q1 = _mm256_div_ps(s1, d);       \
            for (; j < 64 && samples[j] == oi; j++) {                          \
                _mm256_store_ps(S + (size_t)j * B, q0);                        \
                _mm256_store_ps(S + (size_t)j * B + 8, q1);                    \
            }                                                                  \
        }                                                                      \
        oi++;                                                                  \
    } while (0)
    for (int k = 0; k < half - 1; k++) {
        ADD(ri);
        ri++;
        cnt++;
    }
    for (int k = 0; k < w - half + 1; k++) {
        ADD(ri);
        ri++;
        cnt++;
        OUT();
    }
    for (int k = 0; k < n - w; k++) {
        ADD(ri);
        ri++;
        SUB(li);
        li++;
        OUT();
    }
    for (int k = 0; k < half - 1; k++) {
        SUB(li);
        li++;
        cnt--;
        OUT();
    }
#undef ADD
#undef SUB
#undef OUT
}

/*
 * The first column pass for the nb new rows y0.. of a block, fused with the
 * transposes around it. The new rows arrive column-major in O; each strip
 * of 8 columns is transposed to rows in registers, stored into the ring
 * (later rows subtract them), pushed through the per-column running sums,
 * and the emitted output rows are transposed straight into the tile T2
 * for the second row pass. Returns the number of rows emitted; the first
 * is image row y0 - half + 1 (or 0 for the first emission).
 */
static int colbox_block_avx2(cordon__colbox_t *c, const float *O, int y0,
                             int nb, float *T2)
{
    int W = c->cols, w = c->w, half = c->half;
    float *slot[B], *old[B];
    float cnt[B];
    int emits[B], e = 0;
    for (int r = 0; r < nb; r++) {
        int k = y0 + r;
        slot[r] = cordon__colbox_slot(c, k);
        old[r] = k >= w ? cordon__colbox_slot(c, k - w) : NULL;
        emits[r] = k >= half - 1;
        cnt[r] = (float)(k + 1 < w ? k + 1 : w);
        e += emits[r];
    }
    if (y0 == 0)
        memset(c->sum, 0, (size_t)W * sizeof *c->sum);
    /* Strips of 8 columns, NS at a time: their running sums are
     * independent chains, which hides the add/subtract latency. */
    enum { NS = 4 };
    int x = 0;
    for (; x + 8 * NS <= W; x += 8 * NS) {
        for (int st = 0; st < NS; st++) {
            int xs = x + 8 * st;
            for (int h = 0; h < B && h < nb; h += 8) {
                __m256 v[8];
                for (int i = 0; i < 8; i++)
                    v[i] = _mm256_load_ps(O + (size_t)(xs + i) * B + h);
                transpose8(v);
                for (int i = 0; i < 8 && h + i < nb; i++)
                    _mm256_store_ps(slot[h + i] + xs, v[i]);
            }
        }
        __m256 sum[NS], outv[NS][B];
        for (int st = 0; st < NS; st++)
            sum[st] = _mm256_load_ps(c->sum + x + 8 * st);
        int n = 0;
        for (int r = 0; r < nb; r++) {
            for (int st = 0; st < NS; st++) {
                sum[st] = _mm256_add_ps(
                    sum[st], _mm256_load_ps(slot[r] + x + 8 * st));
                if (old[r])
                    sum[st] = _mm256_sub_ps(
                        sum[st], _mm256_load_ps(old[r] + x + 8 * st));
            }
            if (emits[r]) {
                __m256 d = _mm256_set1_ps(cnt[r]);
                for (int st = 0; st < NS; st++)
                    outv[st][n] = _mm256_div_ps(sum[st], d);
                n++;
            }
        }
        for (int st = 0; st < NS; st++) {
            int xs = x + 8 * st;
            _mm256_store_ps(c->sum + xs, sum[st]);
            for (int h = 0; h < n; h += 8) {
                for (int i = n; i < h + 8; i++)
                    outv[st][i] = _mm256_setzero_ps();
                transpose8(outv[st] + h);
                for (int i = 0; i < 8; i++)
                    _mm256_store_ps(T2 + (size_t)(xs + i) * B + h,
                                    outv[st][h + i]);
            }
        }
    }
    for (; x < W; x++) {
        float sum = c->sum[x];
        int n = 0;
        for (int r = 0; r < nb; r++) {
            float v = O[(size_t)x * B + r];
            slot[r][x] = v;
            sum += v;
            if (old[r])
                sum -= old[r][x];
            if (emits[r])
                T2[(size_t)x * B + n++] = sum / cnt[r];
        }
        c->sum[x] = sum;
    }
    return e;
}

static void colbox_tail_avx2(cordon__colbox_t *c, int t, float *out, int *orow)
{
    const float *old = cordon__colbox_slot(c, c->n - c->w + t);
    float *sum = c->sum;
    float cnt = (float)(c->w - 1 - t);
    __m256 d = _mm256_set1_ps(cnt);
    int x;
    for (x = 0; x + 8 <= c->cols; x += 8) {
        __m256 s = _mm256_sub_ps(_mm256_load_ps(sum + x),
                                 _mm256_load_ps(old + x));
        _mm256_store_ps(sum + x, s);
        _mm256_storeu_ps(out + x, _mm256_div_ps(s, d));
    }
    for (; x < c->cols; x++) {
        sum[x] -= old[x];
        out[x] = sum[x] / cnt;
    }
    *orow = c->n - c->half + 1 + t;
}

/* The second column pass on the 64 sampled columns: the generic
 * cordon__colbox_push() with the 64 columns in 8 vectors. */
static int colbox64_push_avx2(cordon__colbox_t *c, int k, float *out,
                              int *orow)
{
    const float *in = cordon__colbox_slot(c, k);
    const float *old = k >= c->w ? cordon__colbox_slot(c, k - c->w) : NULL;
    float *sum = c->sum;
    for (int x = 0; x < 64; x += 8) {
        __m256 v = k == 0 ? _mm256_setzero_ps() : _mm256_load_ps(sum + x);
        v = _mm256_add_ps(v, _mm256_load_ps(in + x));
        if (old)
            v = _mm256_sub_ps(v, _mm256_load_ps(old + x));
        _mm256_store_ps(sum + x, v);
    }
    if (k < c->half - 1)
        return 0;
    __m256 d = _mm256_set1_ps((float)(k + 1 < c->w ? k + 1 : c->w));
    for (int x = 0; x < 64; x += 8)
        _mm256_storeu_ps(out + x, _mm256_div_ps(_mm256_load_ps(sum + x), d));
    *orow = k - c->half + 1;
    return 1;
}

typedef struct {
    const cordon__pdq_geom_t *g;
    size_t pitch;
    float *T, *S;    /* column-major tiles */
    float *c1blk;    /* B rows of first-column-pass output */
    int c1_first;    /* image row of c1blk's first row */
    int c1_count;    /* rows held */
    cordon__colbox_t c2;
    float *c2out;
} stage2_t;

/* The second row pass on n column-filtered rows held in the tile T2, then
 * the second column pass on the 64 sampled columns of each of them. */
static void stage2_tile(stage2_t *s, const float *T2, int n, float out[64][64])
{
    const cordon__pdq_geom_t *g = s->g;
    if (n == 0)
        return;
    box_rows_T(T2, NULL, g->width, g->win_x, g->sample_col, s->S);
    for (int r = 0; r < n; r++) {
        int row = s->c1_first + r;
        float *slot = cordon__colbox_slot(&s->c2, row);
        for (int j = 0; j < 64; j++)
            slot[j] = s->S[(size_t)j * B + r];
        int orow;
        if (colbox64_push_avx2(&s->c2, row, s->c2out, &orow))
            cordon__pdq_emit_final(g, orow, s->c2out, out);
    }
    s->c1_first += n;
}

/* The same for rows collected row-major in c1blk (the column pass tail). */
static void stage2_flush(stage2_t *s, float out[64][64])
{
    if (s->c1_count == 0)
        return;
    rows_to_T(s->c1blk, s->pitch, s->g->width, s->T);
    stage2_tile(s, s->T, s->c1_count, out);
    s->c1_count = 0;
}

void cordon__pdq_filter_avx2(const cordon_plane_t *img,
                             const cordon__pdq_geom_t *g, float *scratch,
                             float out[64][64])
{
    int W = g->width, H = g->height;
    size_t pitch = cordon__pdq_pitch(W);
    float *p = scratch;
    cordon__colbox_t c1 = {H, g->win_y, g->half_y, W, pitch, g->win_y + 1 + B,
                           NULL, NULL};
    stage2_t s2;
    memset(&s2, 0, sizeof s2);
    s2.g = g;
    s2.pitch = pitch;
    c1.ring = p, p += (size_t)c1.ring_rows * pitch;
    c1.sum = p, p += pitch;
    s2.T = p, p += pitch * B;
    float *O = p;
    p += pitch * B;
    s2.c1blk = p, p += pitch * B;
    p += pitch; /* spare row */
    cordon__colbox_t c2 = {H, g->win_y, g->half_y, 64, 64, g->win_y + 1 + B,
                           NULL, NULL};
    c2.ring = p, p += (size_t)c2.ring_rows * 64;
    c2.sum = p, p += 64;
    s2.c2out = p, p += 64;
    s2.S = p;
    s2.c2 = c2;

    for (int y0 = 0; y0 < H; y0 += B) {
        int nb = H - y0 < B ? H - y0 : B;
        luma_block_T(img, y0, nb, s2.T);
        box_rows_T(s2.T, O, W, g->win_x, NULL, NULL);
        /* T is free again once R1 has read it: it takes C1's output. */
        int e = colbox_block_avx2(&c1, O, y0, nb, s2.T);
        stage2_tile(&s2, s2.T, e, out);
    }
    for (int t = 0; t < c1.half - 1; t++) {
        int orow;
        float *o = s2.c1blk + (size_t)s2.c1_count * pitch;
        colbox_tail_avx2(&c1, t, o, &orow);
        if (++s2.c1_count == B)
            stage2_flush(&s2, out);
    }
    stage2_flush(&s2, out);
    int orow;
    for (int t = 0; t < s2.c2.half - 1; t++) {
        cordon__colbox_tail(&s2.c2, t, s2.c2out, &orow);
        cordon__pdq_emit_final(g, orow, s2.c2out, out);
    }
}
