/*
 * Videos through the command line: `cordon hash` lines and JSON on a
 * vector clip (checked against the reference hashes at the match level),
 * `cordon add` of a video, then `cordon match` of the same file, a
 * re-encoded and resized copy, a clip cut from the middle, a screenshot of
 * one frame, an unrelated clip, a truncated file and an audio-only file;
 * and the vpdq signal through export / import. Copies are made with the
 * ffmpeg command-line tool.
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cordon_digest.h"
#include "cordon_video.h"
#include "harness.h"
#include "util.h"

static const char *db;
static char *out;

static void drop(void)
{
    free(out);
    out = NULL;
}

static const char *vid(const char *name)
{
    return tu_path("%s/vpdq/videos/%s", tu_vectors(), name);
}

static const char *tmp(const char *name)
{
    return tu_path("%s/%s", tu_tmpdir(), name);
}

static int cordon(char **o, const char *args)
{
    return tu_run(o, "'%s' --db '%s' %s 2>/dev/null", tu_cordon_bin(), db,
                  args);
}

/* As cordon(), with stderr instead of stdout captured. */
static int cordon_err(char **e, const char *args)
{
    return tu_run(e, "'%s' --db '%s' %s 2>&1 >/dev/null", tu_cordon_bin(), db,
                  args);
}

static int ff(const char *args)
{
    return tu_run(NULL, "ffmpeg -nostdin -hide_banner -loglevel error -y %s",
                  args);
}

/* The one match of item `item` with signal `sig` in a match --json line. */
static json_t *find_match(json_t *o, long long item, const char *sig)
{
    json_t *m = json_object_get(o, "matches");
    for (size_t i = 0; i < json_array_size(m); i++) {
        json_t *e = json_array_get(m, i);
        if (json_integer_value(json_object_get(e, "item")) == item &&
            strcmp(json_string_value(json_object_get(e, "signal")), sig) == 0)
            return e;
    }
    return NULL;
}

static json_t *match_json(const char *file, int *rc)
{
    *rc = cordon(&out, tu_path("match --json '%s'", file));
    json_error_t e;
    json_t *o = json_loads(out ? out : "", 0, &e);
    drop();
    return o;
}

TEST(hash_text_lines_match_reference)
{
    const char *name = "pattern-sd-grey-bar";
    REQUIRE(cordon(&out, tu_path("hash '%s'", vid(tu_path("%s.mp4", name)))) ==
            0);
    size_t elen = 0;
    char *exp = (char *)tu_read_file(
        tu_path("%s/vpdq/expected/%s.txt", tu_vectors(), name), &elen);
    REQUIRE(exp);
    cordon_vpdq_frame_t *ref = NULL, *got = NULL;
    size_t nref = 0, ngot = 0;
    REQUIRE(cordon_vpdq_parse_text(exp, elen, &ref, &nref, NULL) == CORDON_OK);
    REQUIRE(cordon_vpdq_parse_text(out, strlen(out), &got, &ngot, NULL) ==
            CORDON_OK);
    /* 6.9 s at 30 fps, one hash per second: frames 0, 30, ..., 180. */
    CHECK_EQ(ngot, 7);
    for (size_t i = 0; i < ngot; i++) {
        CHECK_EQ(got[i].frame_number, (int32_t)(30 * i));
        CHECK(fabs(got[i].timestamp - (double)i) < 1e-3);
        REQUIRE((size_t)got[i].frame_number < nref);
        const cordon_vpdq_frame_t *r = &ref[got[i].frame_number];
        CHECK_EQ(r->frame_number, got[i].frame_number);
        CHECK_LE(cordon_hash_distance(&r->hash, &got[i].hash), 31);
    }
    free(ref);
    free(got);
    free(exp);
    drop();
}

