/*
 * vPDQ: the reference vectors (tests/vectors/vpdq, every frame hashed) at
 * the match level, sampling and frame numbering with frame skipping, file
 * versus memory input, damaged and hostile inputs, limits, matching rules,
 * the compact form and the text and JSON formats.
 */
#include <math.h>

#include <libavutil/log.h>

#include "cordon.h"
#include "cordon_video.h"
#include "harness.h"
#include "util.h"
#include "video_internal.h"

static const char *const names[] = {
    "pattern-sd-grey-bar", "pattern-sd-with-small-logo-bar", "chair-19-sd-bar",
    "doorknob-hd-no-bar",  "test-padded-dimensions",
};
#define NVID (sizeof names / sizeof names[0])
enum { PAT, PAT_LOGO, CHAIR, DOOR, PADDED };

/* Every-frame hashes of each vector, computed once. */
static cordon_video_hashes_t every[NVID];
static int every_rc[NVID];

static const char *video_path(int i)
{
    return tu_path("%s/vpdq/videos/%s.mp4", tu_vectors(), names[i]);
}

static cordon_video_opts_t opts_every(void)
{
    cordon_video_opts_t o;
    cordon_video_opts_default(&o);
    o.seconds_per_hash = 0;
    return o;
}

static void hash_all_once(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    cordon_video_opts_t o = opts_every();
    for (size_t i = 0; i < NVID; i++)
        every_rc[i] = cordon_video_hash_file(video_path((int)i), &o, &every[i]);
}

static char *read_text(const char *path, size_t *len)
{
    char *s = (char *)tu_read_file(path, len);
    if (s) {
        s = realloc(s, *len + 1);
        s[*len] = 0;
    }
    return s;
}

static int same_frames(const cordon_vpdq_frame_t *a, size_t na,
                       const cordon_vpdq_frame_t *b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++)
        if (a[i].frame_number != b[i].frame_number ||
            a[i].quality != b[i].quality ||
            cordon_hash_distance(&a[i].hash, &b[i].hash) != 0 ||
            a[i].timestamp != b[i].timestamp)
            return 0;
    return 1;
}

/* ---- Reference vectors ------------------------------------------------- */

TEST(vectors_match_reference_both_ways)
{
    hash_all_once();
    for (size_t v = 0; v < NVID; v++) {
        CHECK_EQ(every_rc[v], CORDON_OK);
        if (every_rc[v])
            continue;
        size_t len, ne, bad_line;
        char *txt = read_text(
            tu_path("%s/vpdq/expected/%s.txt", tu_vectors(), names[v]), &len);
        REQUIRE(txt);
        cordon_vpdq_frame_t *ex = NULL;
        CHECK_EQ(cordon_vpdq_parse_text(txt, len, &ex, &ne, &bad_line),
                 CORDON_OK);
        const cordon_video_hashes_t *h = &every[v];
        /* One hashed frame per reference line, same numbers and times. */
        CHECK_EQ(h->count, ne);
        CHECK_EQ(h->frame_count, ne);
        CHECK_EQ(h->warnings, 0);
        CHECK_EQ(h->frame_interval, 1);
        size_t exact = 0, ts_same = 0, qcut_diff = 0;
        for (size_t i = 0; i < h->count && i < ne; i++) {
            CHECK_EQ(h->frames[i].frame_number, ex[i].frame_number);
            exact += cordon_hash_distance(&h->frames[i].hash, &ex[i].hash) == 0;
            char a[CORDON_VPDQ_LINE_MAX], b[CORDON_VPDQ_LINE_MAX];
            cordon_vpdq_format_line(&h->frames[i], a, sizeof a);
            cordon_vpdq_format_line(&ex[i], b, sizeof b);
            ts_same += strcmp(strrchr(a, ','), strrchr(b, ',')) == 0;
            qcut_diff += (h->frames[i].quality >= 50) != (ex[i].quality >= 50);
        }
        CHECK_EQ(ts_same, ne);
        cordon_vpdq_match_t m;
        CHECK_EQ(cordon_vpdq_compare(h->frames, h->count, ex, ne, NULL, &m),
                 CORDON_OK);
        CHECK_MSG(m.query_percent == 100.0 && m.target_percent == 100.0,
                  "%s: %.2f%% / %.2f%%", names[v], m.query_percent,
                  m.target_percent);
        CHECK(m.is_match);
        CHECK_GT(m.query_count, 0);
        printf("# %-32s %4zu frames  ours->ref %6.2f%% (%zu/%zu)  "
               "ref->ours %6.2f%% (%zu/%zu)  bit-exact %zu/%zu  "
               "quality-50 cut differs on %zu\n",
               names[v], ne, m.query_percent, m.query_matched, m.query_count,
               m.target_percent, m.target_matched, m.target_count, exact, ne,
               qcut_diff);
        free(ex);
        free(txt);
    }
}

TEST(distinct_scenes_do_not_match)
{
    hash_all_once();
    const int scenes[] = {PAT, CHAIR, DOOR, PADDED};
    for (size_t i = 0; i < 4; i++) {
        for (size_t j = 0; j < 4; j++) {
            if (i == j)
                continue;
            const cordon_video_hashes_t *a = &every[scenes[i]],
                                        *b = &every[scenes[j]];
            REQUIRE(a->count && b->count);
            cordon_vpdq_match_t m;
            CHECK_EQ(cordon_vpdq_compare(a->frames, a->count, b->frames,
                                         b->count, NULL, &m),
                     CORDON_OK);
            CHECK_MSG(m.query_percent < 80.0 && !m.is_match, "%s vs %s: %.1f%%",
                      names[scenes[i]], names[scenes[j]], m.query_percent);
            printf("# %s vs %s: %.1f%%\n", names[scenes[i]], names[scenes[j]],
                   m.query_percent);
        }
    }
    /* The same pattern clip with a small logo added is the same video. */
    cordon_vpdq_match_t m;
    CHECK_EQ(cordon_vpdq_compare(every[PAT_LOGO].frames, every[PAT_LOGO].count,
                                 every[PAT].frames, every[PAT].count, NULL, &m),
             CORDON_OK);
    printf("# pattern+logo vs pattern: %.1f%% / %.1f%%\n", m.query_percent,
           m.target_percent);
    CHECK(m.is_match);
}

