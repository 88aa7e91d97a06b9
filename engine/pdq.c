/*
 * pdq.c - PDQ hashing core: geometry, the portable streaming box filter,
 * decimation, quality, DCT, median threshold, dihedral variants, hex and
 * distance. The arithmetic follows DESIGN.md section 2 operation by
 * operation, because float rounding makes the hash depend on the order.
 */
#include <stdint.h>
#include <string.h>

#include "cordon_cpu.h"
#include "cordon_error.h"
#include "pdq_dct.h"
#include "pdq_internal.h"

#define MIN_SIDE 5 /* smaller planes hash to zero, as in the reference */
#define ALIGN 64

size_t cordon__pdq_pitch(int width)
{
    return ((size_t)width + 15) & ~(size_t)15;
}

static int window_of(int n)
{
    return (n + 127) / 128;
}

size_t cordon__pdq_scratch_floats(int width, int win_y)
{
    size_t pitch = cordon__pdq_pitch(width);
    size_t wy = (size_t)win_y;
    /* Full-width rows: a ring of wy + 1 + BLOCK row-filtered rows, the
     * column sums, three blocks of BLOCK rows for the SIMD path (transposed
     * input, transposed output, column-filtered rows) and two spare rows.
     * The generic path uses a subset of this. */
    size_t full_rows =
        (wy + 1 + CORDON__PDQ_BLOCK) + 1 + 3 * CORDON__PDQ_BLOCK + 2;
    /* 64-wide rows for the second column pass: ring, sums, output, and the
     * SIMD path's block of sampled values. */
    size_t narrow = 64 * ((wy + 1 + CORDON__PDQ_BLOCK) + 2 + CORDON__PDQ_BLOCK);
    size_t n = full_rows * pitch + narrow;
    size_t n512 = cordon__pdq_avx512_floats(width, window_of(width), win_y);
    return n > n512 ? n : n512;
}

static int is_scaled(const cordon_pdq_opts_t *o)
{
    return o && o->scale > 1;
}

/* Most small pixels one of the 64 samples' weights can span along a side:
 * the two box passes reach 2w - 1 full-size pixels. */
static size_t support_of(int src_side, int scale)
{
    return (size_t)(2 * window_of(src_side) - 1) / (size_t)scale + 2;
}

/* Floats of scratch the scaled path needs: a luma row and the weights and
 * (as ints) the first index of each sample along each side. */
static size_t scaled_floats(int width, const cordon_pdq_opts_t *o)
{
    return cordon__pdq_pitch(width) +
           64 * (support_of(o->src_width, o->scale) +
                 support_of(o->src_height, o->scale)) +
           4 * 64;
}

static int scaled_dims_ok(int width, int height, const cordon_pdq_opts_t *o)
{
    int s = o->scale;
    return s <= 8 && o->src_width > 0 && o->src_height > 0 &&
           width == (o->src_width + s - 1) / s &&
           height == (o->src_height + s - 1) / s;
}

size_t cordon_pdq_scratch_size_ex(int width, int height,
                                  const cordon_pdq_opts_t *opts)
{
    if (width <= 0 || height <= 0)
        return 0;
    if ((uint64_t)width * (uint64_t)height > ((uint64_t)1 << 40))
        return 0;
    if (is_scaled(opts)) {
        if (!scaled_dims_ok(width, height, opts))
            return 0;
        return scaled_floats(width, opts) * sizeof(float) + ALIGN;
    }
    return cordon__pdq_scratch_floats(width, window_of(height)) *
               sizeof(float) +
           ALIGN;
}

size_t cordon_pdq_scratch_size(int width, int height)
{
    return cordon_pdq_scratch_size_ex(width, height, NULL);
}