TEST(hash_json_shape)
{
    const char *f = vid("pattern-sd-grey-bar.mp4");
    REQUIRE(cordon(&out, tu_path("hash --json '%s'", f)) == 0);
    json_error_t e;
    json_t *o = json_loads(out, 0, &e);
    REQUIRE(o);
    CHECK_STREQ(json_string_value(json_object_get(o, "file")), f);
    CHECK_STREQ(json_string_value(json_object_get(o, "type")), "video");
    CHECK(fabs(json_number_value(json_object_get(o, "fps")) - 30.0) < 1e-6);
    double dur = json_number_value(json_object_get(o, "duration"));
    CHECK(dur > 6.5 && dur < 7.0);
    CHECK_EQ(json_integer_value(json_object_get(o, "width")), 480);
    CHECK_EQ(json_integer_value(json_object_get(o, "height")), 720);
    size_t len = 0;
    uint8_t *bytes = tu_read_file(f, &len);
    REQUIRE(bytes);
    uint8_t md5[16], sha[32];
    char md5h[33], shah[65];
    REQUIRE(cordon_digest(bytes, len, md5, sha) == CORDON_OK);
    cordon_hex_encode(md5, 16, md5h);
    cordon_hex_encode(sha, 32, shah);
    free(bytes);
    CHECK_STREQ(json_string_value(json_object_get(o, "md5")), md5h);
    CHECK_STREQ(json_string_value(json_object_get(o, "sha256")), shah);
    json_t *fr = json_object_get(o, "frames");
    CHECK_EQ(json_array_size(fr), 7);
    json_t *f1 = json_array_get(fr, 1);
    CHECK_EQ(json_integer_value(json_object_get(f1, "frame")), 30);
    CHECK(fabs(json_number_value(json_object_get(f1, "timestamp")) - 1.0) <
          1e-6);
    CHECK_EQ(strlen(json_string_value(json_object_get(f1, "pdq"))), 64);
    json_int_t q = json_integer_value(json_object_get(f1, "quality"));
    CHECK(q >= 0 && q <= 100);
    json_decref(o);
    drop();
}

TEST(hash_every_frame)
{
    REQUIRE(cordon(&out, tu_path("hash --seconds-per-hash 0 '%s'",
                                 vid("pattern-sd-grey-bar.mp4"))) == 0);
    size_t lines = 0;
    for (const char *p = out; *p; p++)
        lines += *p == '\n';
    size_t elen = 0;
    char *exp = (char *)tu_read_file(
        tu_path("%s/vpdq/expected/pattern-sd-grey-bar.txt", tu_vectors()),
        &elen);
    REQUIRE(exp);
    size_t elines = 0;
    for (size_t i = 0; i < elen; i++)
        elines += exp[i] == '\n';
    CHECK_EQ(lines, elines);
    free(exp);
    drop();
    CHECK_EQ(cordon(NULL, "hash --seconds-per-hash -1 x.mp4"), 2);
}

/* Hamming distance of two hex hashes, or -1 if either is not one. */
static int hex_distance(const char *a, const char *b)
{
    cordon_hash256_t x, y;
    if (!a || !b || cordon_hash_from_hex(a, strlen(a), &x) != CORDON_OK ||
        cordon_hash_from_hex(b, strlen(b), &y) != CORDON_OK)
        return -1;
    return cordon_hash_distance(&x, &y);
}

/* --dihedral on a video: each frame carries the seven other variants, in
 * JSON as for images and at the end of each text line; a copy rotated 90
 * degrees counter-clockwise (and one mirrored left-right) hashes close to
 * the matching variant of the original and far from every other one. */
