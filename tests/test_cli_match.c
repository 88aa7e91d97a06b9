/*
 * `cordon add` then `cordon match` end to end on the reference vectors:
 * every bridge-mods file matches the original; the rotated and flipped
 * files match with --dihedral and not without; exact copies hit by MD5 and
 * SHA-256; JSON Lines shape; exit statuses 0 / 1 / 2.
 */
#include <jansson.h>

#include "harness.h"
#include "util.h"

static const char *db;
static char *out;

static void drop(void)
{
    free(out);
    out = NULL;
}

static const char *img(const char *name)
{
    return tu_path("%s/pdq/images/%s", tu_vectors(), name);
}

static int cordon(char **o, const char *args)
{
    return tu_run(o, "'%s' --db '%s' %s 2>/dev/null", tu_cordon_bin(), db,
                  args);
}

TEST(setup_known_bad)
{
    REQUIRE(cordon(NULL, "bank create KNOWN --label entity:test") == 0);
    REQUIRE(cordon(NULL, "bank create OTHER") == 0);
    REQUIRE(cordon(NULL,
                   tu_path("add --bank KNOWN --label type:image '%s' '%s'",
                           img("bridge-mods_aaa-orig.jpg"),
                           img("reg-test-input_pen-and-coaster.png"))) == 0);
}

TEST(bridge_mods_match_original)
{
    static const char *mods[] = {
        "bridge-mods_blur-a-little.jpg",    "bridge-mods_blur-a-lot.jpg",
        "bridge-mods_high-contrast.jpg",    "bridge-mods_high-saturation.jpg",
        "bridge-mods_sharpen-a-little.jpg", "bridge-mods_sharpen-a-lot.jpg",
        "bridge-mods_shrink-a-little.jpg",  "bridge-mods_shrink-a-lot.jpg",
        "bridge-mods_square-128x128.jpg",   "bridge-mods_square-256x256.jpg",
        "bridge-mods_square-512x512.jpg"};
    for (size_t i = 0; i < sizeof mods / sizeof mods[0]; i++) {
        int rc = cordon(&out, tu_path("match --json '%s'", img(mods[i])));
        CHECK_MSG(rc == 0, "%s: exit %d", mods[i], rc);
        json_error_t e;
        json_t *o = json_loads(out ? out : "", 0, &e);
        REQUIRE(o);
        json_t *m = json_object_get(o, "matches");
        CHECK_EQ(json_array_size(m), 1);
        json_t *first = json_array_get(m, 0);
        CHECK_STREQ(json_string_value(json_object_get(first, "bank")),
                    "KNOWN");
        CHECK_EQ(json_integer_value(json_object_get(first, "item")), 1);
        CHECK_STREQ(json_string_value(json_object_get(first, "signal")), "pdq");
        CHECK_LE(json_integer_value(json_object_get(first, "distance")), 31);
        CHECK_STREQ(json_string_value(json_object_get(first, "variant")),
                    "original");
        CHECK_STREQ(json_string_value(json_object_get(
                        json_object_get(first, "labels"), "type")),
                    "image");
        json_decref(o);
        drop();
    }
}

