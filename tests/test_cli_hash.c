/*
 * `cordon hash` end to end: the binary's output against the reference
 * vectors and against md5sum/sha256sum, JSON Lines shape, error handling
 * and exit statuses.
 */
#include <jansson.h>

#include "harness.h"
#include "util.h"

static char *out;

static void drop(void)
{
    free(out);
    out = NULL;
}

TEST(text_output_matches_vectors)
{
    const char *v = tu_vectors();
    int rc = tu_run(&out, "cd '%s/pdq' && '%s' hash $(cut -d, -f1 expected.csv "
                          "| tail -n +2)",
                    v, tu_cordon_bin());
    CHECK_EQ(rc, 0);
    size_t len;
    char *csv = (char *)tu_read_file(tu_path("%s/pdq/expected.csv", v), &len);
    REQUIRE(csv && out);
    csv = realloc(csv, len + 1);
    csv[len] = 0;
    int rows = 0;
    char *save = NULL;
    for (char *line = strtok_r(csv, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char file[256], pdq[65];
        int q;
        if (sscanf(line, "%255[^,],%64[0-9a-f],%d", file, pdq, &q) != 3)
            continue;
        rows++;
        /* The line for this file: "pdq quality md5 sha256 file". */
        char want[512];
        snprintf(want, sizeof want, "%s %d ", pdq, q);
        char *hit = NULL;
        for (char *p = out; (p = strstr(p, want)) != NULL; p++) {
            char *eol = strchr(p, '\n');
            size_t fl = strlen(file);
            if (eol && (size_t)(eol - p) > fl &&
                strncmp(eol - fl, file, fl) == 0 && eol[-(long)fl - 1] == ' ') {
                hit = p;
                break;
            }
        }
        CHECK_MSG(hit != NULL, "no line '%s... %s'", want, file);
    }
    CHECK_EQ(rows, 48);
    free(csv);
    drop();
}

TEST(digests_match_coreutils)
{
    const char *f = tu_path("%s/pdq/images/pytx-rgb.jpeg", tu_vectors());
    char *md5 = NULL, *sha = NULL;
    REQUIRE(tu_run(&md5, "md5sum '%s' | cut -c1-32", f) == 0);
    REQUIRE(tu_run(&sha, "sha256sum '%s' | cut -c1-64", f) == 0);
    REQUIRE(tu_run(&out, "'%s' hash '%s'", tu_cordon_bin(), f) == 0);
    md5[32] = 0;
    sha[64] = 0;
    char p[65], m[33], s[65], file[512];
    int q;
    REQUIRE(sscanf(out, "%64s %d %32s %64s %511s", p, &q, m, s, file) == 5);
    CHECK_STREQ(m, md5);
    CHECK_STREQ(s, sha);
    CHECK_STREQ(file, f);
    free(md5);
    free(sha);
    drop();
}

TEST(json_lines)
{
    const char *f = tu_path("%s/pdq/images/bridge-mods_aaa-orig.jpg",
                            tu_vectors());
    REQUIRE(tu_run(&out, "'%s' hash --json --dihedral '%s' '%s'",
                   tu_cordon_bin(), f, f) == 0);
    char *nl = strchr(out, '\n');
    REQUIRE(nl);
    *nl = 0;
    CHECK(strchr(nl + 1, '\n') != NULL); /* one line per file */
    json_error_t err;
    json_t *o = json_loads(out, 0, &err);
    REQUIRE(o);
    CHECK_STREQ(json_string_value(json_object_get(o, "file")), f);
    CHECK_STREQ(json_string_value(json_object_get(o, "type")), "image");
    CHECK_STREQ(
        json_string_value(json_object_get(o, "pdq")),
        "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22");
    CHECK_EQ(json_integer_value(json_object_get(o, "quality")), 100);
    CHECK_STREQ(json_string_value(json_object_get(o, "md5")),
                "d35c785545392755e7e4164457657269");
    CHECK_EQ(strlen(json_string_value(json_object_get(o, "sha256"))), 64);
    CHECK_EQ(json_integer_value(json_object_get(o, "width")), 1600);
    CHECK_EQ(json_integer_value(json_object_get(o, "height")), 1004);
    json_t *d = json_object_get(o, "dihedral");
    REQUIRE(json_is_object(d));
    CHECK_EQ(json_object_size(d), 7);
    static const char *keys[] = {"rot90", "rot180", "rot270", "flipx",
                                 "flipy", "flipplus1", "flipminus1"};
    for (int i = 0; i < 7; i++)
        CHECK_EQ(strlen(json_string_value(json_object_get(d, keys[i]))), 64);
    json_decref(o);
    drop();
}

TEST(bad_file_reported_others_hashed)
{
    const char *dir = tu_tmpdir();
    tu_write_file(tu_path("%s/empty.jpg", dir), "", 0);
    tu_write_file(tu_path("%s/junk.png", dir), "not a png at all", 16);
    char *err = NULL;
    int rc = tu_run(&out,
                    "'%s' hash '%s/empty.jpg' '%s/pdq/images/pytx-rgb.jpeg' "
                    "'%s/junk.png' '%s/missing.jpg' 2>'%s/err.txt'",
                    tu_cordon_bin(), dir, tu_vectors(), dir, dir, dir);
    CHECK_EQ(rc, 2);
    CHECK(strstr(out, "fb4eed46cb8a6c78819ca06b756c541f7b07ef6d02c82fccd00f8"
                      "62166272cda 100 ") != NULL);
    size_t n;
    err = (char *)tu_read_file(tu_path("%s/err.txt", dir), &n);
    REQUIRE(err);
    err = realloc(err, n + 1);
    err[n] = 0;
    CHECK(strstr(err, "empty.jpg: empty input") != NULL);
    CHECK(strstr(err, "junk.png: unsupported") != NULL);
    CHECK(strstr(err, "missing.jpg: No such file") != NULL);
    free(err);
    drop();
}

TEST(directories_and_stdin)
{
    const char *dir = tu_tmpdir();
    REQUIRE(tu_run(NULL, "mkdir -p '%s/tree/sub' && cp '%s/pdq/images/pytx-rgb.jpeg' "
                         "'%s/tree/a.jpg' && cp '%s/pdq/images/pytx-LA.png' "
                         "'%s/tree/sub/b.png'",
                   dir, tu_vectors(), dir, tu_vectors(), dir) == 0);
    REQUIRE(tu_run(&out, "'%s' hash '%s/tree' | wc -l", tu_cordon_bin(), dir) ==
            0);
    CHECK_EQ(atoi(out), 1);
    drop();
    REQUIRE(tu_run(&out, "'%s' hash -r '%s/tree' | wc -l", tu_cordon_bin(),
                   dir) == 0);
    CHECK_EQ(atoi(out), 2);
    drop();
    REQUIRE(tu_run(&out, "'%s' hash - < '%s/tree/a.jpg'", tu_cordon_bin(),
                   dir) == 0);
    CHECK(strncmp(out, "fb4eed46cb8a6c78", 16) == 0);
    CHECK(strstr(out, " -\n") != NULL);
    drop();
}

TEST(help_version_usage)
{
    CHECK_EQ(tu_run(&out, "'%s' --help", tu_cordon_bin()), 0);
    CHECK(strstr(out, "hash") != NULL);
    drop();
    CHECK_EQ(tu_run(&out, "'%s' hash --help", tu_cordon_bin()), 0);
    CHECK(strstr(out, "usage: cordon hash") != NULL);
    drop();
    CHECK_EQ(tu_run(&out, "'%s' --version", tu_cordon_bin()), 0);
    CHECK(strncmp(out, "cordon ", 7) == 0);
    drop();
    CHECK_EQ(tu_run(NULL, "'%s' hash --no-such-flag x 2>/dev/null",
                    tu_cordon_bin()),
             2);
    CHECK_EQ(tu_run(NULL, "'%s' hash 2>/dev/null", tu_cordon_bin()), 2);
    CHECK_EQ(tu_run(NULL, "'%s' frobnicate 2>/dev/null", tu_cordon_bin()), 2);
    CHECK_EQ(tu_run(NULL, "'%s' hash --max-pixels 1000 '%s/pdq/images/pytx-rgb.jpeg' 2>/dev/null",
                    tu_cordon_bin(), tu_vectors()),
             2);
}

int main(int argc, char **argv)
{
    (void)argc;
    th_init(argv[0]);
    RUN(text_output_matches_vectors);
    RUN(digests_match_coreutils);
    RUN(json_lines);
    RUN(bad_file_reported_others_hashed);
    RUN(directories_and_stdin);
    RUN(help_version_usage);
    return TH_END();
}