TEST(hash_dihedral_frames)
{
    const char *src = vid("chair-19-sd-bar.mp4");
    const char *rot = tmp("rot90.mp4"), *mir = tmp("mirror.mp4");
    REQUIRE(ff(tu_path("-i '%s' -t 3 -vf transpose=2 -c:v libx264 -qp 0 "
                       "-pix_fmt yuv420p '%s'",
                       src, rot)) == 0);
    REQUIRE(ff(tu_path("-i '%s' -t 3 -vf hflip -c:v libx264 -qp 0 "
                       "-pix_fmt yuv420p '%s'",
                       src, mir)) == 0);
    REQUIRE(cordon(&out, tu_path("hash --json --dihedral '%s'", src)) == 0);
    json_error_t e;
    json_t *o = json_loads(out ? out : "", 0, &e);
    drop();
    REQUIRE(o);
    json_t *fr = json_object_get(o, "frames");
    REQUIRE(json_array_size(fr) >= 3);

    /* The text form carries the same seven hashes, in the image order. */
    REQUIRE(cordon(&out, tu_path("hash --dihedral '%s'", src)) == 0);
    static const char *const order[] = {"rot90",     "rot180", "rot270",
                                        "flipx",     "flipy",  "flipplus1",
                                        "flipminus1"};
    char *save = NULL;
    size_t lines = 0;
    for (char *l = strtok_r(out, "\n", &save); l;
         l = strtok_r(NULL, "\n", &save), lines++) {
        json_t *f = json_array_get(fr, lines);
        REQUIRE(f);
        char *field[12];
        int nf = 0;
        char *s2 = NULL;
        for (char *t = strtok_r(l, ",", &s2); t && nf < 12;
             t = strtok_r(NULL, ",", &s2))
            field[nf++] = t;
        REQUIRE(nf == 11);
        CHECK_EQ(atoi(field[0]),
                 json_integer_value(json_object_get(f, "frame")));
        CHECK_STREQ(field[2], json_string_value(json_object_get(f, "pdq")));
        json_t *d = json_object_get(f, "dihedral");
        CHECK_EQ(json_object_size(d), 7);
        for (int v = 0; v < 7; v++)
            CHECK_STREQ(field[4 + v],
                        json_string_value(json_object_get(d, order[v])));
    }
    CHECK_EQ(lines, json_array_size(fr));
    drop();

    /* Without --dihedral nothing changes: four fields, no object. */
    REQUIRE(cordon(&out, tu_path("hash --json '%s'", src)) == 0);
    json_t *plain = json_loads(out ? out : "", 0, &e);
    drop();
    REQUIRE(plain);
    CHECK(json_object_get(json_array_get(json_object_get(plain, "frames"), 0),
                          "dihedral") == NULL);
    json_decref(plain);

    const char *copies[] = {rot, mir};
    const char *variant[] = {"rot90", "flipy"};
    for (int c = 0; c < 2; c++) {
        REQUIRE(cordon(&out, tu_path("hash --json '%s'", copies[c])) == 0);
        json_t *q = json_loads(out ? out : "", 0, &e);
        drop();
        REQUIRE(q);
        json_t *qf = json_object_get(q, "frames");
        REQUIRE(json_array_size(qf) == 3);
        for (size_t i = 0; i < 3; i++) {
            json_t *a = json_array_get(fr, i), *b = json_array_get(qf, i);
            const char *h = json_string_value(json_object_get(b, "pdq"));
            json_t *d = json_object_get(a, "dihedral");
            CHECK_LE(hex_distance(
                         h, json_string_value(json_object_get(d, variant[c]))),
                     16);
            CHECK_GT(
                hex_distance(h, json_string_value(json_object_get(a, "pdq"))),
                31);
            for (int v = 0; v < 7; v++)
                if (strcmp(order[v], variant[c]) != 0)
                    CHECK_GT(hex_distance(h, json_string_value(
                                                 json_object_get(d, order[v]))),
                             31);
        }
        json_decref(q);
    }
    json_decref(o);
}

TEST(stdin_gives_the_same_hashes)
{
    char *by_path = NULL;
    const char *f = vid("pattern-sd-grey-bar.mp4");
    REQUIRE(cordon(&by_path, tu_path("hash '%s'", f)) == 0);
    REQUIRE(cordon(&out, tu_path("hash - < '%s'", f)) == 0);
    REQUIRE(by_path && out);
    CHECK_STREQ(out, by_path);
    CHECK_GT(strlen(out), 0);
    free(by_path);
    drop();
    /* Images still take the image path from stdin: the same line but
     * for the file name. */
    const char *img = tu_path("%s/pdq/images/pytx-rgb.jpeg", tu_vectors());
    REQUIRE(cordon(&by_path, tu_path("hash '%s'", img)) == 0);
    REQUIRE(cordon(&out, tu_path("hash - < '%s'", img)) == 0);
    REQUIRE(by_path && out);
    char *sp = strrchr(by_path, ' ');
    REQUIRE(sp);
    CHECK(strncmp(out, by_path, (size_t)(sp - by_path) + 1) == 0);
    CHECK_STREQ(out + (sp - by_path) + 1, "-\n");
    free(by_path);
    drop();
}

