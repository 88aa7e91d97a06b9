/*
 * Still-image decoding: formats detected from bytes, FFmpeg stills agreeing
 * with the PNG they were converted from, CMYK JPEG, 16-bit PNG, limits, and
 * every class of malformed input returning its error code.
 */
#include <zlib.h>

#include <turbojpeg.h>

#include "cordon.h"
#include "harness.h"
#include "util.h"

static uint8_t *vec(const char *name, size_t *len)
{
    return tu_read_file(tu_path("%s/pdq/images/%s", tu_vectors(), name), len);
}

static int hash_bytes(const uint8_t *b, size_t n, cordon_image_hashes_t *h)
{
    return cordon_hash_image(b, n, NULL, h);
}

static int hash_path(const char *path, cordon_image_hashes_t *h)
{
    size_t n;
    uint8_t *b = tu_read_file(path, &n);
    if (!b)
        return -1000;
    int rc = hash_bytes(b, n, h);
    free(b);
    return rc;
}

TEST(empty_input)
{
    cordon_image_hashes_t h;
    uint8_t b = 0;
    CHECK_EQ(hash_bytes(&b, 0, &h), CORDON_EEMPTY);
    CHECK_EQ(hash_bytes(NULL, 0, &h), CORDON_EEMPTY);
}

TEST(random_bytes)
{
    uint8_t b[4096];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof b; i++)
        b[i] = (uint8_t)((x = x * 1103515245u + 12345u) >> 16);
    cordon_image_hashes_t h;
    CHECK_EQ(hash_bytes(b, sizeof b, &h), CORDON_EFORMAT);
    /* Plain text is not an image either. */
    const char *txt = "this is not an image\n";
    CHECK_EQ(hash_bytes((const uint8_t *)txt, strlen(txt), &h),
             CORDON_EFORMAT);
}

TEST(truncated_jpeg)
{
    size_t n;
    uint8_t *b = vec("bridge-mods_aaa-orig.jpg", &n);
    REQUIRE(b);
    cordon_image_hashes_t h;
    CHECK_EQ(hash_bytes(b, n / 2, &h), CORDON_ETRUNC);
    CHECK_EQ(hash_bytes(b, n - 100, &h), CORDON_ETRUNC);
    CHECK_EQ(hash_bytes(b, 100, &h), CORDON_ETRUNC);
    CHECK_EQ(hash_bytes(b, 3, &h), CORDON_ETRUNC);
    free(b);
}

TEST(truncated_png)
{
    size_t n;
    uint8_t *b = vec("reg-test-input_pen-and-coaster.png", &n);
    REQUIRE(b);
    cordon_image_hashes_t h;
    CHECK_EQ(hash_bytes(b, n / 2, &h), CORDON_ETRUNC);
    CHECK_EQ(hash_bytes(b, 40, &h), CORDON_ETRUNC);
    CHECK_EQ(hash_bytes(b, 8, &h), CORDON_ETRUNC);
    free(b);
}

/* A PNG header (signature + IHDR with a valid CRC) declaring w x h, and
 * nothing else. */
static size_t png_header(uint8_t *out, uint32_t w, uint32_t h)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    memcpy(out, sig, 8);
    uint8_t chunk[4 + 4 + 13 + 4] = {0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    uint8_t *d = chunk + 8;
    d[0] = (uint8_t)(w >> 24), d[1] = (uint8_t)(w >> 16);
    d[2] = (uint8_t)(w >> 8), d[3] = (uint8_t)w;
    d[4] = (uint8_t)(h >> 24), d[5] = (uint8_t)(h >> 16);
    d[6] = (uint8_t)(h >> 8), d[7] = (uint8_t)h;
    d[8] = 8, d[9] = 2, d[10] = 0, d[11] = 0, d[12] = 0; /* 8-bit RGB */
    uint32_t crc = (uint32_t)crc32(0, chunk + 4, 17);
    chunk[21] = (uint8_t)(crc >> 24), chunk[22] = (uint8_t)(crc >> 16);
    chunk[23] = (uint8_t)(crc >> 8), chunk[24] = (uint8_t)crc;
    memcpy(out + 8, chunk, sizeof chunk);
    return 8 + sizeof chunk;
}