void cordon__pdq_luma_row(const cordon_plane_t *img, int y, float *out)
{
    const uint8_t *p = img->data + (size_t)y * img->stride;
    const float kr = 0.299f, kg = 0.587f, kb = 0.114f;
    int w = img->width;
    switch (img->format) {
    case CORDON_PIX_GRAY8:
        for (int x = 0; x < w; x++)
            out[x] = (float)p[x];
        break;
    case CORDON_PIX_RGB8:
        for (int x = 0; x < w; x++, p += 3)
            out[x] = kr * (float)p[0] + kg * (float)p[1] + kb * (float)p[2];
        break;
    case CORDON_PIX_RGBA8:
        for (int x = 0; x < w; x++, p += 4)
            out[x] = kr * (float)p[0] + kg * (float)p[1] + kb * (float)p[2];
        break;
    }
}

/* One 1-D box pass over n contiguous samples with window w, in the
 * reference's four phases. `cnt` always equals the samples in `sum`. */
void cordon__box_1d(const float *in, float *out, int n, int w)
{
    int half = (w + 2) / 2;
    float sum = 0.0f;
    int cnt = 0, ri = 0, li = 0, oi = 0;
    for (int k = 0; k < half - 1; k++) {
        sum += in[ri++];
        cnt++;
    }
    for (int k = 0; k < w - half + 1; k++) {
        sum += in[ri++];
        cnt++;
        out[oi++] = sum / (float)cnt;
    }
    for (int k = 0; k < n - w; k++) {
        sum += in[ri++];
        sum -= in[li++];
        out[oi++] = sum / (float)cnt;
    }
    for (int k = 0; k < half - 1; k++) {
        sum -= in[li++];
        cnt--;
        out[oi++] = sum / (float)cnt;
    }
}

/*
 * The column pass as a stream: rows arrive one at a time into a ring, and
 * each column keeps its own running sum, updated in exactly the order the
 * reference's per-column loop uses (add the newest row, then subtract the
 * oldest). Columns are independent, so the inner loops run across columns
 * and vectorise without changing any column's arithmetic.
 */
float *cordon__colbox_slot(cordon__colbox_t *c, int row)
{
    return c->ring + (size_t)(row % c->ring_rows) * c->pitch;
}

/* Row k (already stored in its slot) arrives; returns 1 and fills out with
 * output row *orow when the pass emits one. */
int cordon__colbox_push(cordon__colbox_t *c, int k, float *out, int *orow)
{
    const float *in = cordon__colbox_slot(c, k);
    float *sum = c->sum;
    int cols = c->cols;
    if (k == 0)
        memset(sum, 0, (size_t)cols * sizeof *sum);
    if (k >= c->w) {
        const float *old = cordon__colbox_slot(c, k - c->w);
        for (int x = 0; x < cols; x++) {
            sum[x] += in[x];
            sum[x] -= old[x];
        }
    } else {
        for (int x = 0; x < cols; x++)
            sum[x] += in[x];
    }
    if (k < c->half - 1)
        return 0;
    float cnt = (float)(k + 1 < c->w ? k + 1 : c->w);
    for (int x = 0; x < cols; x++)
        out[x] = sum[x] / cnt;
    *orow = k - c->half + 1;
    return 1;
}

/* After the last row: phase 4, step t (0 .. half-2). */
void cordon__colbox_tail(cordon__colbox_t *c, int t, float *out, int *orow)
{
    const float *old = cordon__colbox_slot(c, c->n - c->w + t);
    float *sum = c->sum;
    float cnt = (float)(c->w - 1 - t);
    for (int x = 0; x < c->cols; x++) {
        sum[x] -= old[x];
        out[x] = sum[x] / cnt;
    }
    *orow = c->n - c->half + 1 + t;
}

/* Stores a finished (fully filtered) row at the sample columns into the
 * rows of the 64x64 output that sample it. */
void cordon__pdq_emit_final(const cordon__pdq_geom_t *g, int row,
                            const float *v, float out[64][64])
{
    for (int i = 0; i < 64; i++)
        if (g->sample_row[i] == row)
            memcpy(out[i], v, 64 * sizeof(float));
}

/* Second row pass on one column-filtered row, then the second column pass
 * on the 64 sampled columns. */