/* ---- Sampling and input forms ------------------------------------------ */

TEST(sampling_one_per_second_uses_the_formula)
{
    hash_all_once();
    const cordon_video_hashes_t *all = &every[CHAIR];
    REQUIRE(all->count == 564);
    cordon_video_opts_t o;
    cordon_video_opts_default(&o);
    cordon_video_hashes_t h;
    REQUIRE(cordon_video_hash_file(video_path(CHAIR), &o, &h) == CORDON_OK);
    CHECK(h.fps == 30.0);
    CHECK_EQ(h.frame_interval, 30); /* (int)(1 s * 30 fps) */
    CHECK_EQ(h.frame_count, 564);
    CHECK_EQ(h.count, 19); /* 0, 30, ..., 540 */
    for (size_t i = 0; i < h.count; i++) {
        CHECK_EQ(h.frames[i].frame_number, (int32_t)(30 * i));
        CHECK(h.frames[i].timestamp == (double)i);
        /* Skipping frames must not change any hash or number. */
        const cordon_vpdq_frame_t *f = &all->frames[30 * i];
        CHECK_EQ(f->frame_number, h.frames[i].frame_number);
        CHECK_EQ(cordon_hash_distance(&f->hash, &h.frames[i].hash), 0);
        CHECK_EQ(f->quality, h.frames[i].quality);
    }
    /* Unsampled non-reference frames were not decoded at all. */
    CHECK_LT(h.frames_decoded, h.frame_count);
    printf("# 1 hash/s: decoded %llu of %llu frames\n",
           (unsigned long long)h.frames_decoded,
           (unsigned long long)h.frame_count);

    /* Without skipping, single-threaded, and at 0.5 s: the same frames. */
    cordon_video_hashes_t h2;
    o.skip_unsampled = 0;
    o.threads = 1;
    REQUIRE(cordon_video_hash_file(video_path(CHAIR), &o, &h2) == CORDON_OK);
    CHECK_EQ(h2.frames_decoded, 564);
    CHECK(same_frames(h.frames, h.count, h2.frames, h2.count));
    cordon_video_hashes_free(&h2);
    o.skip_unsampled = 1;
    o.seconds_per_hash = 0.5;
    REQUIRE(cordon_video_hash_file(video_path(CHAIR), &o, &h2) == CORDON_OK);
    CHECK_EQ(h2.frame_interval, 15);
    CHECK_EQ(h2.count, 38);
    for (size_t i = 0; i < h2.count; i++) {
        const cordon_vpdq_frame_t *f = &all->frames[15 * i];
        CHECK_EQ(h2.frames[i].frame_number, (int32_t)(15 * i));
        CHECK_EQ(cordon_hash_distance(&f->hash, &h2.frames[i].hash), 0);
    }
    cordon_video_hashes_free(&h2);
    /* Every 1.5 s and 4 s against keyframes every 2 s: whole stretches up
     * to a keyframe are left out of decoding (not even sent to the
     * decoder), and the numbers and hashes must not move. */
    static const double sphs[] = {1.5, 4.0};
    for (size_t s = 0; s < 2; s++) {
        o.seconds_per_hash = sphs[s];
        o.threads = s ? 2 : 1;
        REQUIRE(cordon_video_hash_file(video_path(CHAIR), &o, &h2) ==
                CORDON_OK);
        int step = (int)(sphs[s] * 30);
        CHECK_EQ(h2.frame_interval, step);
        CHECK_EQ(h2.frame_count, 564);
        CHECK_EQ(h2.count, (size_t)((563 / step) + 1));
        for (size_t i = 0; i < h2.count; i++) {
            const cordon_vpdq_frame_t *f = &all->frames[(size_t)step * i];
            CHECK_EQ(h2.frames[i].frame_number, (int32_t)(step * i));
            CHECK_EQ(cordon_hash_distance(&f->hash, &h2.frames[i].hash), 0);
        }
        CHECK_LT(h2.frames_decoded, 564);
        printf("# every %.1f s: decoded %llu of 564 frames\n", sphs[s],
               (unsigned long long)h2.frames_decoded);
        cordon_video_hashes_free(&h2);
    }
    cordon_video_hashes_free(&h);
}

TEST(buffer_input_equals_file_input)
{
    hash_all_once();
    const int vids[] = {PADDED};
    for (size_t k = 0; k < 1; k++) {
        size_t len;
        uint8_t *buf = tu_read_file(video_path(vids[k]), &len);
        REQUIRE(buf);
        cordon_video_opts_t o = opts_every();
        cordon_video_hashes_t h;
        CHECK_EQ(cordon_video_hash_buffer(buf, len, &o, &h), CORDON_OK);
        const cordon_video_hashes_t *f = &every[vids[k]];
        CHECK(same_frames(h.frames, h.count, f->frames, f->count));
        CHECK_EQ(h.width, f->width);
        CHECK_EQ(h.height, f->height);
        CHECK_STREQ(h.codec, "h264");
        cordon_video_hashes_free(&h);
        free(buf);
    }
    /* test-padded-dimensions keeps its index (moov) after the data, so the
     * memory reader must seek; it is 1080x1080 coded as 1088 rows. */
    CHECK_EQ(every[PADDED].width, 1080);
    CHECK_EQ(every[PADDED].height, 1080);
}

/* Every thread count and the dihedral option give the same frames; the
 * dihedral arrays start with the frame's own hash and agree across thread
 * counts. */