TEST(add_video_and_dedup)
{
    REQUIRE(cordon(NULL, "bank create VIDEOS --label type:video") == 0);
    REQUIRE(
        cordon(&out, tu_path("add --json --bank VIDEOS --label type:video '%s'",
                             vid("chair-19-sd-bar.mp4"))) == 0);
    json_error_t e;
    json_t *o = json_loads(out, JSON_DISABLE_EOF_CHECK, &e);
    REQUIRE(o);
    CHECK_STREQ(json_string_value(json_object_get(o, "status")), "added");
    CHECK_EQ(json_integer_value(json_object_get(o, "id")), 1);
    CHECK_STREQ(json_string_value(json_object_get(o, "type")), "video");
    CHECK_EQ(json_integer_value(json_object_get(o, "frames")), 19);
    json_decref(o);
    drop();
    /* The same bytes again: a duplicate by MD5 / SHA-256. */
    REQUIRE(cordon(&out, tu_path("add --bank VIDEOS '%s'",
                                 vid("chair-19-sd-bar.mp4"))) == 0);
    CHECK(strstr(out, "duplicate of item 1") != NULL);
    drop();
}

TEST(same_file_matches_fully)
{
    int rc;
    json_t *o = match_json(vid("chair-19-sd-bar.mp4"), &rc);
    CHECK_EQ(rc, 0);
    REQUIRE(o);
    CHECK_STREQ(json_string_value(json_object_get(o, "type")), "video");
    CHECK(find_match(o, 1, "md5") != NULL);
    CHECK(find_match(o, 1, "sha256") != NULL);
    json_t *m = find_match(o, 1, "vpdq");
    REQUIRE(m);
    CHECK_STREQ(json_string_value(json_object_get(m, "verdict")), "match");
    CHECK(json_number_value(json_object_get(m, "query_pct")) == 100.0);
    CHECK(json_number_value(json_object_get(m, "target_pct")) == 100.0);
    CHECK_GT(json_integer_value(json_object_get(m, "frames_matched")), 10);
    CHECK_EQ(json_integer_value(json_object_get(m, "distance")), 0);
    json_decref(o);
}

TEST(reencoded_resized_copy_matches)
{
    const char *re = tmp("reencoded.mp4");
    REQUIRE(ff(tu_path("-i '%s' -vf scale=iw/2:-2 -c:v libx264 -preset "
                       "ultrafast -crf 30 -an '%s'",
                       vid("chair-19-sd-bar.mp4"), re)) == 0);
    int rc;
    json_t *o = match_json(re, &rc);
    CHECK_EQ(rc, 0);
    REQUIRE(o);
    CHECK(find_match(o, 1, "md5") == NULL);
    json_t *m = find_match(o, 1, "vpdq");
    REQUIRE(m);
    CHECK_STREQ(json_string_value(json_object_get(m, "verdict")), "match");
    CHECK_GE(json_number_value(json_object_get(m, "query_pct")), 80.0);
    json_decref(o);
    /* Text form: the usual columns, then the video ones. */
    CHECK_EQ(cordon(&out, tu_path("match '%s'", re)), 0);
    REQUIRE(out);
    CHECK(strstr(out, "\tVIDEOS\t1\tvpdq\t") != NULL);
    CHECK(strstr(out, "\ttype:video\tquery%=") != NULL);
    CHECK(strstr(out, "\tverdict=match\n") != NULL);
    drop();
}