TEST(dihedral_needed_for_rotations_and_flips)
{
    static const struct {
        const char *file, *variant;
    } t[] = {{"reg-test-input_dih_bridge-2-rotate-90.jpg", "rot270"},
             {"reg-test-input_dih_bridge-3-rotate-180.jpg", "rot180"},
             {"reg-test-input_dih_bridge-4-rotate-270.jpg", "rot90"},
             {"reg-test-input_dih_bridge-5-flipx.jpg", "flipx"},
             {"reg-test-input_dih_bridge-6-flipy.jpg", "flipy"},
             {"reg-test-input_dih_bridge-7-flip-plus-1.jpg", "flipplus1"},
             {"reg-test-input_dih_bridge-8-flip-minus-1.jpg", "flipminus1"}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        CHECK_MSG(cordon(NULL, tu_path("match '%s'", img(t[i].file))) == 1,
                  "%s matched without --dihedral", t[i].file);
        int rc = cordon(&out, tu_path("match --dihedral '%s'", img(t[i].file)));
        CHECK_MSG(rc == 0, "%s: exit %d", t[i].file, rc);
        /* file \t bank \t item \t signal \t distance \t variant \t labels */
        char bank[64], signal[16], variant[32];
        unsigned long long item;
        int dist;
        const char *tab = out ? strchr(out, '\t') : NULL;
        REQUIRE(tab);
        CHECK_EQ(sscanf(tab + 1, "%63[^\t]\t%llu\t%15[^\t]\t%d\t%31[^\t]", bank,
                        &item, signal, &dist, variant),
                 5);
        CHECK_STREQ(bank, "KNOWN");
        CHECK_EQ(item, 1);
        CHECK_LE(dist, 31);
        /* The variant that undoes the file's transform. */
        CHECK_STREQ(variant, t[i].variant);
        drop();
    }
}

TEST(exact_copies_and_no_match)
{
    CHECK_EQ(cordon(&out, tu_path("match '%s'",
                                  img("reg-test-input_pen-and-coaster.png"))),
             0);
    CHECK(out && strstr(out, "\tmd5\t0\t") && strstr(out, "\tsha256\t0\t") &&
          strstr(out, "\tpdq\t0\t"));
    drop();
    /* Unrelated images: exit 1, and a "no match" line. */
    CHECK_EQ(cordon(&out, tu_path("match '%s' '%s'", img("pytx-rgb.jpeg"),
                                  img("reg-test-input_labelme-subset_q2821.jpg"))),
             1);
    CHECK(out && strstr(out, "\t-\tno match\n"));
    drop();
    /* A disabled bank does not match; enabled again, it does. */
    REQUIRE(cordon(NULL, "bank disable KNOWN") == 0);
    CHECK_EQ(cordon(NULL, tu_path("match '%s'",
                                  img("bridge-mods_blur-a-lot.jpg"))),
             1);
    REQUIRE(cordon(NULL, "bank enable KNOWN") == 0);
    CHECK_EQ(cordon(NULL, tu_path("match '%s'",
                                  img("bridge-mods_blur-a-lot.jpg"))),
             0);
    /* A tighter threshold than the edit's distance: no match. */
    CHECK_EQ(cordon(NULL, tu_path("match --threshold 0 '%s'",
                                  img("bridge-mods_sharpen-a-lot.jpg"))),
             1);
}

TEST(errors_exit_2)
{
    const char *bad = tu_path("%s/bad.jpg", tu_tmpdir());
    tu_write_file(bad, "\xff\xd8\xff garbage", 12);
    CHECK_EQ(cordon(NULL, tu_path("match '%s' '%s'", bad,
                                  img("bridge-mods_blur-a-lot.jpg"))),
             2);
    CHECK_EQ(tu_run(NULL, "'%s' match --db '%s/none.db' '%s' 2>/dev/null",
                    tu_cordon_bin(), tu_tmpdir(), img("pytx-rgb.jpeg")),
             2);
    CHECK_EQ(cordon(NULL, "match --threshold 300 x"), 2);
    CHECK_EQ(cordon(&out, "match --help"), 0);
    CHECK(out && strstr(out, "usage: cordon match"));
    drop();
}

int main(int argc, char **argv)
{
    (void)argc;
    th_init(argv[0]);
    db = strdup(tu_path("%s/m.db", tu_tmpdir()));
    RUN(setup_known_bad);
    RUN(bridge_mods_match_original);
    RUN(dihedral_needed_for_rotations_and_flips);
    RUN(exact_copies_and_no_match);
    RUN(errors_exit_2);
    int rc = TH_END();
    free((void *)db);
    return rc;
}