TEST(threads_and_dihedral_do_not_change_hashes)
{
    hash_all_once();
    const int vids[] = {CHAIR, PADDED};
    for (size_t k = 0; k < sizeof vids / sizeof vids[0]; k++) {
        const cordon_video_hashes_t *ref = &every[vids[k]];
        REQUIRE(every_rc[vids[k]] == CORDON_OK);
        CHECK(ref->dihedral == NULL);
        cordon_video_hashes_t h[3];
        const int threads[] = {1, 2, 3};
        for (int t = 0; t < 3; t++) {
            cordon_video_opts_t o = opts_every();
            o.threads = threads[t];
            o.dihedral = 1;
            REQUIRE(cordon_video_hash_file(video_path(vids[k]), &o, &h[t]) ==
                    CORDON_OK);
            CHECK(
                same_frames(h[t].frames, h[t].count, ref->frames, ref->count));
            REQUIRE(h[t].dihedral != NULL);
            size_t differ = 0;
            for (size_t i = 0; i < h[t].count; i++) {
                CHECK_EQ(cordon_hash_distance(&h[t].dihedral[i][0],
                                              &h[t].frames[i].hash),
                         0);
                /* A rotation of a real frame is a different hash. */
                differ += cordon_hash_distance(&h[t].dihedral[i][1],
                                               &h[t].frames[i].hash) > 31;
                if (t > 0)
                    CHECK(memcmp(h[t].dihedral[i], h[0].dihedral[i],
                                 sizeof h[0].dihedral[i]) == 0);
            }
            CHECK_EQ(differ, h[t].count);
        }
        for (int t = 0; t < 3; t++)
            cordon_video_hashes_free(&h[t]);
    }
}

/* The stretches between IDR frames, decoded side by side by separate
 * decoders, give exactly what one decoder gives: for every frame, for
 * sampling with and without frame skipping, with more workers than
 * stretches, and from memory (the IDR check reads the index's samples). */
TEST(stretches_side_by_side_equal_one_decoder)
{
    static const double sphs[] = {0, 1, 1.5, 4};
    const int vids[] = {CHAIR, DOOR};
    size_t len;
    uint8_t *buf = tu_read_file(video_path(CHAIR), &len);
    REQUIRE(buf);
    for (size_t k = 0; k < 2; k++)
        for (size_t i = 0; i < sizeof sphs / sizeof sphs[0]; i++)
            for (int skip = 0; skip < 2; skip++) {
                cordon_video_opts_t o;
                cordon_video_opts_default(&o);
                o.seconds_per_hash = sphs[i];
                o.skip_unsampled = skip;
                o.threads = 1;
                cordon_video_hashes_t one, two, three, mem;
                REQUIRE(cordon_video_hash_file(video_path(vids[k]), &o,
                                               &one) == CORDON_OK);
                CHECK_EQ(one.segments, 0);
                o.threads = 2;
                REQUIRE(cordon_video_hash_file(video_path(vids[k]), &o,
                                               &two) == CORDON_OK);
                o.threads = 3;
                REQUIRE(cordon_video_hash_file(video_path(vids[k]), &o,
                                               &three) == CORDON_OK);
                /* chair: an IDR frame every 2 s; doorknob: two stretches
                 * of 2 s. At 4 s with skipping, chair's odd stretches and
                 * doorknob's second hold no sampled frame and are not
                 * decoded, which leaves doorknob nothing to split. */
                unsigned want = vids[k] == CHAIR             ? 10u
                                : skip && sphs[i] == 4 ? 0u
                                                             : 2u;
                CHECK_EQ(two.segments, want);
                CHECK_EQ(three.segments, two.segments);
                CHECK_EQ(two.warnings, 0);
                CHECK(same_frames(one.frames, one.count, two.frames,
                                  two.count));
                CHECK(same_frames(one.frames, one.count, three.frames,
                                  three.count));
                CHECK_EQ(two.frame_count, one.frame_count);
                CHECK_EQ(three.frame_count, one.frame_count);
                if (skip && sphs[i] > 0)
                    CHECK_LT(two.frames_decoded, two.frame_count);
                else
                    CHECK_EQ(two.frames_decoded, two.frame_count);
                if (vids[k] == CHAIR) {
                    o.threads = 2;
                    REQUIRE(cordon_video_hash_buffer(buf, len, &o, &mem) ==
                            CORDON_OK);
                    CHECK_EQ(mem.segments, 10u);
                    CHECK(same_frames(one.frames, one.count, mem.frames,
                                      mem.count));
                    cordon_video_hashes_free(&mem);
                }
                cordon_video_hashes_free(&one);
                cordon_video_hashes_free(&two);
                cordon_video_hashes_free(&three);
            }
    free(buf);
}

/* ---- Damaged and hostile input ----------------------------------------- */

TEST(truncated_stream_gives_prefix_and_warning)
{
    hash_all_once();
    size_t len;
    uint8_t *buf = tu_read_file(video_path(PAT), &len);
    REQUIRE(buf);
    cordon_video_opts_t o = opts_every();
    cordon_video_hashes_t h;
    CHECK_EQ(cordon_video_hash_buffer(buf, len / 2, &o, &h), CORDON_OK);
    CHECK(h.warnings & CORDON_VIDEO_WARN_TRUNCATED);
    CHECK_GT(h.count, 10);
    CHECK_LT(h.count, every[PAT].count);
    /* What decoded before the cut is exactly what a full file gives, except
     * the frames touching the damage. */
    size_t same = 0;
    for (size_t i = 0; i < h.count && i < every[PAT].count; i++)
        same += h.frames[i].frame_number == every[PAT].frames[i].frame_number &&
                cordon_hash_distance(&h.frames[i].hash,
                                     &every[PAT].frames[i].hash) == 0;
    CHECK_GE(same + 8, h.count);
    cordon_video_hashes_free(&h);

    /* With sampling and skipping the damaged stream is redone in full so
     * frame numbers stay exact. */
    cordon_video_opts_default(&o);
    CHECK_EQ(cordon_video_hash_buffer(buf, len / 2, &o, &h), CORDON_OK);
    CHECK(h.warnings & CORDON_VIDEO_WARN_TRUNCATED);
    for (size_t i = 0; i < h.count; i++)
        CHECK_EQ(h.frames[i].frame_number, (int32_t)(30 * i));
    cordon_video_hashes_free(&h);

    /* Cut inside the header: a recognised but unreadable container. */
    CHECK_EQ(cordon_video_hash_buffer(buf, 3000, &o, &h), CORDON_ECORRUPT);
    CHECK_EQ(h.count, 0);
    CHECK(h.frames == NULL);
    free(buf);

    /* An MP4 whose index sits at the end, cut before it. */
    buf = tu_read_file(video_path(PADDED), &len);
    REQUIRE(buf);
    CHECK_EQ(cordon_video_hash_buffer(buf, len - 3000, &o, &h),
             CORDON_ECORRUPT);
    free(buf);
}

