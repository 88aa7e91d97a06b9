/*
 * PDQ core: hex and distance, the DCT table, edge geometries, scratch and
 * argument errors, SIMD paths against the portable path on synthetic
 * planes, and the reference's dihedral and bridge-mods regression sets.
 */
#include <math.h>

#include "cordon.h"
#include "harness.h"
#include "pdq_dct.h"
#include "util.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

TEST(hex_round_trip)
{
    for (int i = 0; i < 1000; i++) {
        cordon_hash256_t h = {{rnd(), rnd(), rnd(), rnd()}}, back;
        char hex[65];
        cordon_hash_to_hex(&h, hex);
        CHECK_EQ(strlen(hex), 64);
        CHECK_EQ(cordon_hash_from_hex(hex, 64, &back), CORDON_OK);
        CHECK(memcmp(&h, &back, sizeof h) == 0);
    }
    /* Bit 0 is the last hex digit's low bit; bit 255 the first's high. */
    cordon_hash256_t h = {{1, 0, 0, (uint64_t)1 << 63}};
    char hex[65];
    cordon_hash_to_hex(&h, hex);
    CHECK_STREQ(
        hex,
        "8000000000000000000000000000000000000000000000000000000000000001");
    cordon_hash256_t u;
    CHECK_EQ(
        cordon_hash_from_hex("F8F8F0CEE0F4A84F06370A22038F63F0B36E2ED596621E1D"
                             "33E6B39C4E9C9B22",
                             64, &u),
        CORDON_OK);
    cordon_hash_to_hex(&u, hex);
    CHECK_STREQ(
        hex,
        "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22");
}

TEST(hex_rejects_malformed)
{
    cordon_hash256_t h;
    const char *good =
        "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
    CHECK_EQ(cordon_hash_from_hex(good, 63, &h), CORDON_EHEX);
    CHECK_EQ(cordon_hash_from_hex(good, 0, &h), CORDON_EHEX);
    CHECK_EQ(cordon_hash_from_hex(NULL, 64, &h), CORDON_EHEX);
    char bad[65];
    memcpy(bad, good, 65);
    bad[17] = 'g';
    CHECK_EQ(cordon_hash_from_hex(bad, 64, &h), CORDON_EHEX);
    bad[17] = ' ';
    CHECK_EQ(cordon_hash_from_hex(bad, 64, &h), CORDON_EHEX);
}

TEST(distance)
{
    cordon_hash256_t a = {{0, 0, 0, 0}}, b = a;
    CHECK_EQ(cordon_hash_distance(&a, &b), 0);
    for (int k = 0; k < 256; k++) {
        b.w[k >> 6] |= (uint64_t)1 << (k & 63);
        CHECK_EQ(cordon_hash_distance(&a, &b), k + 1);
        CHECK_EQ(cordon_hash_distance(&b, &a), k + 1);
    }
    /* Against a bit-by-bit count on random pairs. */
    for (int i = 0; i < 1000; i++) {
        cordon_hash256_t x = {{rnd(), rnd(), rnd(), rnd()}};
        cordon_hash256_t y = {{rnd(), rnd(), rnd(), rnd()}};
        int want = 0;
        for (int k = 0; k < 256; k++)
            want += (int)(((x.w[k >> 6] ^ y.w[k >> 6]) >> (k & 63)) & 1);
        CHECK_EQ(cordon_hash_distance(&x, &y), want);
    }
}

TEST(dct_table_matches_definition)
{
    const float scale = (float)sqrt(2.0 / 64.0);
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 64; j++) {
            float v = (float)(scale * cos(M_PI / 128.0 *
                                          (double)((i + 1) * (2 * j + 1))));
            CHECK_MSG(memcmp(&v, &cordon__pdq_dct[i][j], sizeof v) == 0,
                      "D[%d][%d]", i, j);
        }
}

