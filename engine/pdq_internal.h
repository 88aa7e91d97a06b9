/* pdq_internal.h - shared between the PDQ filter paths (not public). */
#ifndef CORDON_PDQ_INTERNAL_H
#define CORDON_PDQ_INTERNAL_H

#include <stddef.h>

#include "cordon_pdq.h"

/* Geometry of one hash computation, derived from the plane's size. */
typedef struct {
    int width, height;
    int win_x, win_y;   /* box window along rows / along columns */
    int half_x, half_y; /* (win + 2) / 2, as the reference computes it */
    int sample_row[64]; /* rows and columns the 64x64 decimation reads */
    int sample_col[64];
} cordon__pdq_geom_t;

/* Rows processed together by the SIMD filter. */
#define CORDON__PDQ_BLOCK 16

/* A column box pass run as a stream of rows (see pdq.c). */
typedef struct {
    int n, w, half, cols;
    size_t pitch;
    int ring_rows;
    float *ring; /* ring_rows x pitch */
    float *sum;  /* cols */
} cordon__colbox_t;

/* Where row `row` lives in the ring. */
float *cordon__colbox_slot(cordon__colbox_t *c, int row);
/* Row k (already in its slot) arrives; returns 1 when an output row
 * (*orow) was written to out. */
int cordon__colbox_push(cordon__colbox_t *c, int k, float *out, int *orow);
/* After the last row: the reference's phase 4, step t. */
void cordon__colbox_tail(cordon__colbox_t *c, int t, float *out, int *orow);
/* One 1-D box pass over n contiguous samples with window w. */
void cordon__box_1d(const float *in, float *out, int n, int w);
/* Copies a fully filtered row (64 sampled columns) into the output rows
 * that sample it. */
void cordon__pdq_emit_final(const cordon__pdq_geom_t *g, int row,
                            const float *v, float out[64][64]);
void cordon__pdq_geom_init(cordon__pdq_geom_t *g, int width, int height,
                           int win_x, int win_y);

/* Row pitch (in floats) of full-width scratch rows: the width rounded up
 * so that rows stay 64-byte aligned. */
size_t cordon__pdq_pitch(int width);

/* Scratch floats needed by the streaming filters for a plane this size. */
size_t cordon__pdq_scratch_floats(int width, int win_y);

/* Converts one row of pixels to float luma, as the reference does:
 * Y = 0.299f*R + 0.587f*G + 0.114f*B in float, left to right; grey as is. */
void cordon__pdq_luma_row(const cordon_plane_t *img, int y, float *out);

/* The full two-pass box filter followed by 64x64 decimation, streamed over
 * the rows. `scratch` is 64-byte aligned, cordon__pdq_scratch_floats()
 * long. Each path must produce bit-identical output. */
void cordon__pdq_filter_generic(const cordon_plane_t *img,
                                const cordon__pdq_geom_t *g, float *scratch,
                                float out[64][64]);
void cordon__pdq_filter_avx2(const cordon_plane_t *img,
                             const cordon__pdq_geom_t *g, float *scratch,
                             float out[64][64]);
void cordon__pdq_filter_avx512(const cordon_plane_t *img,
                               const cordon__pdq_geom_t *g, float *scratch,
                               float out[64][64]);
/* AVX-512 versions of the quality measure and of the DCT's first product
 * (t = D a); bit-identical to the portable code in pdq.c. */
int cordon__pdq_quality_avx512(const float a[64][64]);
void cordon__pdq_dct_rows_avx512(const float a[64][64],
                                 const float d[16][64], float t[16][64]);
/* Scratch floats the AVX-512 filter needs (see pdq_avx512.c). */
size_t cordon__pdq_avx512_floats(int width, int win_x, int win_y);

#endif