TEST(corrupt_packets_give_hashes_and_warning)
{
    size_t len;
    uint8_t *buf = tu_read_file(video_path(PAT), &len);
    REQUIRE(buf);
    /* Scribble over slices in the middle of the media data. */
    uint32_t x = 12345;
    for (size_t k = len / 3; k < 2 * len / 3; k += 2000)
        for (size_t i = 0; i < 64; i++) {
            x = x * 1664525u + 1013904223u;
            buf[k + i] = (uint8_t)(x >> 24);
        }
    cordon_video_opts_t o;
    cordon_video_opts_default(&o);
    cordon_video_hashes_t h;
    CHECK_EQ(cordon_video_hash_buffer(buf, len, &o, &h), CORDON_OK);
    CHECK(h.warnings & CORDON_VIDEO_WARN_CORRUPT);
    CHECK_GE(h.count, 5);
    for (size_t i = 0; i < h.count; i++)
        CHECK_EQ(h.frames[i].frame_number % 30, 0);
    cordon_video_hashes_free(&h);
    /* Damage inside a stretch decoded side by side sends the input back
     * to one decoder: one thread and two give the same frames. (Only with
     * every frame hashed, where that decoder runs on one thread: FFmpeg's
     * frame threads conceal damage differently from a single thread.) */
    {
        cordon_video_hashes_t t[2];
        for (int k = 0; k < 2; k++) {
            cordon_video_opts_default(&o);
            o.seconds_per_hash = 0;
            o.threads = k + 1;
            REQUIRE(cordon_video_hash_buffer(buf, len, &o, &t[k]) ==
                    CORDON_OK);
            CHECK(t[k].warnings & CORDON_VIDEO_WARN_CORRUPT);
        }
        CHECK(same_frames(t[0].frames, t[0].count, t[1].frames, t[1].count));
        CHECK_EQ(t[0].frame_count, t[1].frame_count);
        cordon_video_hashes_free(&t[0]);
        cordon_video_hashes_free(&t[1]);
    }
    free(buf);
}

TEST(non_video_inputs_are_clear_errors)
{
    const char *dir = tu_tmpdir();
    cordon_video_hashes_t h;
    cordon_video_opts_t o;
    cordon_video_opts_default(&o);

    const char *empty = tu_path("%s/empty.mp4", dir);
    REQUIRE(tu_write_file(empty, "", 0) == 0);
    CHECK_EQ(cordon_video_hash_file(empty, &o, &h), CORDON_EEMPTY);
    CHECK_EQ(cordon_video_hash_buffer((const uint8_t *)"", 0, &o, &h),
             CORDON_EEMPTY);

    const char *text = tu_path("%s/notes.mp4", dir);
    const char msg[] = "This is a text file with a video extension.\n";
    REQUIRE(tu_write_file(text, msg, sizeof msg - 1) == 0);
    CHECK_EQ(cordon_video_hash_file(text, &o, &h), CORDON_EFORMAT);

    /* Pseudo-random bytes: whatever FFmpeg guesses, never a result. */
    uint8_t *rnd = malloc(200000);
    REQUIRE(rnd);
    uint32_t x = 99;
    for (size_t i = 0; i < 200000; i++) {
        x = x * 1664525u + 1013904223u;
        rnd[i] = (uint8_t)(x >> 24);
    }
    const char *rpath = tu_path("%s/random.mp4", dir);
    REQUIRE(tu_write_file(rpath, rnd, 200000) == 0);
    int rc = cordon_video_hash_file(rpath, &o, &h);
    CHECK_MSG(rc == CORDON_EFORMAT || rc == CORDON_ECORRUPT ||
                  rc == CORDON_EDECODE || rc == CORDON_ENOVIDEO,
              "random bytes gave %s", cordon_errname(rc));
    CHECK_EQ(cordon_video_hash_buffer(rnd, 200000, &o, &h), rc);
    CHECK_EQ(h.count, 0);
    free(rnd);

    CHECK_EQ(cordon_video_hash_file(tu_path("%s/missing.mp4", dir), &o, &h),
             CORDON_EIO);
    CHECK_EQ(cordon_video_hash_file(dir, &o, &h), CORDON_EIO);

    /* Audio only (made here with the ffmpeg CLI, a declared dependency). */
    const char *audio = tu_path("%s/tone.m4a", dir);
    REQUIRE(tu_run(NULL,
                   "ffmpeg -nostdin -v error -y -f lavfi -i sine=d=1 "
                   "-c:a aac '%s'",
                   audio) == 0);
    CHECK_EQ(cordon_video_hash_file(audio, &o, &h), CORDON_ENOVIDEO);

    /* A still image is not a video either. */
    const char *jpg =
        tu_path("%s/pdq/images/misc-images_small.jpg", tu_vectors());
    rc = cordon_video_hash_file(jpg, &o, &h);
    CHECK(rc != CORDON_OK || h.count == 1);
    cordon_video_hashes_free(&h);

    /* Playlists that name other files are refused, not followed (FFmpeg's
     * own tools would open the video they point at). */
    char *real = realpath(video_path(DOOR), NULL);
    REQUIRE(real);
    char list[1024];
    int k = snprintf(list, sizeof list,
                     "#EXTM3U\n#EXT-X-TARGETDURATION:5\n#EXTINF:4.0,\n"
                     "file:%s\n#EXT-X-ENDLIST\n",
                     real);
    CHECK_EQ(cordon_video_hash_buffer((const uint8_t *)list, (size_t)k, &o, &h),
             CORDON_EPERM);
    k = snprintf(list, sizeof list, "ffconcat version 1.0\nfile 'file:%s'\n",
                 real);
    CHECK_EQ(cordon_video_hash_buffer((const uint8_t *)list, (size_t)k, &o, &h),
             CORDON_EPERM);
    free(real);

    CHECK_EQ(cordon_video_hash_file(NULL, &o, &h), CORDON_EINVAL);
    CHECK_EQ(cordon_video_hash_buffer(NULL, 5, &o, &h), CORDON_EINVAL);
    o.seconds_per_hash = -1;
    CHECK_EQ(cordon_video_hash_file(video_path(PADDED), &o, &h), CORDON_EINVAL);
}