static uint8_t *random_plane(int w, int h, int bpp, int smooth)
{
    uint8_t *p = malloc((size_t)w * h * bpp);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < bpp; c++) {
                uint8_t v = (uint8_t)rnd();
                if (smooth) /* structured content, so quality is high */
                    v = (uint8_t)(128 +
                                  100 * sin(x * 0.05 + c) * cos(y * 0.031 - c));
                p[((size_t)y * w + x) * bpp + c] = v;
            }
    return p;
}

static int compute(const uint8_t *px, int w, int h, int bpp,
                   cordon_pdq_result_t *r)
{
    cordon_plane_t pl = {px, w, h, (size_t)w * bpp, (cordon_pixfmt_t)bpp};
    size_t n = cordon_pdq_scratch_size(w, h);
    void *s = malloc(n);
    int rc = cordon_pdq_compute(&pl, s, n, r);
    free(s);
    return rc;
}

TEST(simd_paths_identical)
{
    static const int sizes[][2] = {
        {5, 5},     {7, 300},  {64, 64},   {65, 64},   {63, 200},
        {129, 257}, {300, 7},  {640, 480}, {641, 479}, {1001, 333},
        {16, 1500}, {2000, 9}, {257, 4100},
        /* windows wider than the AVX-512 path's 64-column chunks */
        {20000, 40}, {40, 17000}};
    static const int bpps[] = {1, 3, 4};
    unsigned all = cordon_cpu_features();
    /* Every vector path the machine has, each against the portable one. */
    unsigned paths[3];
    int npaths = 0;
    if (all & CORDON_CPU_AVX2)
        paths[npaths++] = all & ~(unsigned)CORDON_CPU_AVX512;
    if (all & CORDON_CPU_AVX512)
        paths[npaths++] = all;
    CHECK_MSG(npaths > 0, "no vector path on this machine (%s)",
              cordon_cpu_path_name());
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (size_t b = 0; b < 3; b++)
            for (int smooth = 0; smooth < 2; smooth++) {
                int w = sizes[s][0], h = sizes[s][1], bpp = bpps[b];
                uint8_t *px = random_plane(w, h, bpp, smooth);
                cordon_pdq_result_t r0, r1;
                cordon_cpu_set_features(0);
                CHECK_EQ(compute(px, w, h, bpp, &r0), CORDON_OK);
                for (int p = 0; p < npaths; p++) {
                    cordon_cpu_set_features(paths[p]);
                    CHECK_EQ(compute(px, w, h, bpp, &r1), CORDON_OK);
                    CHECK_MSG(memcmp(&r0.hash, &r1.hash, sizeof r0.hash) == 0 &&
                                  r0.quality == r1.quality &&
                                  memcmp(&r0.dct, &r1.dct, sizeof r0.dct) == 0,
                              "%dx%d bpp %d smooth %d: paths differ (%s)", w, h,
                              bpp, smooth, cordon_cpu_path_name());
                }
                free(px);
            }
    cordon_cpu_set_features(~0u);
}

/* The AVX-512 filter divides by a window count c as q = a*r,
 * e = fma(-q, c, a), q' = fma(e, r, q) with r = 1/c rounded, relying on
 * that being the correctly rounded a/c. Check it with the same
 * operations in scalar form: whole binades for typical window sizes, and
 * random samples over every count a window can have (up to 512). */
static int div_matches(float a, int c)
{
    float fc = (float)c, r = 1.0f / fc;
    float q = a * r;
    float e = fmaf(-q, fc, a);
    float q2 = fmaf(e, r, q);
    float want = a / fc;
    return memcmp(&q2, &want, sizeof q2) == 0;
}