TEST(middle_clip_matches_on_the_query_side)
{
    const char *clip = tmp("clip.mp4");
    /* 7 s of the 18.8 s video, from 6 s. */
    REQUIRE(ff(tu_path("-ss 6 -i '%s' -t 7 -c:v libx264 -preset ultrafast "
                       "-an '%s'",
                       vid("chair-19-sd-bar.mp4"), clip)) == 0);
    int rc;
    json_t *o = match_json(clip, &rc);
    CHECK_EQ(rc, 0);
    REQUIRE(o);
    json_t *m = find_match(o, 1, "vpdq");
    REQUIRE(m);
    double q = json_number_value(json_object_get(m, "query_pct"));
    double t = json_number_value(json_object_get(m, "target_pct"));
    CHECK_GE(q, 80.0);
    CHECK_LT(t, 60.0);
    CHECK_GT(t, 20.0);
    CHECK_STREQ(json_string_value(json_object_get(m, "verdict")), "match");
    json_decref(o);
    CHECK_EQ(cordon(NULL, tu_path("match --video-threshold 100.5 '%s'", clip)),
             2);
    /* The other way round (the clip is known, the whole video uploaded)
     * only part of the upload matches: reported as partial, which is not
     * a match for the exit status. */
    const char *db2 = tmp("clip.db");
    REQUIRE(tu_run(NULL,
                   "'%s' --db '%s' bank create CLIPS >/dev/null && '%s' --db "
                   "'%s' add --bank CLIPS '%s' >/dev/null 2>&1",
                   tu_cordon_bin(), db2, tu_cordon_bin(), db2, clip) == 0);
    rc = tu_run(&out, "'%s' --db '%s' match --json '%s' 2>/dev/null",
                tu_cordon_bin(), db2, vid("chair-19-sd-bar.mp4"));
    CHECK_EQ(rc, 1);
    json_error_t e;
    o = json_loads(out ? out : "", 0, &e);
    drop();
    REQUIRE(o);
    m = find_match(o, 1, "vpdq");
    REQUIRE(m);
    CHECK_STREQ(json_string_value(json_object_get(m, "verdict")), "partial");
    CHECK_LT(json_number_value(json_object_get(m, "query_pct")), 60.0);
    CHECK_GE(json_number_value(json_object_get(m, "target_pct")), 80.0);
    json_decref(o);
    rc = tu_run(&out, "'%s' --db '%s' match '%s' 2>/dev/null", tu_cordon_bin(),
                db2, vid("chair-19-sd-bar.mp4"));
    CHECK_EQ(rc, 1);
    REQUIRE(out);
    CHECK(strstr(out, "\tverdict=partial\n") != NULL);
    drop();
}

TEST(screenshot_matches_the_video_item)
{
    const char *shot = tmp("shot.png");
    REQUIRE(ff(tu_path("-ss 12 -i '%s' -frames:v 1 '%s'",
                       vid("chair-19-sd-bar.mp4"), shot)) == 0);
    int rc;
    json_t *o = match_json(shot, &rc);
    CHECK_EQ(rc, 0);
    REQUIRE(o);
    json_t *m = find_match(o, 1, "vpdq");
    REQUIRE(m);
    CHECK_LE(json_integer_value(json_object_get(m, "distance")), 31);
    CHECK(fabs(json_number_value(json_object_get(m, "timestamp")) - 12.0) <
          1e-6);
    json_decref(o);
}

TEST(video_frame_matches_an_image_item)
{
    const char *shot = tmp("still.png");
    REQUIRE(ff(tu_path("-ss 5 -i '%s' -frames:v 1 '%s'",
                       vid("chair-19-sd-bar.mp4"), shot)) == 0);
    REQUIRE(cordon(NULL, "bank create STILLS") == 0);
    REQUIRE(cordon(&out, tu_path("add --bank STILLS '%s'", shot)) == 0);
    CHECK(strstr(out, "added item 2") != NULL);
    drop();
    int rc;
    json_t *o = match_json(tmp("reencoded.mp4"), &rc);
    CHECK_EQ(rc, 0);
    REQUIRE(o);
    json_t *m = find_match(o, 2, "pdq");
    REQUIRE(m);
    CHECK_STREQ(json_string_value(json_object_get(m, "bank")), "STILLS");
    CHECK_EQ(json_integer_value(json_object_get(m, "frame")), 150);
    CHECK(fabs(json_number_value(json_object_get(m, "timestamp")) - 5.0) <
          1e-6);
    CHECK(json_object_get(m, "query_pct") == NULL);
    CHECK(find_match(o, 1, "vpdq") != NULL);
    json_decref(o);
}

TEST(unrelated_clip_does_not_match)
{
    CHECK_EQ(cordon(&out, tu_path("match '%s'", vid("doorknob-hd-no-bar.mp4"))),
             1);
    REQUIRE(out);
    CHECK(strstr(out, "\t-\tno match\n") != NULL);
    drop();
    CHECK_EQ(
        cordon(&out, tu_path("match '%s'", vid("pattern-sd-grey-bar.mp4"))), 1);
    drop();
}