TEST(limits_are_enforced)
{
    cordon_video_opts_t o;
    cordon_video_hashes_t h;
    const char *pat = video_path(PAT); /* 480x720, 206 frames, 6.87 s */
    size_t len;
    uint8_t *buf = tu_read_file(pat, &len);
    REQUIRE(buf);

    cordon_video_opts_default(&o);
    o.max_bytes = len - 1;
    CHECK_EQ(cordon_video_hash_file(pat, &o, &h), CORDON_ELIMIT_BYTES);
    CHECK_EQ(cordon_video_hash_buffer(buf, len, &o, &h), CORDON_ELIMIT_BYTES);
    o.max_bytes = len;
    CHECK_EQ(cordon_video_hash_buffer(buf, len, &o, &h), CORDON_OK);
    cordon_video_hashes_free(&h);

    cordon_video_opts_default(&o);
    o.max_frames = 205;
    CHECK_EQ(cordon_video_hash_file(pat, &o, &h), CORDON_ELIMIT_FRAMES);
    o.max_frames = 206;
    CHECK_EQ(cordon_video_hash_file(pat, &o, &h), CORDON_OK);
    cordon_video_hashes_free(&h);

    cordon_video_opts_default(&o);
    o.max_duration = 5.0;
    CHECK_EQ(cordon_video_hash_file(pat, &o, &h), CORDON_ELIMIT_DURATION);

    cordon_video_opts_default(&o);
    o.max_height = 719;
    CHECK_EQ(cordon_video_hash_file(pat, &o, &h), CORDON_ELIMIT_PIXELS);
    cordon_video_opts_default(&o);
    o.max_width = 479;
    CHECK_EQ(cordon_video_hash_file(pat, &o, &h), CORDON_ELIMIT_PIXELS);
    cordon_video_opts_default(&o);
    o.max_pixels = 480 * 720 - 1;
    CHECK_EQ(cordon_video_hash_file(pat, &o, &h), CORDON_ELIMIT_PIXELS);
    o.max_pixels = 480 * 720;
    o.max_width = 480;
    o.max_height = 720;
    CHECK_EQ(cordon_video_hash_file(pat, &o, &h), CORDON_OK);
    cordon_video_hashes_free(&h);

    /* Matroska declares no frame count: the limit bites while decoding. */
    const char *mkv = tu_path("%s/pattern.mkv", tu_tmpdir());
    REQUIRE(tu_run(NULL, "ffmpeg -nostdin -v error -y -i '%s' -c copy '%s'",
                   pat, mkv) == 0);
    cordon_video_opts_default(&o);
    CHECK_EQ(cordon_video_hash_file(mkv, &o, &h), CORDON_OK);
    CHECK_EQ(h.frame_count, 206);
    cordon_video_hashes_free(&h);
    o.max_frames = 100;
    CHECK_EQ(cordon_video_hash_file(mkv, &o, &h), CORDON_ELIMIT_FRAMES);
    CHECK(h.frames == NULL);
    free(buf);
}

TEST(sniff_routes_videos_and_images)
{
    size_t len;
    uint8_t *b = tu_read_file(video_path(PAT), &len);
    REQUIRE(b);
    CHECK_EQ(cordon_video_sniff(b, len), 1);
    CHECK_EQ(cordon_video_sniff(b, 4096), 1);
    free(b);
    b = tu_read_file(
        tu_path("%s/pdq/images/misc-images_small.jpg", tu_vectors()), &len);
    REQUIRE(b);
    CHECK_EQ(cordon_video_sniff(b, len), 0);
    free(b);
    b = tu_read_file(tu_path("%s/pdq/images/misc-images_c.png", tu_vectors()),
                     &len);
    REQUIRE(b);
    CHECK_EQ(cordon_video_sniff(b, len), 0);
    free(b);
    const char t[] = "just some text, not a video at all\n";
    CHECK_EQ(cordon_video_sniff((const uint8_t *)t, sizeof t - 1), 0);
    CHECK_EQ(cordon_video_sniff((const uint8_t *)t, 0), 0);
}

/* ---- Matching rules ---------------------------------------------------- */

static cordon_vpdq_frame_t mk(uint64_t seed, int flip, int quality)
{
    cordon_vpdq_frame_t f;
    memset(&f, 0, sizeof f);
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    for (int i = 0; i < 4; i++) {
        x ^= x >> 33;
        x *= 0xff51afd7ed558ccdull;
        x ^= x >> 29;
        f.hash.w[i] = x;
    }
    for (int b = 0; b < flip; b++) /* flip bits 0..flip-1 */
        f.hash.w[b >> 6] ^= 1ull << (b & 63);
    f.quality = quality;
    return f;
}