TEST(fma_division_is_exact)
{
    static const int counts[] = {3, 7, 13, 25, 45, 127, 511};
    long bad = 0;
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        /* the binade [2^(i+4), 2^(i+5)): box sums of pixel values */
        uint32_t lo = (uint32_t)(127 + 4 + i) << 23, hi = lo + (1u << 23);
        for (uint32_t b = lo; b < hi; b++) {
            float a;
            memcpy(&a, &b, sizeof a);
            bad += !div_matches(a, counts[i]);
        }
    }
    for (int c = 1; c <= 512; c++)
        for (int k = 0; k < 20000; k++) {
            /* exponents 2^-20 .. 2^20, any mantissa */
            uint32_t b = ((uint32_t)(107 + rnd() % 41) << 23) |
                         (uint32_t)(rnd() & 0x7FFFFF);
            float a;
            memcpy(&a, &b, sizeof a);
            bad += !div_matches(a, c);
        }
    CHECK_EQ(bad, 0);
}

TEST(tiny_planes_hash_to_zero)
{
    uint8_t px[4 * 100 * 3];
    memset(px, 77, sizeof px);
    for (int i = 0; i < (int)sizeof px; i++)
        px[i] = (uint8_t)rnd();
    cordon_pdq_result_t r;
    cordon_hash256_t zero = {{0, 0, 0, 0}};
    CHECK_EQ(compute(px, 4, 100, 3, &r), CORDON_OK);
    CHECK(memcmp(&r.hash, &zero, sizeof zero) == 0);
    CHECK_EQ(r.quality, 0);
    CHECK_EQ(compute(px, 100, 4, 3, &r), CORDON_OK);
    CHECK(memcmp(&r.hash, &zero, sizeof zero) == 0);
    CHECK_EQ(r.quality, 0);
    /* 5x5 is hashed normally. */
    CHECK_EQ(compute(px, 5, 5, 3, &r), CORDON_OK);
    CHECK(memcmp(&r.hash, &zero, sizeof zero) != 0);
}

TEST(uniform_plane_has_zero_quality)
{
    uint8_t *px = malloc(300 * 200);
    memset(px, 90, 300 * 200);
    cordon_pdq_result_t r;
    CHECK_EQ(compute(px, 300, 200, 1, &r), CORDON_OK);
    CHECK_EQ(r.quality, 0);
    free(px);
}

TEST(argument_errors)
{
    uint8_t px[64 * 64];
    memset(px, 1, sizeof px);
    cordon_pdq_result_t r;
    cordon_plane_t pl = {px, 64, 64, 64, CORDON_PIX_GRAY8};
    size_t n = cordon_pdq_scratch_size(64, 64);
    void *s = malloc(n);
    CHECK(n > 0);
    CHECK_EQ(cordon_pdq_compute(&pl, s, n - 1, &r), CORDON_ESCRATCH);
    CHECK_EQ(cordon_pdq_compute(&pl, NULL, 0, &r), CORDON_ESCRATCH);
    CHECK_EQ(cordon_pdq_compute(NULL, s, n, &r), CORDON_EINVAL);
    CHECK_EQ(cordon_pdq_compute(&pl, s, n, NULL), CORDON_EINVAL);
    pl.stride = 63;
    CHECK_EQ(cordon_pdq_compute(&pl, s, n, &r), CORDON_EINVAL);
    pl.stride = 64;
    pl.format = (cordon_pixfmt_t)2;
    CHECK_EQ(cordon_pdq_compute(&pl, s, n, &r), CORDON_EINVAL);
    pl.format = CORDON_PIX_GRAY8;
    pl.width = 0;
    CHECK_EQ(cordon_pdq_compute(&pl, s, n, &r), CORDON_EINVAL);
    CHECK_EQ(cordon_pdq_scratch_size(0, 10), 0);
    CHECK_EQ(cordon_pdq_scratch_size(10, -1), 0);
    free(s);
}