static void stage2_row(const cordon__pdq_geom_t *g, cordon__colbox_t *c2,
                       const float *c1row, float *tmp, float *c2out,
                       float out[64][64], int row)
{
    cordon__box_1d(c1row, tmp, g->width, g->win_x);
    float *slot = cordon__colbox_slot(c2, row);
    for (int j = 0; j < 64; j++)
        slot[j] = tmp[g->sample_col[j]];
    int orow;
    if (cordon__colbox_push(c2, row, c2out, &orow))
        cordon__pdq_emit_final(g, orow, c2out, out);
}

static void stage2_finish(const cordon__pdq_geom_t *g, cordon__colbox_t *c2,
                          float *c2out, float out[64][64])
{
    int orow;
    for (int t = 0; t < c2->half - 1; t++) {
        cordon__colbox_tail(c2, t, c2out, &orow);
        cordon__pdq_emit_final(g, orow, c2out, out);
    }
}

void cordon__pdq_filter_generic(const cordon_plane_t *img,
                                const cordon__pdq_geom_t *g, float *scratch,
                                float out[64][64])
{
    int W = g->width, H = g->height;
    size_t pitch = cordon__pdq_pitch(W);
    float *p = scratch;
    cordon__colbox_t c1 = {H,     g->win_y,     g->half_y, W,
                           pitch, g->win_y + 1, NULL,      NULL};
    cordon__colbox_t c2 = {H,  g->win_y,     g->half_y, 64,
                           64, g->win_y + 1, NULL,      NULL};
    c1.ring = p, p += (size_t)c1.ring_rows * pitch;
    c1.sum = p, p += pitch;
    float *luma = p;
    p += pitch;
    float *c1out = p;
    p += pitch;
    float *tmp = p;
    p += pitch;
    c2.ring = p, p += (size_t)c2.ring_rows * 64;
    c2.sum = p, p += 64;
    float *c2out = p;

    int orow;
    for (int y = 0; y < H; y++) {
        cordon__pdq_luma_row(img, y, luma);
        cordon__box_1d(luma, cordon__colbox_slot(&c1, y), W, g->win_x);
        if (cordon__colbox_push(&c1, y, c1out, &orow))
            stage2_row(g, &c2, c1out, tmp, c2out, out, orow);
    }
    for (int t = 0; t < c1.half - 1; t++) {
        cordon__colbox_tail(&c1, t, c1out, &orow);
        stage2_row(g, &c2, c1out, tmp, c2out, out, orow);
    }
    stage2_finish(g, &c2, c2out, out);
}

void cordon__pdq_geom_init(cordon__pdq_geom_t *g, int W, int H, int win_x,
                           int win_y)
{
    g->width = W;
    g->height = H;
    g->win_x = win_x;
    g->win_y = win_y;
    g->half_x = (g->win_x + 2) / 2;
    g->half_y = (g->win_y + 2) / 2;
    for (int i = 0; i < 64; i++) {
        g->sample_row[i] = (int)(((double)i + 0.5) * (double)H / 64.0);
        g->sample_col[i] = (int)(((double)i + 0.5) * (double)W / 64.0);
    }
}

static int quality_of(float a[64][64])
{
    if (cordon_cpu_features() & CORDON_CPU_AVX512)
        return cordon__pdq_quality_avx512((const float(*)[64])a);
    int sum = 0;
    for (int i = 0; i < 63; i++)
        for (int j = 0; j < 64; j++) {
            int d = (int)((a[i][j] - a[i + 1][j]) * 100 / 255);
            sum += d < 0 ? -d : d;
        }
    for (int i = 0; i < 64; i++)
        for (int j = 0; j < 63; j++) {
            int d = (int)((a[i][j] - a[i][j + 1]) * 100 / 255);
            sum += d < 0 ? -d : d;
        }
    int q = sum / 90;
    return q > 100 ? 100 : q;
}