TEST(compare_rules_distance_quality_dedup)
{
    cordon_vpdq_frame_t q[6], t[3];
    q[0] = mk(1, 0, 100);  /* identical to t[0] */
    q[1] = mk(2, 31, 100); /* distance 31 from t[1]: matches (inclusive) */
    q[2] = mk(3, 32, 100); /* distance 32 from t[2]: no match */
    q[3] = mk(1, 0, 100);  /* duplicate of q[0]: counted once */
    q[4] = mk(4, 0, 49);   /* below quality 50: ignored */
    q[5] = mk(1, 0, 100);
    t[0] = mk(1, 0, 100);
    t[1] = mk(2, 0, 100);
    t[2] = mk(3, 0, 100);
    cordon_vpdq_match_t m;
    CHECK_EQ(cordon_vpdq_compare(q, 6, t, 3, NULL, &m), CORDON_OK);
    CHECK_EQ(m.query_count, 3);
    CHECK_EQ(m.query_matched, 2);
    CHECK_EQ(m.target_count, 3);
    CHECK_EQ(m.target_matched, 2);
    CHECK(fabs(m.query_percent - 200.0 / 3) < 1e-9);
    CHECK(!m.is_match);

    cordon_vpdq_match_opts_t mo;
    cordon_vpdq_match_opts_default(&mo);
    CHECK_EQ(mo.quality_min, 50);
    CHECK_EQ(mo.distance_max, 31);
    mo.distance_max = 32;
    CHECK_EQ(cordon_vpdq_compare(q, 6, t, 3, &mo, &m), CORDON_OK);
    CHECK_EQ(m.query_matched, 3);
    CHECK(m.is_match);
    mo.distance_max = 31;
    mo.quality_min = 40; /* q[4] now counts and matches nothing */
    CHECK_EQ(cordon_vpdq_compare(q, 6, t, 3, &mo, &m), CORDON_OK);
    CHECK_EQ(m.query_count, 4);
    CHECK_EQ(m.query_matched, 2);

    /* 4 of 5 distinct query frames is exactly 80%: a match by default. */
    cordon_vpdq_frame_t q5[5], t4[4];
    for (int i = 0; i < 5; i++)
        q5[i] = mk(100 + (uint64_t)i, 0, 90);
    for (int i = 0; i < 4; i++)
        t4[i] = mk(100 + (uint64_t)i, 3, 90);
    CHECK_EQ(cordon_vpdq_compare(q5, 5, t4, 4, NULL, &m), CORDON_OK);
    CHECK(m.query_percent == 80.0);
    CHECK(m.target_percent == 100.0);
    CHECK(m.is_match);
    CHECK_EQ(cordon_vpdq_compare(q5, 4, q5 + 1, 4, NULL, &m), CORDON_OK);
    CHECK(m.query_percent == 75.0);
    CHECK(!m.is_match);

    /* An empty side, after filtering or from the start, is 0% and no match. */
    CHECK_EQ(cordon_vpdq_compare(q + 4, 1, t, 3, NULL, &m), CORDON_OK);
    CHECK_EQ(m.query_count, 0);
    CHECK(m.query_percent == 0 && !m.is_match);
    CHECK_EQ(cordon_vpdq_compare(NULL, 0, t, 3, NULL, &m), CORDON_OK);
    CHECK(!m.is_match);
    CHECK_EQ(cordon_vpdq_compare(NULL, 2, t, 3, NULL, &m), CORDON_EINVAL);
    CHECK_EQ(cordon_vpdq_compare(q, 1, t, 3, NULL, NULL), CORDON_EINVAL);
}

TEST(compare_paths_agree)
{
    hash_all_once();
    unsigned saved = cordon_cpu_features();
    const cordon_video_hashes_t *a = &every[CHAIR], *b = &every[PAT];
    const cordon_video_hashes_t *c = &every[PAT_LOGO];
    cordon_vpdq_match_t m1, m2, m3, m4;
    cordon_cpu_set_features(0);
    cordon_vpdq_compare(a->frames, a->count, b->frames, b->count, NULL, &m1);
    cordon_vpdq_compare(c->frames, c->count, b->frames, b->count, NULL, &m3);
    cordon_cpu_set_features(~0u);
    cordon_vpdq_compare(a->frames, a->count, b->frames, b->count, NULL, &m2);
    cordon_vpdq_compare(c->frames, c->count, b->frames, b->count, NULL, &m4);
    cordon_cpu_set_features(saved);
    CHECK_EQ(m1.query_matched, m2.query_matched);
    CHECK_EQ(m1.target_matched, m2.target_matched);
    CHECK_EQ(m3.query_matched, m4.query_matched);
    CHECK_EQ(m3.target_matched, m4.target_matched);
    CHECK_GT(m3.query_matched, 0);
}

TEST(luma_stretch_paths_agree)
{
    uint8_t src[300], a[300], b[300];
    for (int i = 0; i < 300; i++)
        src[i] = (uint8_t)(i * 7 + 3);
    for (int y = 0; y < 256; y++) {
        int want = y < 16 ? 0 : (int)lrint((y - 16) * 255.0 / 219.0);
        want = want > 255 ? 255 : want;
        uint8_t in = (uint8_t)y, o1 = 0, o2 = 0;
        cordon__vpdq_tv_stretch_scalar(&in, &o1, 1);
        CHECK_EQ(o1, want);
        int t = y > 16 ? y - 16 : 0;
        int v = (t * CORDON__TV_K + CORDON__TV_R) >> CORDON__TV_S;
        CHECK_EQ(v > 255 ? 255 : v, want);
        if (cordon_cpu_features() & CORDON_CPU_AVX2) {
            cordon__vpdq_tv_stretch_avx2(&in, &o2, 1);
            CHECK_EQ(o2, want);
        }
    }
    if (cordon_cpu_features() & CORDON_CPU_AVX2) {
        for (size_t off = 0; off < 33; off++) {
            for (size_t n = 0; n + off <= 300; n += 37) {
                memset(a, 0xee, sizeof a);
                memset(b, 0xee, sizeof b);
                cordon__vpdq_tv_stretch_scalar(src + off, a, n);
                cordon__vpdq_tv_stretch_avx2(src + off, b, n);
                CHECK(memcmp(a, b, sizeof a) == 0);
            }
        }
    }
    /* Whole video through the portable paths: the same hashes. */
    cordon_video_opts_t o;
    cordon_video_opts_default(&o);
    cordon_video_hashes_t h1, h2;
    unsigned saved = cordon_cpu_features();
    cordon_cpu_set_features(0);
    int rc = cordon_video_hash_file(video_path(PAT), &o, &h1);
    cordon_cpu_set_features(~0u);
    CHECK_EQ(rc, CORDON_OK);
    CHECK_EQ(cordon_video_hash_file(video_path(PAT), &o, &h2), CORDON_OK);
    cordon_cpu_set_features(saved);
    CHECK_EQ(h1.count, 7);
    CHECK(same_frames(h1.frames, h1.count, h2.frames, h2.count));
    cordon_video_hashes_free(&h1);
    cordon_video_hashes_free(&h2);
}