TEST(export_import_keeps_vpdq)
{
    const char *list = tmp("export.txt");
    REQUIRE(cordon(NULL, tu_path("export --format local --bank VIDEOS "
                                 "--type vpdq -o '%s'",
                                 list)) == 0);
    size_t len = 0;
    char *txt = (char *)tu_read_file(list, &len);
    REQUIRE(txt);
    CHECK(strncmp(txt, "vpdq [\"", 7) == 0);
    free(txt);
    const char *db2 = tmp("imported.db");
    REQUIRE(tu_run(NULL,
                   "'%s' --db '%s' import --format local --bank COPY '%s' "
                   "2>/dev/null",
                   tu_cordon_bin(), db2, list) == 0);
    int rc = tu_run(&out, "'%s' --db '%s' match --json '%s' 2>/dev/null",
                    tu_cordon_bin(), db2, tmp("reencoded.mp4"));
    CHECK_EQ(rc, 0);
    json_error_t e;
    json_t *o = json_loads(out ? out : "", 0, &e);
    drop();
    REQUIRE(o);
    json_t *m = find_match(o, 1, "vpdq");
    REQUIRE(m);
    CHECK_STREQ(json_string_value(json_object_get(m, "bank")), "COPY");
    CHECK_GE(json_number_value(json_object_get(m, "query_pct")), 80.0);
    json_decref(o);
}

/* The timestamps of a local-file export: the third field of every string
 * of the list on the first "vpdq [...]" line. Returns how many, or -1. */
static int export_times(const char *txt, double *ts, int max)
{
    const char *p = strstr(txt ? txt : "", "vpdq [");
    int n = 0;
    if (!p)
        return -1;
    for (p += 6; *p && *p != ']' && n < max; p++) {
        if (*p != '"')
            continue;
        const char *c1 = strchr(p + 1, ','), *c2 = c1 ? strchr(c1 + 1, ',') : 0;
        if (!c2)
            return -1;
        ts[n++] = strtod(c2 + 1, NULL);
        p = strchr(c2, '"');
        if (!p)
            return -1;
    }
    return n;
}

/* Repeated frames are stored once with a count, but an export still gives
 * every hashed frame its own start time, as the reference's one feature
 * per frame does (python-threatexchange: the timestamp is "the start time
 * of the frame"), and an import of that export exports the same again. A
 * still image shown for 2 s and another for 3 s, one hash a second: runs
 * of 2 and 3 identical frames, the last run ending the video. */
TEST(export_gives_repeated_frames_their_own_times)
{
    const char *img1 = tu_path("%s/pdq/images/pytx-rgb.jpeg", tu_vectors());
    char *a = strdup(img1);
    const char *img2 =
        tu_path("%s/pdq/images/bridge-mods_aaa-orig.jpg", tu_vectors());
    const char *v = tmp("stills.mp4");
    REQUIRE(ff(tu_path("-loop 1 -t 2 -r 10 -i '%s' -loop 1 -t 3 -r 10 -i '%s' "
                       "-filter_complex '[0:v]scale=320:240,setsar=1[a];"
                       "[1:v]scale=320:240,setsar=1[b];[a][b]concat=n=2[v]' "
                       "-map '[v]' -r 10 -c:v libx264 -pix_fmt yuv420p '%s'",
                       a, img2, v)) == 0);
    free(a);
    REQUIRE(cordon(&out, tu_path("hash '%s'", v)) == 0);
    double want[5];
    int nw = 0;
    char hashes[5][65];
    char *save = NULL;
    for (char *l = strtok_r(out, "\n", &save); l && nw < 5;
         l = strtok_r(NULL, "\n", &save), nw++) {
        const char *c2 = strchr(strchr(l, ',') + 1, ',');
        memcpy(hashes[nw], c2 + 1, 64);
        hashes[nw][64] = 0;
        want[nw] = strtod(c2 + 66, NULL);
    }
    drop();
    REQUIRE(nw == 5);
    /* The clip really has two runs. */
    CHECK_STREQ(hashes[0], hashes[1]);
    CHECK_STREQ(hashes[2], hashes[4]);
    CHECK(strcmp(hashes[1], hashes[2]) != 0);

    const char *db1 = tmp("times.db"), *db2 = tmp("times2.db");
    const char *list = tmp("times.txt"), *list2 = tmp("times2.txt");
    REQUIRE(tu_run(NULL, "'%s' --db '%s' bank create T >/dev/null",
                   tu_cordon_bin(), db1) == 0);
    REQUIRE(tu_run(NULL, "'%s' --db '%s' add --bank T '%s' >/dev/null",
                   tu_cordon_bin(), db1, v) == 0);
    REQUIRE(tu_run(NULL,
                   "'%s' --db '%s' export --format local --type vpdq -o '%s'",
                   tu_cordon_bin(), db1, list) == 0);
    size_t len = 0;
    char *txt = (char *)tu_read_file(list, &len);
    REQUIRE(txt);
    txt = realloc(txt, len + 1);
    txt[len] = 0;
    double got[8];
    CHECK_EQ(export_times(txt, got, 8), 5);
    for (int i = 0; i < 5; i++)
        CHECK(fabs(got[i] - want[i]) < 1e-6);
    REQUIRE(tu_run(NULL,
                   "'%s' --db '%s' import --format local --bank T '%s' "
                   "2>/dev/null",
                   tu_cordon_bin(), db2, list) == 0);
    REQUIRE(tu_run(NULL,
                   "'%s' --db '%s' export --format local --type vpdq -o '%s'",
                   tu_cordon_bin(), db2, list2) == 0);
    char *txt2 = (char *)tu_read_file(list2, &len);
    REQUIRE(txt2);
    txt2 = realloc(txt2, len + 1);
    txt2[len] = 0;
    CHECK_EQ(export_times(txt2, got, 8), 5);
    for (int i = 0; i < 5; i++)
        CHECK(fabs(got[i] - want[i]) < 1e-6);
    free(txt);
    free(txt2);
}