/* B = D A D^T with float accumulation in increasing k, as the reference. */
static void dct_16x16(float a[64][64], cordon_pdq_dct_t *out)
{
    float t[16][64];
    if (cordon_cpu_features() & CORDON_CPU_AVX512)
        cordon__pdq_dct_rows_avx512((const float(*)[64])a, cordon__pdq_dct,
                                    t);
    else
        for (int i = 0; i < 16; i++) {
            float acc[64] = {0};
            for (int k = 0; k < 64; k++) {
                float d = cordon__pdq_dct[i][k];
                for (int j = 0; j < 64; j++)
                    acc[j] += d * a[k][j];
            }
            memcpy(t[i], acc, sizeof acc);
        }
    /* The second product keeps each output's sum in increasing k, with
     * the 16 outputs of a row accumulated side by side (so the compiler
     * can vectorise across j instead of waiting on one sum at a time). */
    float dt[64][16];
    for (int k = 0; k < 64; k++)
        for (int j = 0; j < 16; j++)
            dt[k][j] = cordon__pdq_dct[j][k];
    for (int i = 0; i < 16; i++) {
        float s[16] = {0};
        for (int k = 0; k < 64; k++) {
            float v = t[i][k];
            for (int j = 0; j < 16; j++)
                s[j] += v * dt[k][j];
        }
        memcpy(out->c[i], s, sizeof s);
    }
}

/* k-th smallest (0-based) of n floats, by quickselect on a copy. */
static float select_kth(float *v, int n, int k)
{
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        float pivot = v[(lo + hi) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot)
                i++;
            while (v[j] > pivot)
                j--;
            if (i <= j) {
                float tmp = v[i];
                v[i] = v[j];
                v[j] = tmp;
                i++;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            break;
    }
    return v[k];
}

/*
 * Weights of one of the 64 samples over the small pixels of one side, for
 * fast mode. The reference's two box passes are linear: sample s of the
 * full-size side is sum_j M[s][j] x[j] with M = B B, where row k of B
 * averages the window [k - (w - half), k + half - 1] clipped to the side.
 * Each full-size pixel j repeats small pixel j / scale, so the small
 * pixel's weight is the sum of M[s][j] over its scale full-size pixels.
 * The weights go to wt (support_of() floats); returns the first small
 * index, *count the number of weights.
 */
static int sample_weights(int n, int scale, int ns, int s, float *wt,
                          int *count)
{
    int w = window_of(n), half = (w + 2) / 2;
    int lo_s = s - (w - half) < 0 ? 0 : s - (w - half);
    int hi_s = s + half - 1 > n - 1 ? n - 1 : s + half - 1;
    /* The composite reaches from the first window's first input to the
     * last window's last. */
    int jlo = lo_s - (w - half) < 0 ? 0 : lo_s - (w - half);
    int jhi = hi_s + half - 1 > n - 1 ? n - 1 : hi_s + half - 1;
    int qlo = jlo / scale, qhi = jhi / scale;
    if (qhi > ns - 1)
        qhi = ns - 1;
    int nq = qhi - qlo + 1;
    /* Accumulate in full-size coordinates with a difference array, then
     * fold into small pixels. double keeps the weights accurate. */
    double acc[2 * 512 + 2]; /* 2w - 1 <= 1023 for sides up to 65535 */
    int nj = jhi - jlo + 1;
    memset(acc, 0, (size_t)(nj + 1) * sizeof acc[0]);
    double inv_s = 1.0 / (hi_s - lo_s + 1);
    for (int k = lo_s; k <= hi_s; k++) {
        int lo = k - (w - half) < 0 ? 0 : k - (w - half);
        int hi = k + half - 1 > n - 1 ? n - 1 : k + half - 1;
        double c = inv_s / (hi - lo + 1);
        acc[lo - jlo] += c;
        acc[hi + 1 - jlo] -= c;
    }
    for (int q = 0; q < nq; q++)
        wt[q] = 0.0f;
    double run = 0.0;
    for (int j = 0; j < nj; j++) {
        run += acc[j];
        int q = (jlo + j) / scale - qlo;
        if (q >= nq)
            q = nq - 1;
        wt[q] += (float)run;
    }
    *count = nq;
    return qlo;
}

/* Fast mode's filter: the 64x64 samples of the full-size geometry,
 * computed from the small plane with the weights above. */