/* ---- Compact form ------------------------------------------------------ */

TEST(rle_round_trips)
{
    hash_all_once();
    for (size_t v = 0; v < NVID; v++) {
        const cordon_video_hashes_t *h = &every[v];
        cordon_vpdq_run_t *runs;
        size_t nr;
        CHECK_EQ(cordon_vpdq_rle_compress(h->frames, h->count, 1, &runs, &nr),
                 CORDON_OK);
        CHECK_LE(nr, h->count);
        cordon_vpdq_frame_t *back;
        size_t nb;
        CHECK_EQ(cordon_vpdq_rle_expand(runs, nr, 1, h->fps, &back, &nb),
                 CORDON_OK);
        CHECK(same_frames(back, nb, h->frames, h->count));
        free(back);
        free(runs);
    }
    /* Runs merge only consecutive equal frames at the sampling step. */
    cordon_vpdq_frame_t f[6];
    for (int i = 0; i < 6; i++) {
        f[i] = mk(7, 0, 80);
        f[i].frame_number = 30 * i;
        f[i].timestamp = cordon_vpdq_timestamp(f[i].frame_number, 30.0);
    }
    f[3] = mk(8, 0, 80); /* breaks the run */
    f[3].frame_number = 90;
    f[3].timestamp = 3.0;
    f[5].quality = 81; /* same hash, other quality: new run */
    cordon_vpdq_run_t *runs;
    size_t nr;
    CHECK_EQ(cordon_vpdq_rle_compress(f, 6, 30, &runs, &nr), CORDON_OK);
    REQUIRE(nr == 4);
    CHECK_EQ(runs[0].count, 3);
    CHECK_EQ(runs[0].frame_number, 0);
    CHECK_EQ(runs[1].count, 1);
    CHECK_EQ(runs[2].count, 1);
    CHECK_EQ(runs[2].frame_number, 120);
    CHECK(runs[2].timestamp == 4.0);
    cordon_vpdq_frame_t *back;
    size_t nb;
    CHECK_EQ(cordon_vpdq_rle_expand(runs, nr, 30, 30.0, &back, &nb), CORDON_OK);
    CHECK(same_frames(back, nb, f, 6));
    free(back);
    /* With a different step nothing merges. */
    free(runs);
    CHECK_EQ(cordon_vpdq_rle_compress(f, 6, 1, &runs, &nr), CORDON_OK);
    CHECK_EQ(nr, 6);
    free(runs);
    CHECK_EQ(cordon_vpdq_rle_compress(f, 6, 0, &runs, &nr), CORDON_EINVAL);
    CHECK_EQ(cordon_vpdq_rle_compress(NULL, 0, 1, &runs, &nr), CORDON_OK);
    CHECK_EQ(nr, 0);
}

/* ---- Text formats ------------------------------------------------------ */

TEST(reference_lines_round_trip_byte_for_byte)
{
    for (size_t v = 0; v < NVID; v++) {
        size_t len;
        char *txt = read_text(
            tu_path("%s/vpdq/expected/%s.txt", tu_vectors(), names[v]), &len);
        REQUIRE(txt);
        size_t lines = 0, same = 0;
        for (char *s = txt, *nl; (nl = strchr(s, '\n')); s = nl + 1) {
            cordon_vpdq_frame_t f;
            char out[CORDON_VPDQ_LINE_MAX];
            lines++;
            if (cordon_vpdq_parse_line(s, (size_t)(nl - s + 1), &f) != 0)
                continue;
            int k = cordon_vpdq_format_line(&f, out, sizeof out);
            same += k == nl - s && memcmp(out, s, (size_t)k) == 0;
        }
        CHECK_GT(lines, 100);
        CHECK_EQ(same, lines);
        free(txt);
    }
}

