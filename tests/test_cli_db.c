/*
 * The database commands end to end (bank, add, add-hash, ls, show, rm,
 * disable, enable, stats, import, export): the real binary on temporary
 * databases, checked against the PDQ reference vectors, md5sum, and
 * against each other (export -> import round trips).
 *
 * Every cordon process costs a dynamic load of ~140 libraries (FFmpeg),
 * a good part of a second under ASan on a busy machine, so the tests are
 * one scenario on a shared database: each test builds on the state the
 * previous ones left (REQUIREs stop a test whose premise failed), and each
 * invocation is checked for as much as it shows.
 */
#include <jansson.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <time.h>

#include "harness.h"
#include "util.h"

/* Small reference images, quick to hash even under ASan, in sorted order
 * (the order add visits a directory, hence the item ids 1..10). Three
 * have a quality below 50. */
static const char *const small_images[] = {
    "bridge-mods_shrink-a-lot.jpg",
    "bridge-mods_square-128x128.jpg",
    "misc-images_small.jpg",
    "misc-images_wee.jpg",
    "pytx-rgb.jpeg",
    "reg-test-input_labelme-subset_q0003.jpg",
    "reg-test-input_labelme-subset_q0004.jpg",
    "reg-test-input_labelme-subset_q0122.jpg",
    "reg-test-input_labelme-subset_q0291.jpg",
    "reg-test-input_labelme-subset_q0746.jpg",
};
#define NSMALL 10

/* Hashes for add-hash; PDQ_A/SHA_A are not those of any image. */
#define PDQ_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define PDQ_LOW                                                                \
    "00000000000000000000000000000000000000000000000000000000000000ff"
#define MD5_A "0000000000000000000000000000000a"
#define SHA_A "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define VPDQ_A                                                                 \
    "[\"" PDQ_A ",100,0.0\", \"fedcba9876543210fedcba9876543210fedcba98765432" \
    "10fedcba9876543210,90,1.0\"]"

static char *out, *err;
static const char *db;  /* the shared database */
static const char *dir; /* the image directory added to it */

static void drop(void)
{
    free(out);
    free(err);
    out = err = NULL;
}

/* A copy of a string that outlives tu_path()'s rotating buffers. */
static const char *keep(const char *s)
{
    static char bufs[32][1024];
    static unsigned next;
    char *b = bufs[next++ % 32];
    snprintf(b, sizeof bufs[0], "%s", s);
    return b;
}

/* Runs `cordon ARGS` (a shell fragment) with stdout in `out` and stderr
 * in `err`; returns the exit status. */
__attribute__((format(printf, 1, 2))) static int cordon(const char *fmt, ...)
{
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    drop();
    char errf[1024];
    snprintf(errf, sizeof errf, "%s/stderr.txt", tu_tmpdir());
    int rc = tu_run(&out, "'%s' %s 2>'%s'", tu_cordon_bin(), args, errf);
    size_t n = 0;
    err = (char *)tu_read_file(errf, &n);
    if (err) {
        err = realloc(err, n + 1);
        err[n] = 0;
    }
    if (!out)
        out = calloc(1, 1);
    if (!err)
        err = calloc(1, 1);
    return rc;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; s && *s; s++)
        n += *s == '\n';
    return n;
}

/* The line of text starting with prefix, as a static copy; NULL if none. */
static const char *line_with(const char *text, const char *prefix)
{
    static char buf[2048];
    size_t pl = strlen(prefix);
    for (const char *p = text; p && *p;) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n >= pl && strncmp(p, prefix, pl) == 0) {
            if (n >= sizeof buf)
                n = sizeof buf - 1;
            memcpy(buf, p, n);
            buf[n] = 0;
            return buf;
        }
        p = e ? e + 1 : NULL;
    }
    return NULL;
}

/* Value of a "key: value" line of show/stats text; static buffer. */
static const char *field(const char *text, const char *key)
{
    static char val[1024];
    const char *l = line_with(text, tu_path("%s: ", key));
    if (!l)
        return NULL;
    snprintf(val, sizeof val, "%s", l + strlen(key) + 2);
    return val;
}