static void scaled_filter(const cordon_plane_t *img, const cordon_pdq_opts_t *o,
                          float *fs, float a[64][64])
{
    int W = img->width, H = img->height, S = o->scale;
    size_t sx = support_of(o->src_width, S), sy = support_of(o->src_height, S);
    float *row = fs;
    float *wx = row + cordon__pdq_pitch(W);
    float *wy = wx + 64 * sx;
    int *qx = (int *)(wy + 64 * sy);
    int *nx = qx + 64, *qy = nx + 64, *ny = qy + 64;
    for (int i = 0; i < 64; i++) {
        int sc = (int)(((double)i + 0.5) * (double)o->src_width / 64.0);
        int sr = (int)(((double)i + 0.5) * (double)o->src_height / 64.0);
        qx[i] = sample_weights(o->src_width, S, W, sc, wx + i * sx, &nx[i]);
        qy[i] = sample_weights(o->src_height, S, H, sr, wy + i * sy, &ny[i]);
    }
    memset(a, 0, sizeof(float) * 64 * 64);
    for (int y = 0; y < H; y++) {
        int any = 0;
        for (int r = 0; r < 64; r++)
            any |= y >= qy[r] && y < qy[r] + ny[r];
        if (!any)
            continue;
        cordon__pdq_luma_row(img, y, row);
        float red[64];
        for (int c = 0; c < 64; c++) {
            const float *wc = wx + c * sx;
            float acc = 0.0f;
            for (int q = 0; q < nx[c]; q++)
                acc += wc[q] * row[qx[c] + q];
            red[c] = acc;
        }
        for (int r = 0; r < 64; r++)
            if (y >= qy[r] && y < qy[r] + ny[r]) {
                float wr = wy[r * sy + (size_t)(y - qy[r])];
                for (int c = 0; c < 64; c++)
                    a[r][c] += wr * red[c];
            }
    }
}

void cordon_pdq_threshold(const cordon_pdq_dct_t *dct, cordon_hash256_t *out)
{
    float v[256];
    memcpy(v, dct->c, sizeof v);
    float median = select_kth(v, 256, 127);
    memset(out, 0, sizeof *out);
    const float *c = &dct->c[0][0];
    for (int k = 0; k < 256; k++)
        if (c[k] > median)
            out->w[k >> 6] |= (uint64_t)1 << (k & 63);
}

int cordon_pdq_compute(const cordon_plane_t *img, void *scratch,
                       size_t scratch_size, cordon_pdq_result_t *out)
{
    return cordon_pdq_compute_ex(img, NULL, scratch, scratch_size, out);
}

int cordon_pdq_compute_ex(const cordon_plane_t *img,
                          const cordon_pdq_opts_t *opts, void *scratch,
                          size_t scratch_size, cordon_pdq_result_t *out)
{
    if (!img || !out || !img->data)
        return CORDON_EINVAL;
    if (img->format != CORDON_PIX_GRAY8 && img->format != CORDON_PIX_RGB8 &&
        img->format != CORDON_PIX_RGBA8)
        return CORDON_EINVAL;
    if (img->width <= 0 || img->height <= 0 ||
        img->stride < (size_t)img->width * (size_t)img->format)
        return CORDON_EINVAL;
    memset(out, 0, sizeof *out);
    if (img->width < MIN_SIDE || img->height < MIN_SIDE)
        return CORDON_OK;
    size_t need = cordon_pdq_scratch_size_ex(img->width, img->height, opts);
    if (need == 0)
        return CORDON_EINVAL;
    if (!scratch || scratch_size < need)
        return CORDON_ESCRATCH;
    float *fs =
        (float *)(((uintptr_t)scratch + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1));

    float a[64][64];
    if (is_scaled(opts)) {
        scaled_filter(img, opts, fs, a);
    } else if (img->width == 64 && img->height == 64) {
        /* The reference hashes an exact 64x64 input without filtering. */
        for (int y = 0; y < 64; y++)
            cordon__pdq_luma_row(img, y, a[y]);
    } else {
        cordon__pdq_geom_t g;
        cordon__pdq_geom_init(&g, img->width, img->height,
                              window_of(img->width), window_of(img->height));
        unsigned cpu = cordon_cpu_features();
        if (cpu & CORDON_CPU_AVX512)
            cordon__pdq_filter_avx512(img, &g, fs, a);
        else if (cpu & CORDON_CPU_AVX2)
            cordon__pdq_filter_avx2(img, &g, fs, a);
        else
            cordon__pdq_filter_generic(img, &g, fs, a);
    }
    out->quality = quality_of(a);
    dct_16x16(a, &out->dct);
    cordon_pdq_threshold(&out->dct, &out->hash);
    return CORDON_OK;
}