TEST(huge_declared_dimensions)
{
    uint8_t b[64];
    size_t n = png_header(b, 100000, 100000);
    cordon_image_hashes_t h;
    CHECK_EQ(hash_bytes(b, n, &h), CORDON_ELIMIT_PIXELS);
    /* With the pixel limit off, the hard side cap still refuses it. */
    cordon_decode_opts_t o;
    cordon_decode_opts_default(&o);
    o.max_pixels = 0;
    CHECK_EQ(cordon_hash_image(b, n, &o, &h), CORDON_EDIMENSIONS);
    /* A JPEG whose SOF declares 60000 x 60000. */
    size_t jn;
    uint8_t *j = vec("misc-images_small.jpg", &jn);
    REQUIRE(j);
    int patched = 0;
    for (size_t i = 2; i + 9 < jn; i++)
        if (j[i] == 0xFF && (j[i + 1] == 0xC0 || j[i + 1] == 0xC2)) {
            j[i + 5] = 0xEA, j[i + 6] = 0x60; /* height 60000 */
            j[i + 7] = 0xEA, j[i + 8] = 0x60; /* width 60000 */
            patched = 1;
            break;
        }
    REQUIRE(patched);
    CHECK_EQ(hash_bytes(j, jn, &h), CORDON_ELIMIT_PIXELS);
    free(j);
}

TEST(byte_and_pixel_limits)
{
    size_t n;
    uint8_t *b = vec("bridge-mods_aaa-orig.jpg", &n); /* 1600 x 1004 */
    REQUIRE(b);
    cordon_decode_opts_t o;
    cordon_decode_opts_default(&o);
    cordon_image_hashes_t h;
    o.max_bytes = n - 1;
    CHECK_EQ(cordon_hash_image(b, n, &o, &h), CORDON_ELIMIT_BYTES);
    o.max_bytes = n;
    CHECK_EQ(cordon_hash_image(b, n, &o, &h), CORDON_OK);
    o.max_pixels = 1600 * 1004 - 1;
    CHECK_EQ(cordon_hash_image(b, n, &o, &h), CORDON_ELIMIT_PIXELS);
    o.max_pixels = 1600 * 1004;
    CHECK_EQ(cordon_hash_image(b, n, &o, &h), CORDON_OK);
    free(b);
    /* The same limit holds for PNG. */
    cordon_decode_opts_default(&o);
    size_t pn;
    uint8_t *p = vec("reg-test-input_pen-and-coaster.png", &pn);
    REQUIRE(p);
    cordon_image_t img;
    REQUIRE(cordon_decode_image(p, pn, NULL, &img) == CORDON_OK);
    o.max_pixels = (uint64_t)img.width * img.height - 1;
    cordon_image_free(&img);
    CHECK_EQ(cordon_hash_image(p, pn, &o, &h), CORDON_ELIMIT_PIXELS);
    free(p);
}

/* Damaged bytes never crash: every truncation point and scattered byte
 * flips of a JPEG and a PNG give OK or an error code. */
TEST(damaged_inputs_never_crash)
{
    static const char *names[] = {"misc-images_small.jpg", "pytx-LA.png",
                                  "misc-images_wee.jpg"};
    uint32_t x = 777;
    for (size_t f = 0; f < 3; f++) {
        size_t n;
        uint8_t *b = vec(names[f], &n);
        REQUIRE(b);
        cordon_hasher_t *hs;
        REQUIRE(cordon_hasher_create(&hs) == CORDON_OK);
        cordon_image_hashes_t h;
        for (size_t cut = 0; cut < n; cut += 1 + n / 97) {
            int rc = cordon_hasher_image(hs, b, cut, NULL, &h);
            CHECK_MSG(rc == CORDON_ETRUNC || rc == CORDON_EEMPTY ||
                          (cut < 3 && rc == CORDON_EFORMAT),
                      "%s cut at %zu: %s", names[f], cut, cordon_errname(rc));
        }
        uint8_t *m = malloc(n);
        for (int round = 0; round < 60; round++) {
            memcpy(m, b, n);
            for (int k = 0; k < 1 + round % 8; k++) {
                x = x * 1664525u + 1013904223u;
                size_t at = 16 + (x >> 8) % (n - 16);
                m[at] ^= (uint8_t)(x | 1);
            }
            int rc = cordon_hasher_image(hs, m, n, NULL, &h);
            CHECK_MSG(rc <= 0 && rc > -100, "%s: %d", names[f], rc);
        }
        free(m);
        cordon_hasher_free(hs);
        free(b);
    }
}

/* Converts a vector with the ffmpeg CLI; returns the output path or NULL. */
static const char *convert(const char *src, const char *name,
                           const char *args)
{
    const char *out = tu_path("%s/%s", tu_tmpdir(), name);
    int rc = tu_run(NULL,
                    "ffmpeg -nostdin -hide_banner -loglevel error -y -i "
                    "'%s/pdq/images/%s' %s '%s' 2>&1",
                    tu_vectors(), src, args, out);
    return rc == 0 ? out : NULL;
}