/* Scratch may have any alignment. */
TEST(unaligned_scratch)
{
    uint8_t *px = random_plane(333, 250, 3, 1);
    cordon_pdq_result_t r0, r1;
    CHECK_EQ(compute(px, 333, 250, 3, &r0), CORDON_OK);
    size_t n = cordon_pdq_scratch_size(333, 250);
    uint8_t *s = malloc(n + 3);
    cordon_plane_t pl = {px, 333, 250, 333 * 3, CORDON_PIX_RGB8};
    CHECK_EQ(cordon_pdq_compute(&pl, s + 3, n, &r1), CORDON_OK);
    CHECK(memcmp(&r0.hash, &r1.hash, sizeof r0.hash) == 0);
    free(s);
    free(px);
}

static int hash_vector(const char *name, cordon_image_hashes_t *h)
{
    size_t len;
    uint8_t *buf =
        tu_read_file(tu_path("%s/pdq/images/%s", tu_vectors(), name), &len);
    if (!buf)
        return -1;
    int rc = cordon_hash_image(buf, len, NULL, h);
    free(buf);
    return rc;
}

TEST(dihedral_variants_match_transformed_files)
{
    static const char *files[CORDON_DIH_COUNT] = {
        "reg-test-input_dih_bridge-1-original.jpg",
        "reg-test-input_dih_bridge-2-rotate-90.jpg",
        "reg-test-input_dih_bridge-3-rotate-180.jpg",
        "reg-test-input_dih_bridge-4-rotate-270.jpg",
        "reg-test-input_dih_bridge-5-flipx.jpg",
        "reg-test-input_dih_bridge-6-flipy.jpg",
        "reg-test-input_dih_bridge-7-flip-plus-1.jpg",
        "reg-test-input_dih_bridge-8-flip-minus-1.jpg"};
    cordon_image_hashes_t orig;
    REQUIRE(hash_vector(files[0], &orig) == 0);
    CHECK(memcmp(&orig.dihedral[0], &orig.pdq, sizeof orig.pdq) == 0);
    for (int v = 1; v < CORDON_DIH_COUNT; v++) {
        cordon_image_hashes_t t;
        REQUIRE(hash_vector(files[v], &t) == 0);
        int d = cordon_hash_distance(&orig.dihedral[v], &t.pdq);
        int d0 = cordon_hash_distance(&orig.pdq, &t.pdq);
        printf("  %-10s variant-to-file %2d bits, original-to-file %3d\n",
               cordon_dihedral_name(v), d, d0);
        CHECK_MSG(d <= 8, "%s: %d bits", cordon_dihedral_name(v), d);
        /* The transform really changes the hash: the variant is needed. */
        CHECK_MSG(d0 > 31, "%s: original already within %d",
                  cordon_dihedral_name(v), d0);
        /* Each variant is closest to its own file. */
        for (int u = 1; u < CORDON_DIH_COUNT; u++)
            if (u != v)
                CHECK_GT(cordon_hash_distance(&orig.dihedral[u], &t.pdq), d);
    }
}

TEST(bridge_mods_within_match_distance)
{
    static const char *mods[] = {
        "bridge-mods_blur-a-little.jpg",    "bridge-mods_blur-a-lot.jpg",
        "bridge-mods_high-contrast.jpg",    "bridge-mods_high-saturation.jpg",
        "bridge-mods_sharpen-a-little.jpg", "bridge-mods_sharpen-a-lot.jpg",
        "bridge-mods_shrink-a-little.jpg",  "bridge-mods_shrink-a-lot.jpg",
        "bridge-mods_square-128x128.jpg",   "bridge-mods_square-256x256.jpg",
        "bridge-mods_square-512x512.jpg"};
    cordon_image_hashes_t orig;
    REQUIRE(hash_vector("bridge-mods_aaa-orig.jpg", &orig) == 0);
    for (size_t i = 0; i < sizeof mods / sizeof mods[0]; i++) {
        cordon_image_hashes_t m;
        REQUIRE(hash_vector(mods[i], &m) == 0);
        int d = cordon_hash_distance(&orig.pdq, &m.pdq);
        CHECK_MSG(d <= CORDON_PDQ_MATCH_DISTANCE, "%s: %d", mods[i], d);
    }
    /* And an unrelated image is far away. */
    cordon_image_hashes_t other;
    REQUIRE(hash_vector("reg-test-input_pen-and-coaster.png", &other) == 0);
    CHECK_GT(cordon_hash_distance(&orig.pdq, &other.pdq), 64);
}