void cordon_pdq_dihedral(const cordon_pdq_dct_t *dct,
                         cordon_hash256_t out[CORDON_DIH_COUNT])
{
    const float(*b)[16] = dct->c;
    cordon_pdq_dct_t t;
    for (int d = 0; d < CORDON_DIH_COUNT; d++) {
        for (int i = 0; i < 16; i++)
            for (int j = 0; j < 16; j++) {
                float v = 0.0f;
                /* Odd DCT frequencies (even indices) change sign when
                 * the image is mirrored along that axis. */
                switch ((cordon_dihedral_t)d) {
                case CORDON_DIH_ORIGINAL:
                    v = b[i][j];
                    break;
                case CORDON_DIH_ROT90:
                    v = (i & 1) ? b[j][i] : -b[j][i];
                    break;
                case CORDON_DIH_ROT180:
                    v = ((i + j) & 1) ? -b[i][j] : b[i][j];
                    break;
                case CORDON_DIH_ROT270:
                    v = (j & 1) ? b[j][i] : -b[j][i];
                    break;
                case CORDON_DIH_FLIPX:
                    v = (i & 1) ? b[i][j] : -b[i][j];
                    break;
                case CORDON_DIH_FLIPY:
                    v = (j & 1) ? b[i][j] : -b[i][j];
                    break;
                case CORDON_DIH_FLIPPLUS1:
                    v = b[j][i];
                    break;
                case CORDON_DIH_FLIPMINUS1:
                    v = ((i + j) & 1) ? -b[j][i] : b[j][i];
                    break;
                case CORDON_DIH_COUNT:
                    break;
                }
                t.c[i][j] = v;
            }
        cordon_pdq_threshold(&t, &out[d]);
    }
}

const char *cordon_dihedral_name(cordon_dihedral_t d)
{
    static const char *const names[CORDON_DIH_COUNT] = {
        "original", "rot90", "rot180",    "rot270",
        "flipx",    "flipy", "flipplus1", "flipminus1"};
    return (unsigned)d < CORDON_DIH_COUNT ? names[d] : "unknown";
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int cordon_hash_from_hex(const char *hex, size_t len, cordon_hash256_t *out)
{
    if (!hex || !out || len != CORDON_HASH_HEX_LEN)
        return CORDON_EHEX;
    cordon_hash256_t h = {{0, 0, 0, 0}};
    /* The first digit holds the most significant nibble, bits 255..252. */
    for (size_t i = 0; i < CORDON_HASH_HEX_LEN; i++) {
        int v = hexval(hex[i]);
        if (v < 0)
            return CORDON_EHEX;
        int bit = 252 - 4 * (int)i;
        h.w[bit >> 6] |= (uint64_t)v << (bit & 63);
    }
    *out = h;
    return CORDON_OK;
}

void cordon_hash_to_hex(const cordon_hash256_t *h,
                        char out[CORDON_HASH_HEX_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < CORDON_HASH_HEX_LEN; i++) {
        int bit = 252 - 4 * i;
        out[i] = digits[(h->w[bit >> 6] >> (bit & 63)) & 15];
    }
    out[CORDON_HASH_HEX_LEN] = 0;
}

int cordon_hash_distance(const cordon_hash256_t *a, const cordon_hash256_t *b)
{
    return __builtin_popcountll(a->w[0] ^ b->w[0]) +
           __builtin_popcountll(a->w[1] ^ b->w[1]) +
           __builtin_popcountll(a->w[2] ^ b->w[2]) +
           __builtin_popcountll(a->w[3] ^ b->w[3]);
}