TEST(ffmpeg_stills_agree_with_png)
{
    const char *src = "reg-test-input_pen-and-coaster.png";
    cordon_image_hashes_t ref, h;
    REQUIRE(hash_path(tu_path("%s/pdq/images/%s", tu_vectors(), src), &ref) ==
            CORDON_OK);
    /* Lossless RGB conversions give the same pixels, so the same hash. */
    static const struct {
        const char *name, *args;
        cordon_format_t fmt;
    } lossless[] = {
        {"x.bmp", "-pix_fmt bgr24", CORDON_FMT_BMP},
        {"x.tiff", "-pix_fmt rgb24", CORDON_FMT_TIFF},
        {"x.webp", "-c:v libwebp -lossless 1 -pix_fmt bgra",
         CORDON_FMT_WEBP},
    };
    for (size_t i = 0; i < sizeof lossless / sizeof lossless[0]; i++) {
        const char *p = convert(src, lossless[i].name, lossless[i].args);
        REQUIRE(p);
        size_t n;
        uint8_t *b = tu_read_file(p, &n);
        REQUIRE(b);
        CHECK_EQ(cordon_sniff_image(b, n), lossless[i].fmt);
        CHECK_EQ(hash_bytes(b, n, &h), CORDON_OK);
        CHECK_MSG(memcmp(&h.pdq, &ref.pdq, sizeof h.pdq) == 0,
                  "%s: distance %d", lossless[i].name,
                  cordon_hash_distance(&h.pdq, &ref.pdq));
        CHECK_EQ(h.quality, ref.quality);
        CHECK_EQ(h.width, ref.width);
        free(b);
    }
    /* GIF quantises to 256 colours and lossy WebP re-encodes: close. */
    const char *gif = convert(src, "x.gif", "");
    REQUIRE(gif);
    CHECK_EQ(hash_path(gif, &h), CORDON_OK);
    CHECK_LE(cordon_hash_distance(&h.pdq, &ref.pdq), 31);
    const char *webp = convert(src, "y.webp", "-c:v libwebp -quality 80");
    REQUIRE(webp);
    CHECK_EQ(hash_path(webp, &h), CORDON_OK);
    CHECK_LE(cordon_hash_distance(&h.pdq, &ref.pdq), 31);
}

TEST(animated_gif_uses_first_frame)
{
    /* Two different stills as a two-frame GIF: the hash is the first's. */
    const char *a = convert("reg-test-input_pen-and-coaster.png", "a.gif", "");
    const char *bgif =
        convert("bridge-mods_aaa-orig.jpg", "b.gif", "-vf scale=640:-1");
    REQUIRE(a && bgif);
    const char *anim = tu_path("%s/anim.gif", tu_tmpdir());
    REQUIRE(tu_run(NULL,
                   "ffmpeg -nostdin -hide_banner -loglevel error -y -i '%s' "
                   "-i '%s' -filter_complex "
                   "'[1:v]scale=%s[b];[0:v][b]concat=n=2:v=1[v]' -map '[v]' "
                   "'%s' 2>&1",
                   a, bgif, "1100:1111", anim) == 0 ||
            tu_run(NULL,
                   "ffmpeg -nostdin -hide_banner -loglevel error -y -i '%s' "
                   "-i '%s' -filter_complex "
                   "'[1:v][0:v]scale2ref[b][a];[a][b]concat=n=2:v=1[v]' "
                   "-map '[v]' '%s' 2>&1",
                   a, bgif, anim) == 0);
    cordon_image_hashes_t first, h, second;
    REQUIRE(hash_path(a, &first) == CORDON_OK);
    REQUIRE(hash_path(bgif, &second) == CORDON_OK);
    REQUIRE(hash_path(anim, &h) == CORDON_OK);
    CHECK_LE(cordon_hash_distance(&h.pdq, &first.pdq), 31);
    CHECK_GT(cordon_hash_distance(&h.pdq, &second.pdq), 31);
}

/* 16-bit samples keep their high byte: the decoded 8-bit pixels equal the
 * high bytes of the raw 16-bit samples, for RGB and for grey. */