TEST(line_parser_rejects_bad_input)
{
    const char *hex =
        "e271017837246aaccddea259648fb7d62f435c89d9e99b2497763e216c8d055c";
    char line[256];
    cordon_vpdq_frame_t f;
    snprintf(line, sizeof line, "12,98,%s,0.400\r\n", hex);
    CHECK_EQ(cordon_vpdq_parse_line(line, strlen(line), &f), CORDON_OK);
    CHECK_EQ(f.frame_number, 12);
    CHECK_EQ(f.quality, 98);
    CHECK(fabs(f.timestamp - 0.4) < 1e-12);
    snprintf(line, sizeof line, "12,98,%s", hex);
    CHECK_EQ(cordon_vpdq_parse_line(line, strlen(line), &f), CORDON_EPARSE);
    snprintf(line, sizeof line, "12,98,%s,1.0,5", hex);
    CHECK_EQ(cordon_vpdq_parse_line(line, strlen(line), &f), CORDON_EPARSE);
    snprintf(line, sizeof line, "12,101,%s,1.0", hex);
    CHECK_EQ(cordon_vpdq_parse_line(line, strlen(line), &f), CORDON_ERANGE);
    snprintf(line, sizeof line, "-1,50,%s,1.0", hex);
    CHECK_EQ(cordon_vpdq_parse_line(line, strlen(line), &f), CORDON_ERANGE);
    snprintf(line, sizeof line, "1,50,%s,-1.0", hex);
    CHECK_EQ(cordon_vpdq_parse_line(line, strlen(line), &f), CORDON_ERANGE);
    snprintf(line, sizeof line, "1,50,%s,1.0x", hex);
    CHECK_EQ(cordon_vpdq_parse_line(line, strlen(line), &f), CORDON_EPARSE);
    snprintf(line, sizeof line, "1,5a,%s,1.0", hex);
    CHECK_EQ(cordon_vpdq_parse_line(line, strlen(line), &f), CORDON_EPARSE);
    snprintf(line, sizeof line, "1,50,%.63s,1.0", hex);
    CHECK_EQ(cordon_vpdq_parse_line(line, strlen(line), &f), CORDON_EHEX);
    snprintf(line, sizeof line, "1,50,%.63sg,1.0", hex);
    CHECK_EQ(cordon_vpdq_parse_line(line, strlen(line), &f), CORDON_EHEX);
    snprintf(line, sizeof line, "99999999999,50,%s,1.0", hex);
    CHECK_NE(cordon_vpdq_parse_line(line, strlen(line), &f), CORDON_OK);

    size_t n, bad;
    cordon_vpdq_frame_t *fr;
    snprintf(line, sizeof line, "0,100,%s,0.000\n\n1,100,%s,x\n", hex, hex);
    CHECK_EQ(cordon_vpdq_parse_text(line, strlen(line), &fr, &n, &bad),
             CORDON_EPARSE);
    CHECK_EQ(bad, 3);
    CHECK(fr == NULL);
    CHECK_EQ(cordon_vpdq_parse_text("", 0, &fr, &n, &bad), CORDON_OK);
    CHECK_EQ(n, 0);
}

TEST(json_signal_matches_python_threatexchange)
{
    const char *hex =
        "e271017837246aaccddea259648fb7d62f435c89d9e99b2497763e216c8d055c";
    cordon_vpdq_frame_t f[6];
    static const int32_t fn[6] = {0, 1, 563, 299, 3000, 35999};
    for (int i = 0; i < 6; i++) {
        REQUIRE(cordon_hash_from_hex(hex, 64, &f[i].hash) == CORDON_OK);
        f[i].frame_number = fn[i];
        f[i].quality = i == 1 ? 7 : 100;
        f[i].timestamp = cordon_vpdq_timestamp(fn[i], 30.0);
    }
    char *js;
    size_t len;
    CHECK_EQ(cordon_vpdq_to_json(f, 6, &js, &len), CORDON_OK);
    /* What Python prints for json.dumps([f"{h},{q},{t:.3}", ...]) with the
     * same single-precision timestamps. */
    char want[1024];
    snprintf(want, sizeof want,
             "[\"%s,100,0.0\", \"%s,7,0.0333\", \"%s,100,18.8\", "
             "\"%s,100,9.97\", \"%s,100,1e+02\", \"%s,100,1.2e+03\"]",
             hex, hex, hex, hex, hex, hex);
    CHECK_STREQ(js, want);
    CHECK_EQ(len, strlen(want));

    cordon_vpdq_frame_t *back;
    size_t n;
    CHECK_EQ(cordon_vpdq_from_json(js, len, &back, &n), CORDON_OK);
    REQUIRE(n == 6);
    for (int i = 0; i < 6; i++) {
        CHECK_EQ(cordon_hash_distance(&back[i].hash, &f[i].hash), 0);
        CHECK_EQ(back[i].quality, f[i].quality);
        CHECK_EQ(back[i].frame_number, i);
    }
    CHECK(fabs(back[1].timestamp - 0.0333) < 1e-12);
    CHECK(back[4].timestamp == 100.0);
    free(back);
    free(js);

    CHECK_EQ(cordon_vpdq_to_json(NULL, 0, &js, &len), CORDON_OK);
    CHECK_STREQ(js, "[]");
    free(js);

    static const char *bad[] = {
        "{}",
        "[1]",
        "[\"abc,1,1.0\"]",
        "[\"e271017837246aaccddea259648fb7d62f435c89d9e99b2497763e216c8d055c,"
        "1\"]",
        "[\"e271017837246aaccddea259648fb7d62f435c89d9e99b2497763e216c8d055c,"
        "101,1.0\"]",
        "[\"e271017837246aaccddea259648fb7d62f435c89d9e99b2497763e216c8d055c,"
        "50,1.0,2\"]",
        "not json",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_MSG(cordon_vpdq_from_json(bad[i], strlen(bad[i]), &back, &n) !=
                      CORDON_OK,
                  "accepted %s", bad[i]);
        CHECK(back == NULL);
    }
    CHECK_EQ(cordon_vpdq_from_json("[]", 2, &back, &n), CORDON_OK);
    CHECK_EQ(n, 0);
}

int main(int argc, char **argv)
{
    (void)argc;
    th_init(argv[0]);
    /* FFmpeg would log the damage our hostile inputs cause. */
    av_log_set_level(AV_LOG_QUIET);
    RUN(vectors_match_reference_both_ways);
    RUN(distinct_scenes_do_not_match);
    RUN(sampling_one_per_second_uses_the_formula);
    RUN(buffer_input_equals_file_input);
    RUN(threads_and_dihedral_do_not_change_hashes);
    RUN(stretches_side_by_side_equal_one_decoder);
    RUN(truncated_stream_gives_prefix_and_warning);
    RUN(corrupt_packets_give_hashes_and_warning);
    RUN(non_video_inputs_are_clear_errors);
    RUN(limits_are_enforced);
    RUN(sniff_routes_videos_and_images);
    RUN(compare_rules_distance_quality_dedup);
    RUN(compare_paths_agree);
    RUN(luma_stretch_paths_agree);
    RUN(rle_round_trips);
    RUN(reference_lines_round_trip_byte_for_byte);
    RUN(line_parser_rejects_bad_input);
    RUN(json_signal_matches_python_threatexchange);
    for (size_t i = 0; i < NVID; i++)
        cordon_video_hashes_free(&every[i]);
    return TH_END();
}