TEST(truncated_video_warns_and_matches_what_decoded)
{
    size_t len = 0;
    uint8_t *b = tu_read_file(vid("chair-19-sd-bar.mp4"), &len);
    REQUIRE(b && len > 400000);
    const char *cut = tmp("cut.mp4");
    REQUIRE(tu_write_file(cut, b, 300000) == 0);
    free(b);
    CHECK_EQ(cordon_err(&out, tu_path("match '%s'", cut)), 0);
    REQUIRE(out);
    CHECK(strstr(out, "cut.mp4: warning: video is truncated") != NULL);
    drop();
    CHECK_EQ(cordon(&out, tu_path("hash '%s'", cut)), 0);
    REQUIRE(out);
    CHECK_GT(strlen(out), 0);
    drop();
    /* Cut before any frame: an error, exit 2. */
    const char *stub = tmp("stub.mp4");
    b = tu_read_file(vid("chair-19-sd-bar.mp4"), &len);
    REQUIRE(b);
    REQUIRE(tu_write_file(stub, b, 2000) == 0);
    free(b);
    CHECK_EQ(cordon(NULL, tu_path("match '%s'", stub)), 2);
}

TEST(audio_only_is_an_error)
{
    const char *a = tmp("tone.m4a");
    REQUIRE(ff(tu_path("-f lavfi -i sine=d=1 '%s'", a)) == 0);
    CHECK_EQ(cordon_err(&out, tu_path("match '%s'", a)), 2);
    REQUIRE(out);
    CHECK(strstr(out, "tone.m4a: no video stream") != NULL);
    drop();
    CHECK_EQ(cordon(NULL, tu_path("hash '%s'", a)), 2);
    CHECK_EQ(cordon(NULL, tu_path("add --bank VIDEOS '%s'", a)), 2);
}

int main(int argc, char **argv)
{
    (void)argc;
    th_init(argv[0]);
    db = strdup(tmp("video.db"));
    RUN(hash_text_lines_match_reference);
    RUN(hash_json_shape);
    RUN(hash_every_frame);
    RUN(hash_dihedral_frames);
    RUN(stdin_gives_the_same_hashes);
    RUN(add_video_and_dedup);
    RUN(same_file_matches_fully);
    RUN(reencoded_resized_copy_matches);
    RUN(middle_clip_matches_on_the_query_side);
    RUN(screenshot_matches_the_video_item);
    RUN(video_frame_matches_an_image_item);
    RUN(unrelated_clip_does_not_match);
    RUN(export_import_keeps_vpdq);
    RUN(export_gives_repeated_frames_their_own_times);
    RUN(truncated_video_warns_and_matches_what_decoded);
    RUN(audio_only_is_an_error);
    return TH_END();
}