TEST(sixteen_bit_png_keeps_high_byte)
{
    static const struct {
        const char *pix, *name;
        cordon_pixfmt_t want;
    } cases[] = {{"rgb48be", "x16.png", CORDON_PIX_RGB8},
                 {"gray16be", "g16.png", CORDON_PIX_GRAY8}};
    for (size_t c = 0; c < 2; c++) {
        const char *png = convert("reg-test-input_pen-and-coaster.png",
                                  cases[c].name,
                                  tu_path("-pix_fmt %s", cases[c].pix));
        REQUIRE(png);
        const char *raw_path = tu_path("%s/%s.raw", tu_tmpdir(), cases[c].pix);
        REQUIRE(tu_run(NULL,
                       "ffmpeg -nostdin -hide_banner -loglevel error -y -i "
                       "'%s' -f rawvideo -pix_fmt %s '%s' 2>&1",
                       png, cases[c].pix, raw_path) == 0);
        size_t rn, pn;
        uint8_t *raw = tu_read_file(raw_path, &rn);
        uint8_t *pb = tu_read_file(png, &pn);
        REQUIRE(raw && pb);
        CHECK_EQ(pb[24], 16); /* IHDR bit depth: really a 16-bit PNG */
        cordon_image_t img;
        REQUIRE(cordon_decode_image(pb, pn, NULL, &img) == CORDON_OK);
        CHECK_EQ(img.pixfmt, cases[c].want);
        size_t nsamples = (size_t)img.width * img.height * img.pixfmt;
        REQUIRE(rn == nsamples * 2);
        size_t bad = 0;
        for (size_t i = 0; i < nsamples; i++)
            bad += img.pixels[i] != raw[2 * i];
        CHECK_EQ(bad, 0);
        cordon_image_free(&img);
        free(pb);
        free(raw);
    }
}

TEST(cmyk_jpeg)
{
    /* Encode a known RGB image as an Adobe-style (inverted) CMYK JPEG with
     * TurboJPEG itself, then decode: the colours come back. */
    size_t n;
    uint8_t *b = vec("pytx-rgb.jpeg", &n);
    REQUIRE(b);
    cordon_image_t img;
    REQUIRE(cordon_decode_image(b, n, NULL, &img) == CORDON_OK);
    REQUIRE(img.pixfmt == CORDON_PIX_RGB8);
    int w = img.width, hgt = img.height;
    uint8_t *cmyk = malloc((size_t)w * hgt * 4);
    for (int i = 0; i < w * hgt; i++) {
        /* Inverted storage: 255 means no ink. C = 255-R -> stored R. */
        cmyk[4 * i + 0] = img.pixels[3 * i + 0];
        cmyk[4 * i + 1] = img.pixels[3 * i + 1];
        cmyk[4 * i + 2] = img.pixels[3 * i + 2];
        cmyk[4 * i + 3] = 255;
    }
    tjhandle tj = tjInitCompress();
    unsigned char *jpg = NULL;
    unsigned long jlen = 0;
    REQUIRE(tjCompress2(tj, cmyk, w, w * 4, hgt, TJPF_CMYK, &jpg, &jlen,
                        TJSAMP_444, 95, 0) == 0);
    cordon_image_hashes_t ref, h;
    REQUIRE(hash_bytes(b, n, &ref) == CORDON_OK);
    CHECK_EQ(hash_bytes(jpg, jlen, &h), CORDON_OK);
    CHECK_LE(cordon_hash_distance(&h.pdq, &ref.pdq), 10);
    cordon_image_t back;
    REQUIRE(cordon_decode_image(jpg, jlen, NULL, &back) == CORDON_OK);
    CHECK_EQ(back.pixfmt, CORDON_PIX_RGB8);
    long err = 0;
    for (int i = 0; i < w * hgt * 3; i++)
        err += labs((long)back.pixels[i] - img.pixels[i]);
    CHECK_LT(err / (w * hgt * 3), 4); /* mean absolute error, JPEG q95 */
    cordon_image_free(&back);
    tjFree(jpg);
    tjDestroy(tj);
    free(cmyk);
    cordon_image_free(&img);
    free(b);
}

/* A greyscale JPEG decodes to one channel, used as luma directly: its
 * hash equals the hash of the same grey plane. */
