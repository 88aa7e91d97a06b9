/*
 * The live match index over a database: initial load, incremental adds and
 * deletes, disabled items and banks, disable-until expiry, the quality
 * floor, dihedral queries, agreement with a brute-force scan of the
 * database, and a second process's writes picked up by refresh.
 */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cordon.h"
#include "harness.h"
#include "hdb.h"
#include "hdb_matcher.h"
#include "util.h"

static uint64_t rs = 42;
static uint64_t rnd(void)
{
    uint64_t z = (rs += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static cordon_hash256_t rand_hash(void)
{
    cordon_hash256_t h = {{rnd(), rnd(), rnd(), rnd()}};
    return h;
}

static cordon_hash256_t flip(cordon_hash256_t h, int bits)
{
    for (int i = 0; i < bits; i++) {
        int k = (int)(rnd() % 256);
        /* Distinct bits: flip only unflipped positions of this call. */
        h.w[k >> 6] ^= (uint64_t)1 << (k & 63);
    }
    return h;
}

static hdb_t *fresh_db(const char *name)
{
    hdb_t *db = NULL;
    hdb_opts_t o;
    memset(&o, 0, sizeof o);
    o.nosync = 1;
    if (hdb_open(tu_path("%s/%s", tu_tmpdir(), name), &o, &db) != CORDON_OK)
        return NULL;
    return db;
}

static int make_bank(hdb_t *db, const char *name)
{
    hdb_bank_spec_t b;
    memset(&b, 0, sizeof b);
    b.name = name;
    b.enabled = 1;
    uint32_t id;
    return hdb_bank_create(db, &b, &id);
}

static uint64_t add_pdq(hdb_t *db, const char *bank, cordon_hash256_t h,
                        int quality)
{
    hdb_signal_t s;
    memset(&s, 0, sizeof s);
    s.type = HDB_SIG_PDQ;
    s.pdq = h;
    s.quality = quality;
    hdb_item_spec_t it;
    memset(&it, 0, sizeof it);
    it.bank = bank;
    it.signals = &s;
    it.nsignals = 1;
    hdb_add_result_t r;
    if (hdb_item_add(db, &it, 0, &r) != CORDON_OK)
        return 0;
    return r.id;
}

static int has_item(const hdb_match_results_t *r, uint64_t id, int *dist)
{
    for (size_t i = 0; i < r->count; i++)
        if (r->hits[i].item_id == id) {
            if (dist)
                *dist = r->hits[i].distance;
            return 1;
        }
    return 0;
}

TEST(load_query_and_increments)
{
    hdb_t *db = fresh_db("inc.db");
    REQUIRE(db);
    REQUIRE(make_bank(db, "A") == CORDON_OK);
    cordon_hash256_t base = rand_hash();
    uint64_t a = add_pdq(db, "A", base, 90);
    uint64_t b = add_pdq(db, "A", flip(base, 20), 90);
    uint64_t far = add_pdq(db, "A", rand_hash(), 90);
    REQUIRE(a && b && far);
    hdb_matcher_t *m;
    REQUIRE(hdb_matcher_open(db, &m) == CORDON_OK);
    CHECK_EQ(hdb_matcher_size(m), 3);
    hdb_match_results_t r;
    memset(&r, 0, sizeof r);
    CHECK_EQ(hdb_matcher_query(m, &base, 1, NULL, &r), CORDON_OK);
    int d = -1;
    CHECK(has_item(&r, a, &d));
    CHECK_EQ(d, 0);
    CHECK(has_item(&r, b, &d));
    CHECK_LE(d, 20);
    CHECK(!has_item(&r, far, NULL));
    CHECK_EQ(r.hits[0].item_id, a); /* sorted by distance */

    /* A new item is invisible until refresh, then found. */
    cordon_hash256_t nh = rand_hash();
    uint64_t c = add_pdq(db, "A", nh, 80);
    CHECK_EQ(hdb_matcher_query(m, &nh, 1, NULL, &r), CORDON_OK);
    CHECK(!has_item(&r, c, NULL));
    size_t applied = 0;
    CHECK_EQ(hdb_matcher_refresh(m, &applied), CORDON_OK);
    CHECK_EQ(applied, 1);
    CHECK_EQ(hdb_matcher_query(m, &nh, 1, NULL, &r), CORDON_OK);
    CHECK(has_item(&r, c, NULL));

    /* Delete: a tombstone removes it from the index. */
    CHECK_EQ(hdb_item_remove(db, c, NULL), CORDON_OK);
    CHECK_EQ(hdb_matcher_refresh(m, NULL), CORDON_OK);
    CHECK_EQ(hdb_matcher_query(m, &nh, 1, NULL, &r), CORDON_OK);
    CHECK(!has_item(&r, c, NULL));
    CHECK_EQ(hdb_matcher_size(m), 3);
    /* Nothing changed: refresh applies nothing. */
    CHECK_EQ(hdb_matcher_refresh(m, &applied), CORDON_OK);
    CHECK_EQ(applied, 0);
    hdb_match_results_free(&r);
    hdb_matcher_close(m);
    hdb_close(db);
}

TEST(disabled_items_banks_and_expiry)
{
    hdb_t *db = fresh_db("dis.db");
    REQUIRE(db);
    REQUIRE(make_bank(db, "A") == CORDON_OK);
    REQUIRE(make_bank(db, "B") == CORDON_OK);
    cordon_hash256_t h1 = rand_hash(), h2 = rand_hash(), h3 = rand_hash();
    uint64_t i1 = add_pdq(db, "A", h1, 90);
    uint64_t i2 = add_pdq(db, "B", h2, 90);
    uint64_t i3 = add_pdq(db, "A", h3, 90);
    /* Disabled before the index is built, and after. */
    REQUIRE(hdb_item_set_disable_until(db, i1, (int64_t)time(NULL) + 3600) ==
            CORDON_OK);
    hdb_matcher_t *m;
    REQUIRE(hdb_matcher_open(db, &m) == CORDON_OK);
    hdb_match_results_t r;
    memset(&r, 0, sizeof r);
    CHECK_EQ(hdb_matcher_query(m, &h1, 1, NULL, &r), CORDON_OK);
    CHECK(!has_item(&r, i1, NULL));
    hdb_match_opts_t o;
    hdb_match_opts_default(&o);
    o.include_disabled = 1;
    CHECK_EQ(hdb_matcher_query(m, &h1, 1, &o, &r), CORDON_OK);
    CHECK(has_item(&r, i1, NULL));

    /* Disabling a bank hides its items; enabling shows them again. */
    CHECK_EQ(hdb_bank_set_enabled(db, "B", 0), CORDON_OK);
    CHECK_EQ(hdb_matcher_refresh(m, NULL), CORDON_OK);
    CHECK_EQ(hdb_matcher_query(m, &h2, 1, NULL, &r), CORDON_OK);
    CHECK(!has_item(&r, i2, NULL));
    CHECK_EQ(hdb_bank_set_enabled(db, "B", 1), CORDON_OK);
    CHECK_EQ(hdb_matcher_refresh(m, NULL), CORDON_OK);
    CHECK_EQ(hdb_matcher_query(m, &h2, 1, NULL, &r), CORDON_OK);
    CHECK(has_item(&r, i2, NULL));

    /* A disable-until that passes re-enables the item without any write. */
    CHECK_EQ(hdb_item_set_disable_until(db, i3, (int64_t)time(NULL) + 1),
             CORDON_OK);
    CHECK_EQ(hdb_matcher_refresh(m, NULL), CORDON_OK);
    CHECK_EQ(hdb_matcher_query(m, &h3, 1, NULL, &r), CORDON_OK);
    CHECK(!has_item(&r, i3, NULL));
    sleep(2);
    CHECK_EQ(hdb_matcher_refresh(m, NULL), CORDON_OK);
    CHECK_EQ(hdb_matcher_query(m, &h3, 1, NULL, &r), CORDON_OK);
    CHECK(has_item(&r, i3, NULL));
    /* Enabling explicitly (until = 0) works too. */
    CHECK_EQ(hdb_item_set_disable_until(db, i1, 0), CORDON_OK);
    CHECK_EQ(hdb_matcher_refresh(m, NULL), CORDON_OK);
    CHECK_EQ(hdb_matcher_query(m, &h1, 1, NULL, &r), CORDON_OK);
    CHECK(has_item(&r, i1, NULL));
    hdb_match_results_free(&r);
    hdb_matcher_close(m);
    hdb_close(db);
}

TEST(quality_floor)
{
    hdb_t *db = fresh_db("q.db");
    REQUIRE(db);
    REQUIRE(make_bank(db, "A") == CORDON_OK);
    cordon_hash256_t lo = rand_hash(), unk = rand_hash(), ok = rand_hash();
    uint64_t ilo = add_pdq(db, "A", lo, 49);
    uint64_t iunk = add_pdq(db, "A", unk, HDB_QUALITY_UNKNOWN);
    uint64_t iok = add_pdq(db, "A", ok, 50);
    hdb_matcher_t *m;
    REQUIRE(hdb_matcher_open(db, &m) == CORDON_OK);
    hdb_match_results_t r;
    memset(&r, 0, sizeof r);
    CHECK_EQ(hdb_matcher_query(m, &lo, 1, NULL, &r), CORDON_OK);
    CHECK(!has_item(&r, ilo, NULL));
    CHECK_EQ(hdb_matcher_query(m, &unk, 1, NULL, &r), CORDON_OK);
    CHECK(has_item(&r, iunk, NULL)); /* partners' hashes are trusted */
    CHECK_EQ(hdb_matcher_query(m, &ok, 1, NULL, &r), CORDON_OK);
    CHECK(has_item(&r, iok, NULL));
    hdb_match_opts_t o;
    hdb_match_opts_default(&o);
    o.min_quality = 49;
    CHECK_EQ(hdb_matcher_query(m, &lo, 1, &o, &r), CORDON_OK);
    CHECK(has_item(&r, ilo, NULL));
    o.min_quality = 51;
    CHECK_EQ(hdb_matcher_query(m, &ok, 1, &o, &r), CORDON_OK);
    CHECK(!has_item(&r, iok, NULL));
    hdb_match_results_free(&r);
    hdb_matcher_close(m);
    hdb_close(db);
}

/* The matcher agrees with a brute-force scan of the database's hashes on
 * clustered data, for several thresholds, after random adds and deletes. */
TEST(agrees_with_brute_force)
{
    hdb_t *db = fresh_db("bf.db");
    REQUIRE(db);
    REQUIRE(make_bank(db, "A") == CORDON_OK);
    enum { N = 3000 };
    static cordon_hash256_t hs[N];
    static uint64_t ids[N];
    static int live[N];
    cordon_hash256_t centres[20];
    for (int i = 0; i < 20; i++)
        centres[i] = rand_hash();
    hdb_matcher_t *m = NULL;
    for (int i = 0; i < N; i++) {
        hs[i] = flip(centres[rnd() % 20], (int)(rnd() % 48));
        ids[i] = add_pdq(db, "A", hs[i], 60 + (int)(rnd() % 41));
        live[i] = ids[i] != 0;
        if (i == N / 2)
            REQUIRE(hdb_matcher_open(db, &m) == CORDON_OK);
    }
    for (int i = 0; i < N; i += 7) {
        CHECK_EQ(hdb_item_remove(db, ids[i], NULL), CORDON_OK);
        live[i] = 0;
    }
    CHECK_EQ(hdb_matcher_refresh(m, NULL), CORDON_OK);
    hdb_match_results_t r;
    memset(&r, 0, sizeof r);
    static const int thresholds[] = {0, 8, 31, 40, 64};
    for (int t = 0; t < 5; t++)
        for (int qn = 0; qn < 30; qn++) {
            cordon_hash256_t q = flip(centres[qn % 20], (int)(rnd() % 20));
            hdb_match_opts_t o;
            hdb_match_opts_default(&o);
            o.threshold = thresholds[t];
            CHECK_EQ(hdb_matcher_query(m, &q, 1, &o, &r), CORDON_OK);
            size_t want = 0;
            for (int i = 0; i < N; i++) {
                if (!live[i])
                    continue;
                int d = cordon_hash_distance(&q, &hs[i]);
                if (d > thresholds[t])
                    continue;
                want++;
                int got = -1;
                CHECK_MSG(has_item(&r, ids[i], &got) && got == d,
                          "item %llu distance %d threshold %d got %d",
                          (unsigned long long)ids[i], d, thresholds[t], got);
            }
            CHECK_EQ(r.count, want);
        }
    hdb_match_results_free(&r);
    hdb_matcher_close(m);
    hdb_close(db);
}

TEST(dihedral_query_reports_variant)
{
    hdb_t *db = fresh_db("dih.db");
    REQUIRE(db);
    REQUIRE(make_bank(db, "A") == CORDON_OK);
    size_t n;
    uint8_t *b = tu_read_file(
        tu_path("%s/pdq/images/reg-test-input_dih_bridge-1-original.jpg",
                tu_vectors()),
        &n);
    REQUIRE(b);
    cordon_image_hashes_t orig;
    REQUIRE(cordon_hash_image(b, n, NULL, &orig) == CORDON_OK);
    free(b);
    uint64_t id = add_pdq(db, "A", orig.pdq, orig.quality);
    b = tu_read_file(
        tu_path("%s/pdq/images/reg-test-input_dih_bridge-2-rotate-90.jpg",
                tu_vectors()),
        &n);
    REQUIRE(b);
    cordon_image_hashes_t rot;
    REQUIRE(cordon_hash_image(b, n, NULL, &rot) == CORDON_OK);
    free(b);
    hdb_matcher_t *m;
    REQUIRE(hdb_matcher_open(db, &m) == CORDON_OK);
    hdb_match_results_t r;
    memset(&r, 0, sizeof r);
    CHECK_EQ(hdb_matcher_query(m, rot.dihedral, 1, NULL, &r), CORDON_OK);
    CHECK(!has_item(&r, id, NULL));
    CHECK_EQ(hdb_matcher_query(m, rot.dihedral, 8, NULL, &r), CORDON_OK);
    REQUIRE(has_item(&r, id, NULL));
    /* The upload is the original rotated by 90; undoing it is rot270. */
    CHECK_EQ(r.hits[0].variant, CORDON_DIH_ROT270);
    hdb_match_results_free(&r);
    hdb_matcher_close(m);
    hdb_close(db);
}

/* A writer process adds items while this process keeps matching; every
 * new item becomes matchable after a refresh, within a second of its
 * write. */
TEST(other_process_writes_seen)
{
    const char *path = tu_path("%s/two.db", tu_tmpdir());
    hdb_t *db = NULL;
    REQUIRE(hdb_open(path, NULL, &db) == CORDON_OK);
    REQUIRE(make_bank(db, "A") == CORDON_OK);
    hdb_matcher_t *m;
    REQUIRE(hdb_matcher_open(db, &m) == CORDON_OK);
    enum { K = 20 };
    uint64_t seed = 777;
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        hdb_t *w = NULL;
        if (hdb_open(path, NULL, &w) != CORDON_OK)
            _exit(3);
        rs = seed;
        for (int i = 0; i < K; i++) {
            if (!add_pdq(w, "A", rand_hash(), 90))
                _exit(4);
            usleep(20000);
        }
        hdb_close(w);
        _exit(0);
    }
    rs = seed;
    cordon_hash256_t want[K];
    for (int i = 0; i < K; i++)
        want[i] = rand_hash();
    hdb_match_results_t r;
    memset(&r, 0, sizeof r);
    int seen = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (seen < K) {
        CHECK_EQ(hdb_matcher_refresh(m, NULL), CORDON_OK);
        CHECK_EQ(hdb_matcher_query(m, &want[seen], 1, NULL, &r), CORDON_OK);
        if (r.count == 1)
            seen++;
        else
            usleep(10000);
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (t1.tv_sec - t0.tv_sec > 30)
            break; /* the writer died; the checks below fail */
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK_EQ(seen, K);
    CHECK_EQ(hdb_matcher_size(m), K);
    hdb_match_results_free(&r);
    hdb_matcher_close(m);
    hdb_close(db);
}

int main(int argc, char **argv)
{
    (void)argc;
    th_init(argv[0]);
    RUN(load_query_and_increments);
    RUN(disabled_items_banks_and_expiry);
    RUN(quality_floor);
    RUN(agrees_with_brute_force);
    RUN(dihedral_query_reports_variant);
    RUN(other_process_writes_seen);
    return TH_END();
}