/* Reference PDQ hex and quality of a vector image, from expected.csv. */
static int expected_pdq(const char *file, char hex[65], int *quality)
{
    size_t len;
    char *csv = (char *)tu_read_file(
        tu_path("%s/pdq/expected.csv", tu_vectors()), &len);
    if (!csv)
        return -1;
    csv = realloc(csv, len + 1);
    csv[len] = 0;
    int found = -1;
    char *save = NULL;
    for (char *line = strtok_r(csv, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char name[256];
        if (sscanf(line, "images/%255[^,],%64[0-9a-f],%d", name, hex,
                   quality) == 3 &&
            strcmp(name, file) == 0) {
            found = 0;
            break;
        }
    }
    free(csv);
    return found;
}

/* The sorted (type, value) signal set of a database, as export --format
 * local lines. Caller frees. */
static char *signal_set(const char *path)
{
    char *s = NULL;
    if (tu_run(&s, "'%s' export --db '%s' --format local | sort",
               tu_cordon_bin(), path) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

/* ------------------------------------------------------------------ */

TEST(bank_commands)
{
    CHECK_EQ(cordon("bank create A --db '%s' --label entity:isis "
                    "--label type:video --action block",
                    db),
             0);
    CHECK_STREQ(out, "created bank A\n");
    CHECK_EQ(cordon("bank create B --db '%s'", db), 0);
    CHECK_EQ(cordon("bank create A --db '%s' --label nocolon", db), 2);
    CHECK(strstr(err, "cordon: bank: bad label 'nocolon': expected "
                      "key:value") != NULL);
    CHECK_EQ(cordon("bank create A --db '%s'", db), 2);
    CHECK_STREQ(err, "cordon: bank create: bank 'A' already exists\n");
    CHECK_EQ(cordon("bank disable B --db '%s'", db), 0);
    CHECK_STREQ(out, "disabled bank B\n");
    CHECK_EQ(cordon("bank ls --db '%s'", db), 0);
    CHECK_STREQ(out, "A enabled items=0 tombstones=0 action=block "
                     "labels=entity:isis,type:video\n"
                     "B disabled items=0 tombstones=0 action=- labels=-\n");
    CHECK_EQ(cordon("bank enable B --db '%s'", db), 0);
    CHECK_EQ(cordon("bank ls --db '%s' --json", db), 0);
    REQUIRE(count_lines(out) == 2);
    json_t *o = json_loads(out, JSON_DISABLE_EOF_CHECK, NULL);
    REQUIRE(o);
    CHECK_STREQ(json_string_value(json_object_get(o, "name")), "A");
    CHECK(json_is_true(json_object_get(o, "enabled")));
    CHECK_STREQ(json_string_value(json_object_get(o, "action")), "block");
    CHECK_EQ(json_array_size(json_object_get(o, "labels")), 2);
    CHECK_EQ(json_integer_value(json_object_get(o, "items")), 0);
    json_decref(o);
    CHECK(strstr(out, "\n{\"id\":2,\"name\":\"B\",\"enabled\":true,") != NULL);
    drop();
}

/* Adds the image directory; every stored hash must be the reference one.
 * The directory holds a copy of one image, a duplicate within the add. */
TEST(add_directory)
{
    int rc = cordon("add --db '%s' --bank A --label entity:test "
                    "--note 'seen on X' --added-by alice '%s'",
                    db, dir);
    CHECK_EQ(rc, 0);
    /* Sorted path order, ids following it, then the summary. */
    const char *p = out;
    for (int i = 0; i < NSMALL; i++) {
        const char *want =
            tu_path("%s/%s: added item %d\n", dir, small_images[i], i + 1);
        CHECK_MSG(strncmp(p, want, strlen(want)) == 0, "want %s", want);
        p = strchr(p, '\n');
        REQUIRE(p);
        p++;
    }
    CHECK_STREQ(p, tu_path("%s/zz-copy.jpeg: duplicate of item 5\n"
                           "added 10, duplicates 1, failed 0\n",
                           dir));
    /* Warnings for the three low-quality images (qualities 0, 3, 4). */
    CHECK_EQ(count_lines(err), 3);
    CHECK(strstr(err,
                 "misc-images_small.jpg: warning: PDQ quality 0 is "
                 "below 50: stored, but not matched by default\n") != NULL);
    CHECK(strstr(err, "q0003.jpg: warning: PDQ quality 3 ") != NULL);
    CHECK(strstr(err, "q0004.jpg: warning: PDQ quality 4 ") != NULL);

    /* One hashing thread gives the same output (and ids) as two. */
    char *two = strdup(out);
    const char *db1 = keep(tu_path("%s/j1.db", tu_tmpdir()));
    CHECK_EQ(cordon("bank create A --db '%s'", db1), 0);
    CHECK_EQ(cordon("add --db '%s' --bank A -j 1 '%s'", db1, dir), 0);
    CHECK_STREQ(out, two);
    free(two);

    /* ls: one line per item, with the canonical hashes. */
    CHECK_EQ(cordon("ls --db '%s'", db), 0);
    CHECK_EQ(count_lines(out), NSMALL);
    char *save = NULL, *copy = strdup(out);
    int checked = 0;
    for (char *line = strtok_r(copy, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        unsigned long long id;
        char bank[64], state[64], pdq[65], md5[33], sha[65], path[1024];
        int q, end = 0;
        int n = sscanf(line,
                       "%llu %63s %63s pdq:%64[0-9a-f],%d md5:%32[0-9a-f] "
                       "sha256:%64[0-9a-f] %1023s%n",
                       &id, bank, state, pdq, &q, md5, sha, path, &end);
        CHECK_MSG(n == 8 && !line[end], "ls line '%s'", line);
        if (n != 8 || id < 1 || id > NSMALL)
            continue;
        CHECK_STREQ(bank, "A");
        CHECK_STREQ(state, "active");
        CHECK_EQ(strlen(sha), 64);
        CHECK_STREQ(path, tu_path("%s/%s", dir, small_images[id - 1]));
        char want[65];
        int wq;
        REQUIRE(expected_pdq(small_images[id - 1], want, &wq) == 0);
        CHECK_STREQ(pdq, want);
        CHECK_EQ(q, wq);
        checked++;
    }
    free(copy);
    CHECK_EQ(checked, NSMALL);

    /* show: every field; the MD5 as md5sum computes it. */
    char *md5 = NULL;
    REQUIRE(tu_run(&md5, "md5sum '%s/pytx-rgb.jpeg' | cut -c1-32", dir) == 0);
    md5[32] = 0;
    CHECK_EQ(cordon("show --db '%s' 5", db), 0);
    CHECK_STREQ(field(out, "id"), "5");
    CHECK_STREQ(field(out, "bank"), "A");
    CHECK_STREQ(field(out, "state"), "active");
    CHECK_STREQ(field(out, "disable_until"), "-");
    CHECK_STREQ(field(out, "labels"), "entity:test");
    CHECK_STREQ(field(out, "note"), "seen on X");
    CHECK_STREQ(field(out, "added_by"), "alice");
    CHECK_STREQ(field(out, "source"), "file");
    CHECK_STREQ(field(out, "source_name"), tu_path("%s/pytx-rgb.jpeg", dir));
    CHECK_STREQ(field(out, "pdq"), "fb4eed46cb8a6c78819ca06b756c541f7b07ef6d"
                                   "02c82fccd00f862166272cda quality 100");
    CHECK_STREQ(field(out, "md5"), md5);
    free(md5);
    const char *v = field(out, "sha256");
    CHECK(v && strlen(v) == 64);
    v = field(out, "added_at");
    CHECK(v && strlen(v) == 20 && v[4] == '-' && v[19] == 'Z');

    CHECK_EQ(cordon("show --db '%s' --json 5", db), 0);
    json_t *o = json_loads(out, 0, NULL);
    REQUIRE(o);
    CHECK_EQ(json_integer_value(json_object_get(o, "id")), 5);
    CHECK_STREQ(json_string_value(json_object_get(o, "added_by")), "alice");
    CHECK_STREQ(json_string_value(json_object_get(o, "note")), "seen on X");
    CHECK(json_is_null(json_object_get(o, "disable_until")));
    json_t *sigs = json_object_get(o, "signals");
    CHECK_EQ(json_array_size(sigs), 3);
    json_t *s0 = json_array_get(sigs, 0);
    CHECK_STREQ(json_string_value(json_object_get(s0, "type")), "pdq");
    CHECK_EQ(json_integer_value(json_object_get(s0, "quality")), 100);
    json_decref(o);
    drop();
}

TEST(add_failures)
{
    /* Bad files are reported and skipped; a known file is a duplicate. */
    const char *t = tu_tmpdir();
    tu_write_file(tu_path("%s/junk.jpg", t), "not an image", 12);
    tu_write_file(tu_path("%s/empty.png", t), "", 0);
    CHECK_EQ(cordon("add --db '%s' --bank A --json '%s/junk.jpg' "
                    "'%s/missing.jpg' '%s/empty.png' '%s/misc-images_wee.jpg'",
                    db, t, t, t, dir),
             2);
    CHECK(strstr(err, "/junk.jpg: unsupported or unrecognised format\n") !=
          NULL);
    CHECK(strstr(err, "/missing.jpg: No such file or directory\n") != NULL);
    CHECK(strstr(err, "/empty.png: empty input\n") != NULL);
    /* JSON Lines: one object per file hashed, then the summary. */
    REQUIRE(count_lines(out) == 4);
    json_t *o[4];
    const char *p = out;
    for (int i = 0; i < 4; i++) {
        o[i] = json_loads(p, JSON_DISABLE_EOF_CHECK, NULL);
        p = strchr(p, '\n') + 1;
    }
    REQUIRE(o[0] && o[1] && o[2] && o[3]);
    CHECK_STREQ(json_string_value(json_object_get(o[0], "status")), "failed");
    CHECK_STREQ(json_string_value(json_object_get(o[0], "error")),
                "unsupported or unrecognised format");
    CHECK_STREQ(json_string_value(json_object_get(o[1], "status")), "failed");
    CHECK_STREQ(json_string_value(json_object_get(o[2], "status")),
                "duplicate");
    CHECK_EQ(json_integer_value(json_object_get(o[2], "id")), 4);
    CHECK_STREQ(json_string_value(json_object_get(o[2], "pdq")),
                "6227401f601ff4ccafcc9fad4b0d95d371a2eb7265a3285234d228ca94"
                "deeb2d");
    json_t *sum = json_object_get(o[3], "summary");
    CHECK_EQ(json_integer_value(json_object_get(sum, "added")), 0);
    CHECK_EQ(json_integer_value(json_object_get(sum, "duplicates")), 1);
    CHECK_EQ(json_integer_value(json_object_get(sum, "failed")), 3);
    for (int i = 0; i < 4; i++)
        json_decref(o[i]);

    CHECK_EQ(cordon("add --db '%s' --bank NOPE '%s'", db, dir), 2);
    CHECK_STREQ(err, "cordon: add: no bank 'NOPE' (create it with 'cordon "
                     "bank create NOPE')\n");
    CHECK_STREQ(out, "");
    drop();
}

TEST(add_hash)
{
    CHECK_EQ(cordon("add-hash --db '%s' --bank B pdq " PDQ_A " --quality 90 "
                    "--source-name partnerA --label category:terrorism",
                    db),
             0);
    CHECK_STREQ(out, "added item 11\n");
    /* The same hash (upper case, quality in the value) is a duplicate. */
    CHECK_EQ(cordon("add-hash --db '%s' --bank B pdq "
                    "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF01234567"
                    "89ABCDEF,80",
                    db),
             0);
    CHECK_STREQ(out, "duplicate of item 11\n");
    CHECK_EQ(cordon("add-hash --db '%s' --bank B md5 " MD5_A, db), 0);
    CHECK_STREQ(out, "added item 12\n");
    CHECK_EQ(cordon("add-hash --db '%s' --bank B --json sha256 " SHA_A, db), 0);
    CHECK_STREQ(out, "{\"status\":\"added\",\"id\":13}\n");
    CHECK_EQ(cordon("add-hash --db '%s' --bank B pdq " PDQ_LOW ",10", db), 0);
    CHECK_STREQ(out, "added item 14\n");
    CHECK_STREQ(err, "cordon: add-hash: warning: PDQ quality 10 is below "
                     "50: stored, but not matched by default\n");
    CHECK_EQ(cordon("add-hash --db '%s' --bank B vpdq '" VPDQ_A "'", db), 0);
    CHECK_STREQ(out, "added item 15\n");

    /* Bad values: exit 2 and a message naming the problem. */
    CHECK_EQ(cordon("add-hash --db '%s' --bank B md5 abc", db), 2);
    CHECK_STREQ(err, "cordon: add-hash: bad md5 value 'abc': malformed hash "
                     "(expected 32 hex digits)\n");
    static const char *const bad[] = {
        "pdq 0123456789abcdef",
        "pdq z123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "pdq " PDQ_A ",101",
        "sha256 " MD5_A,
        "sha1 " MD5_A,
        "md5 " MD5_A " --quality 50",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_MSG(cordon("add-hash --db '%s' --bank B %s", db, bad[i]) == 2,
                  "accepted %s", bad[i]);
        CHECK_MSG(strncmp(err, "cordon: add-hash: ", 18) == 0, "%s: %s", bad[i],
                  err);
    }

    CHECK_EQ(cordon("show --db '%s' 11", db), 0);
    CHECK_STREQ(field(out, "bank"), "B");
    CHECK_STREQ(field(out, "pdq"), PDQ_A " quality 90");
    CHECK_STREQ(field(out, "source"), "exchange");
    CHECK_STREQ(field(out, "source_name"), "partnerA");
    CHECK_STREQ(field(out, "labels"), "category:terrorism");
    CHECK(field(out, "md5") == NULL);
    drop();
}

TEST(rm_disable_enable)
{
    CHECK_EQ(cordon("rm --db '%s' 2", db), 0);
    CHECK_STREQ(out, "removed item 2\n");
    CHECK_EQ(cordon("rm --db '%s' 2 99", db), 2);
    CHECK_STREQ(err, "cordon: rm: item 2 is deleted\n"
                     "cordon: rm: no item 99\n");

    /* A time in the past is refused; future times in each syntax. */
    CHECK_EQ(cordon("disable --db '%s' --until 2001-01-01T00:00:00Z 1", db), 2);
    CHECK(strstr(err, "in the past") != NULL);
    CHECK_EQ(cordon("disable --db '%s' --until 2100-01-02T03:04:05Z 1", db), 0);
    CHECK_STREQ(out, "disabled item 1 until 2100-01-02T03:04:05Z\n");
    time_t before = time(NULL);
    CHECK_EQ(cordon("disable --db '%s' --until +7d 3", db), 0);
    time_t after = time(NULL);
    CHECK_EQ(cordon("disable --db '%s' 4", db), 0);
    CHECK_STREQ(out, "disabled item 4 indefinitely\n");
    CHECK_EQ(cordon("disable --db '%s' --until 4102444800 6", db), 0);
    CHECK_STREQ(out, "disabled item 6 until 2100-01-01T00:00:00Z\n");
    CHECK_EQ(cordon("disable --db '%s' --until 2100-02-30 7", db), 2);
    CHECK_EQ(cordon("disable --db '%s' --until +7y 7", db), 2);

    CHECK_EQ(cordon("ls --db '%s' --all --limit 6", db), 0);
    CHECK_EQ(count_lines(out), 6);
    CHECK(line_with(out, "1 A disabled-until:2100-01-02T03:04:05Z pdq:"));
    CHECK(line_with(out, "2 A deleted pdq:"));
    CHECK(line_with(out, "4 A disabled pdq:"));
    CHECK(line_with(out, "5 A active pdq:"));
    CHECK(line_with(out, "6 A disabled-until:2100-01-01T00:00:00Z pdq:"));
    const char *l3 = line_with(out, "3 A disabled-until:");
    REQUIRE(l3);
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    REQUIRE(strptime(l3 + strlen("3 A disabled-until:"), "%Y-%m-%dT%H:%M:%SZ",
                     &tm) != NULL);
    long long until = (long long)timegm(&tm);
    CHECK_GE(until, (long long)before + 7 * 86400);
    CHECK_LE(until, (long long)after + 7 * 86400);

    CHECK_EQ(cordon("show --db '%s' 2", db), 0);
    CHECK_STREQ(field(out, "state"), "deleted");
    CHECK(field(out, "md5") != NULL);

    CHECK_EQ(cordon("enable --db '%s' 1 4", db), 0);
    CHECK_STREQ(out, "enabled item 1\nenabled item 4\n");
    CHECK_EQ(cordon("ls --db '%s' --limit 4", db), 0);
    CHECK_EQ(count_lines(out), 4);
    CHECK(line_with(out, "1 A active pdq:"));
    CHECK(!line_with(out, "2 "));
    CHECK(line_with(out, "3 A disabled-until:"));
    CHECK(line_with(out, "4 A active pdq:"));
    CHECK(line_with(out, "5 A active pdq:"));
    drop();
}

TEST(stats_counts)
{
    CHECK_EQ(cordon("stats --db '%s'", db), 0);
    CHECK_STREQ(field(out, "path"), db);
    CHECK_STREQ(field(out, "banks"), "2");
    /* 10 images - 1 deleted + 5 hashes */
    CHECK_STREQ(field(out, "items"), "14");
    CHECK_STREQ(field(out, "tombstones"), "1");
    CHECK_STREQ(field(out, "signals.pdq"), "11");
    CHECK_STREQ(field(out, "signals.md5"), "10");
    CHECK_STREQ(field(out, "signals.sha256"), "10");
    CHECK_STREQ(field(out, "signals.vpdq"), "1");
    /* 2 bank adds + 2 bank updates + 15 items + rm + 4 disables + 2
     * enables */
    CHECK_STREQ(field(out, "last_seq"), "26");
    struct stat st;
    REQUIRE(stat(db, &st) == 0);
    const char *fs = field(out, "file_size");
    CHECK_EQ(fs ? atoll(fs) : -1, (long long)st.st_size);
    CHECK_EQ(cordon("stats --db '%s' --json", db), 0);
    json_t *o = json_loads(out, 0, NULL);
    REQUIRE(o);
    CHECK_EQ(json_integer_value(json_object_get(o, "items")), 14);
    CHECK_EQ(json_integer_value(json_object_get(o, "tombstones")), 1);
    CHECK_EQ(json_integer_value(
                 json_object_get(json_object_get(o, "signals"), "pdq")),
             11);
    CHECK_EQ(json_integer_value(json_object_get(o, "last_seq")), 26);
    json_decref(o);
    drop();
}

TEST(export_import_round_trip)
{
    char *orig = signal_set(db);
    REQUIRE(orig);
    /* 9 live images x 3 signals + 5 hashes */
    CHECK_EQ(count_lines(orig), 9 * 3 + 5);
    CHECK(strstr(orig, "vpdq [\"" PDQ_A ",100,") != NULL);
    CHECK(strstr(orig, "md5 " MD5_A "\n") != NULL);

    /* te-csv keeps the banks. */
    const char *csv = keep(tu_path("%s/all.csv", tu_tmpdir()));
    CHECK_EQ(cordon("export --db '%s' -o '%s'", db, csv), 0);
    CHECK(strncmp(out, "exported 14 items (32 rows) to ", 31) == 0);
    const char *db2 = keep(tu_path("%s/from_csv.db", tu_tmpdir()));
    CHECK_EQ(cordon("import --db '%s' --format te-csv '%s'", db2, csv), 0);
    CHECK_STREQ(out, "added 32, duplicates 0, bad lines 0, banks created 2\n");
    char *got = signal_set(db2);
    CHECK_STREQ(got, orig);
    free(got);
    /* Importing again only finds duplicates. */
    CHECK_EQ(cordon("import --db '%s' '%s'", db2, csv), 0);
    CHECK_STREQ(out, "added 0, duplicates 32, bad lines 0\n");

    /* local: one bank, through stdin. */
    const char *txt = keep(tu_path("%s/all.txt", tu_tmpdir()));
    CHECK_EQ(cordon("export --db '%s' -o '%s'", db, txt), 0);
    const char *db3 = keep(tu_path("%s/from_local.db", tu_tmpdir()));
    CHECK_EQ(
        cordon("import --db '%s' --format local --bank ALL - < '%s'", db3, txt),
        0);
    CHECK_STREQ(out, "added 32, duplicates 0, bad lines 0, banks created 1\n");
    got = signal_set(db3);
    CHECK_STREQ(got, orig);
    free(got);
    free(orig);

    /* Filters: bank, type, python-threatexchange names, since. */
    CHECK_EQ(cordon("export --db '%s' --bank B --type sha256 --pytx-names "
                    "--format local",
                    db),
             0);
    CHECK_STREQ(out, "video_sha256 " SHA_A "\n");
    /* The last change (seq 26) was enabling item 4. */
    CHECK_EQ(cordon("export --db '%s' --since 25 --format local", db), 0);
    CHECK_STREQ(out, "pdq 6227401f601ff4ccafcc9fad4b0d95d371a2eb7265a328523"
                     "4d228ca94deeb2d\n"
                     "md5 8bbbaa9540800e378beadc8bbef7bb32\n"
                     "sha256 05636c50d0c2ffe3a820f964eaba35b404deadd10538fe45"
                     "2ad9fb16fdd823d7\n");
    drop();
}

TEST(import_bad_lines)
{
    const char *csv = keep(tu_path("%s/bad.csv", tu_tmpdir()));
    const char *text = "signal_type,signal_str,collab,category,tags\n"
                       "md5,00000000000000000000000000000001,X,,\n"
                       "md5,zz,X,,\n"
                       "pdq," PDQ_A ",X,cat,t1 k:v\n"
                       "sha1,00,X,,\n"
                       "md5,00000000000000000000000000000002,X,,\n";
    REQUIRE(tu_write_file(csv, text, strlen(text)) == 0);
    const char *db4 = keep(tu_path("%s/bad.db", tu_tmpdir()));

    /* Strict: both bad lines reported with their numbers, nothing written. */
    CHECK_EQ(cordon("import --db '%s' '%s'", db4, csv), 2);
    CHECK_STREQ(err, tu_path("%s:3: bad md5 signal: malformed hash\n"
                             "%s:5: unknown signal type \"sha1\"\n"
                             "cordon: import: %s: 2 bad lines: nothing "
                             "imported (--skip-bad-lines imports the good "
                             "lines)\n",
                             csv, csv, csv));
    CHECK_STREQ(out, "");
    CHECK_EQ(cordon("stats --db '%s'", db4), 0);
    CHECK_STREQ(field(out, "banks"), "0");
    CHECK_STREQ(field(out, "items"), "0");

    /* --skip-bad-lines imports the rest, and still exits 2. */
    CHECK_EQ(cordon("import --db '%s' --skip-bad-lines '%s'", db4, csv), 2);
    CHECK(strstr(err, tu_path("%s:3: ", csv)) != NULL);
    CHECK(strstr(err, tu_path("%s:5: ", csv)) != NULL);
    CHECK_STREQ(out, "added 3, duplicates 0, bad lines 2, banks created 1\n");

    /* local format: line numbers count comments and blank lines. */
    const char *loc = keep(tu_path("%s/bad.list", tu_tmpdir()));
    const char *ltext = "# comment\n"
                        "md5 00000000000000000000000000000009\n"
                        "\n"
                        "pdq 1234\n";
    REQUIRE(tu_write_file(loc, ltext, strlen(ltext)) == 0);
    CHECK_EQ(cordon("import --db '%s' --format local --bank X '%s'", db4, loc),
             2);
    CHECK(strstr(err, tu_path("%s:4: bad pdq signal", loc)) != NULL);
    CHECK_EQ(count_lines(err), 2);
    drop();
}

TEST(database_path)
{
    const char *d = keep(tu_path("%s/dbpath", tu_tmpdir()));
    REQUIRE(tu_run(NULL, "mkdir -p '%s'", d) == 0);
    /* A read-only command on a missing database: an error, no file. */
    CHECK_EQ(cordon("ls --db '%s/none.db'", d), 2);
    CHECK_STREQ(err, tu_path("cordon: %s/none.db: no database here (commands "
                             "that write create one, e.g. 'cordon bank create "
                             "NAME'; choose another with --db or "
                             "$CORDON_DB)\n",
                             d));
    struct stat st;
    CHECK(stat(tu_path("%s/none.db", d), &st) != 0);

    /* $CORDON_DB; ./cordon.db without it; --db over it; cordon --db. */
    drop();
    REQUIRE(tu_run(&out,
                   "cd '%s' && CORDON_DB=env.db '%s' bank create ENV && "
                   "'%s' bank create CWD && "
                   "CORDON_DB=none.db '%s' bank ls --db env.db && "
                   "'%s' --db env.db ls --bank ENV",
                   d, tu_cordon_bin(), tu_cordon_bin(), tu_cordon_bin(),
                   tu_cordon_bin()) == 0);
    CHECK_STREQ(out, "created bank ENV\ncreated bank CWD\n"
                     "ENV enabled items=0 tombstones=0 action=- labels=-\n");
    CHECK(stat(tu_path("%s/cordon.db", d), &st) == 0);
    CHECK(stat(tu_path("%s/none.db", d), &st) != 0);

    /* Not a database. */
    tu_write_file(tu_path("%s/junk.db", d), "hello", 5);
    CHECK_EQ(cordon("stats --db '%s/junk.db'", d), 2);
    CHECK(strncmp(err, tu_path("cordon: %s/junk.db: ", d),
                  strlen(tu_path("cordon: %s/junk.db: ", d))) == 0);
    drop();
}

TEST(help_everywhere)
{
    static const char *const cmds[] = {
        "bank",    "add",    "add-hash", "ls",     "show",   "rm",
        "disable", "enable", "stats",    "import", "export",
    };
    enum { N = sizeof cmds / sizeof cmds[0] };
    char *top = NULL;
    REQUIRE(tu_run(&top, "'%s' --help", tu_cordon_bin()) == 0);
    for (int i = 0; i < N; i++) {
        CHECK_EQ(cordon("%s --help", cmds[i]), 0);
        const char *u = tu_path("usage: cordon %s ", cmds[i]);
        CHECK_MSG(strncmp(out, u, strlen(u)) == 0, "%s --help: %.60s", cmds[i],
                  out);
        CHECK(strstr(out, "--db PATH") != NULL);
        CHECK(strstr(out, "Exit status") != NULL);
        CHECK_STREQ(err, "");
        if (strcmp(cmds[i], "import") == 0)
            CHECK(strstr(out, "if any line is bad NOTHING is written") &&
                  strstr(out, "With --skip-bad-lines"));
        CHECK(strstr(top, tu_path("\n  %-12s ", cmds[i])) != NULL);
    }
    free(top);
    /* Usage errors exit 2 with the usage on stderr. */
    CHECK_EQ(cordon("ls --no-such-option"), 2);
    CHECK(strstr(err, "usage: cordon ls") != NULL);
    CHECK_EQ(cordon("show"), 2);
    CHECK(strstr(err, "usage: cordon show") != NULL);
    drop();
}

int main(int argc, char **argv)
{
    (void)argc;
    th_init(argv[0]);
    unsetenv("CORDON_DB");
    static char dbbuf[1024], dirbuf[1024];
    snprintf(dbbuf, sizeof dbbuf, "%s/main.db", tu_tmpdir());
    snprintf(dirbuf, sizeof dirbuf, "%s/imgs", tu_tmpdir());
    db = dbbuf;
    dir = dirbuf;
    char cmd[4096];
    int k =
        snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cd '%s/pdq/images' && cp",
                 dir, tu_vectors());
    for (int i = 0; i < NSMALL; i++)
        k +=
            snprintf(cmd + k, sizeof cmd - (size_t)k, " '%s'", small_images[i]);
    snprintf(cmd + k, sizeof cmd - (size_t)k,
             " '%s/' && cp pytx-rgb.jpeg '%s/zz-copy.jpeg'", dir, dir);
    if (tu_run(NULL, "%s", cmd) != 0) {
        fprintf(stderr, "cannot copy the test images\n");
        return 1;
    }
    RUN(bank_commands);
    RUN(add_directory);
    RUN(add_failures);
    RUN(add_hash);
    RUN(rm_disable_enable);
    RUN(stats_counts);
    RUN(export_import_round_trip);
    RUN(import_bad_lines);
    RUN(database_path);
    RUN(help_everywhere);
    return TH_END();
}