TEST(greyscale_jpeg_is_luma)
{
    size_t n;
    uint8_t *b = vec("bridge-mods_aaa-orig.jpg", &n);
    REQUIRE(b);
    cordon_image_t img;
    REQUIRE(cordon_decode_image(b, n, NULL, &img) == CORDON_OK);
    int w = img.width, h = img.height;
    uint8_t *grey = malloc((size_t)w * h);
    for (int i = 0; i < w * h; i++)
        grey[i] = img.pixels[3 * i + 1];
    tjhandle tj = tjInitCompress();
    unsigned char *jpg = NULL;
    unsigned long jlen = 0;
    REQUIRE(tjCompress2(tj, grey, w, w, h, TJPF_GRAY, &jpg, &jlen,
                        TJSAMP_GRAY, 90, 0) == 0);
    cordon_image_t g;
    REQUIRE(cordon_decode_image(jpg, jlen, NULL, &g) == CORDON_OK);
    CHECK_EQ(g.pixfmt, CORDON_PIX_GRAY8);
    CHECK_EQ(g.stride, (size_t)w);
    cordon_image_hashes_t hj;
    CHECK_EQ(hash_bytes(jpg, jlen, &hj), CORDON_OK);
    cordon_plane_t pl = cordon_image_plane(&g);
    size_t ss = cordon_pdq_scratch_size(w, h);
    void *scratch = malloc(ss);
    cordon_pdq_result_t r;
    CHECK_EQ(cordon_pdq_compute(&pl, scratch, ss, &r), CORDON_OK);
    CHECK(memcmp(&r.hash, &hj.pdq, sizeof r.hash) == 0);
    free(scratch);
    cordon_image_free(&g);
    tjFree(jpg);
    tjDestroy(tj);
    free(grey);
    cordon_image_free(&img);
    free(b);
}

TEST(decoder_reuse_matches_fresh)
{
    static const char *names[] = {
        "reg-test-input_exif-rotn_exif-rotn-1.jpg", "misc-images_small.jpg",
        "misc-images_modes_P.png", "bridge-mods_aaa-orig.jpg",
        "misc-images_modes_1.png", "misc-images_wee.jpg"};
    cordon_hasher_t *hs;
    REQUIRE(cordon_hasher_create(&hs) == CORDON_OK);
    for (int round = 0; round < 2; round++)
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            size_t n;
            uint8_t *b = vec(names[i], &n);
            REQUIRE(b);
            cordon_image_hashes_t a, c;
            CHECK_EQ(cordon_hash_image(b, n, NULL, &a), CORDON_OK);
            CHECK_EQ(cordon_hasher_image(hs, b, n, NULL, &c), CORDON_OK);
            CHECK(memcmp(&a, &c, sizeof a) == 0);
            free(b);
        }
    cordon_hasher_free(hs);
}

TEST(sniffing_ignores_names)
{
    size_t n;
    uint8_t *b = vec("pytx-LA.png", &n);
    REQUIRE(b);
    CHECK_EQ(cordon_sniff_image(b, n), CORDON_FMT_PNG);
    CHECK_STREQ(cordon_format_name(CORDON_FMT_PNG), "png");
    free(b);
    b = vec("pytx-rgb.jpeg", &n);
    CHECK_EQ(cordon_sniff_image(b, n), CORDON_FMT_JPEG);
    free(b);
    CHECK_EQ(cordon_sniff_image((const uint8_t *)"GIF89a", 6), CORDON_FMT_GIF);
    CHECK_EQ(cordon_sniff_image((const uint8_t *)"RIFF\0\0\0\0WAVE", 12),
             CORDON_FMT_UNKNOWN);
}

TEST(digests)
{
    uint8_t md5[16], sha[32];
    char hex[65];
    CHECK_EQ(cordon_digest((const uint8_t *)"abc", 3, md5, sha), CORDON_OK);
    cordon_hex_encode(md5, 16, hex);
    CHECK_STREQ(hex, "900150983cd24fb0d6963f7d28e17f72");
    cordon_hex_encode(sha, 32, hex);
    CHECK_STREQ(
        hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK_EQ(cordon_digest(NULL, 0, md5, NULL), CORDON_OK);
    cordon_hex_encode(md5, 16, hex);
    CHECK_STREQ(hex, "d41d8cd98f00b204e9800998ecf8427e");
    uint8_t back[16];
    CHECK_EQ(cordon_hex_decode(hex, 32, back, 16), CORDON_OK);
    CHECK(memcmp(back, md5, 16) == 0);
    CHECK_EQ(cordon_hex_decode(hex, 31, back, 16), CORDON_EHEX);
    hex[5] = 'x';
    CHECK_EQ(cordon_hex_decode(hex, 32, back, 16), CORDON_EHEX);
}

int main(int argc, char **argv)
{
    (void)argc;
    th_init(argv[0]);
    RUN(empty_input);
    RUN(random_bytes);
    RUN(truncated_jpeg);
    RUN(truncated_png);
    RUN(huge_declared_dimensions);
    RUN(byte_and_pixel_limits);
    RUN(damaged_inputs_never_crash);
    RUN(ffmpeg_stills_agree_with_png);
    RUN(animated_gif_uses_first_frame);
    RUN(sixteen_bit_png_keeps_high_byte);
    RUN(cmyk_jpeg);
    RUN(greyscale_jpeg_is_luma);
    RUN(decoder_reuse_matches_fresh);
    RUN(sniffing_ignores_names);
    RUN(digests);
    return TH_END();
}