/* Fast mode (JPEG DCT scaling, hashed with the full-size geometry) stays
 * within a few bits of canonical on the photo vectors; the corpus drift
 * figures live in the benchmark. */
TEST(fast_mode_within_match_distance)
{
    static const char *names[] = {
        "bridge-mods_aaa-orig.jpg", "reg-test-input_exif-rotn_exif-rotn-1.jpg",
        "misc-images_modes_RGB.jpg", "pytx-letterboxed_sample-b.jpg",
        "reg-test-input_dih_bridge-2-rotate-90.jpg"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        size_t len;
        uint8_t *buf = tu_read_file(
            tu_path("%s/pdq/images/%s", tu_vectors(), names[i]), &len);
        REQUIRE(buf);
        cordon_decode_opts_t o;
        cordon_decode_opts_default(&o);
        cordon_image_hashes_t c, f;
        CHECK_EQ(cordon_hash_image(buf, len, &o, &c), CORDON_OK);
        o.fast = 1;
        CHECK_EQ(cordon_hash_image(buf, len, &o, &f), CORDON_OK);
        int d = cordon_hash_distance(&c.pdq, &f.pdq);
        CHECK_MSG(d <= 8, "%s: fast drift %d bits", names[i], d);
        /* Reported dimensions are the file's, not the scaled decode's. */
        CHECK_EQ(f.width, c.width);
        CHECK_EQ(f.height, c.height);
        free(buf);
    }
}

TEST(scaled_options_validated)
{
    uint8_t *px = random_plane(100, 50, 3, 1);
    cordon_plane_t pl = {px, 100, 50, 300, CORDON_PIX_RGB8};
    cordon_pdq_opts_t o = {400, 200, 4};
    size_t n = cordon_pdq_scratch_size_ex(100, 50, &o);
    CHECK_GT(n, 0);
    void *s = malloc(n);
    cordon_pdq_result_t r;
    CHECK_EQ(cordon_pdq_compute_ex(&pl, &o, s, n, &r), CORDON_OK);
    CHECK_GT(r.quality, 0);
    o.src_width = 404; /* ceil(404 / 4) = 101, not 100 */
    CHECK_EQ(cordon_pdq_scratch_size_ex(100, 50, &o), 0);
    CHECK_EQ(cordon_pdq_compute_ex(&pl, &o, s, n, &r), CORDON_EINVAL);
    o.src_width = 397; /* ceil(397 / 4) = 100: a partial last block */
    CHECK_EQ(cordon_pdq_compute_ex(&pl, &o, s, n, &r), CORDON_OK);
    o.scale = 9;
    CHECK_EQ(cordon_pdq_compute_ex(&pl, &o, s, n, &r), CORDON_EINVAL);
    free(s);
    free(px);
}

int main(int argc, char **argv)
{
    (void)argc;
    th_init(argv[0]);
    RUN(hex_round_trip);
    RUN(hex_rejects_malformed);
    RUN(distance);
    RUN(dct_table_matches_definition);
    RUN(simd_paths_identical);
    RUN(fma_division_is_exact);
    RUN(tiny_planes_hash_to_zero);
    RUN(uniform_plane_has_zero_quality);
    RUN(argument_errors);
    RUN(unaligned_scratch);
    RUN(dihedral_variants_match_transformed_files);
    RUN(bridge_mods_within_match_distance);
    RUN(fast_mode_within_match_distance);
    RUN(scaled_options_validated);
    return TH_END();
}
