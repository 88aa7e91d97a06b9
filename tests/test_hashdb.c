/* The hash database: banks, items, signals, dedup, tombstones, the change
 * log, schema versions, map growth, interchange formats and a second
 * process reading while one writes. */
#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cordon_error.h"
#include "harness.h"
#include "hdb.h"
#include "util.h"

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static hdb_signal_t pdq_sig(uint64_t seed, int quality)
{
    hdb_signal_t s;
    memset(&s, 0, sizeof s);
    s.type = HDB_SIG_PDQ;
    s.quality = quality;
    for (int i = 0; i < 4; i++)
        s.pdq.w[i] = splitmix(&seed);
    return s;
}

static hdb_signal_t digest_sig(hdb_sigtype_t t, uint64_t seed)
{
    hdb_signal_t s;
    memset(&s, 0, sizeof s);
    s.type = t;
    for (int i = 0; i < 32; i += 8) {
        uint64_t v = splitmix(&seed);
        memcpy(s.digest + i, &v, 8);
    }
    if (t == HDB_SIG_MD5)
        memset(s.digest + 16, 0, 16);
    return s;
}

static int db_counter;

static hdb_t *open_db(const char *path, const hdb_opts_t *opts)
{
    hdb_t *db = NULL;
    int rc = hdb_open(path, opts, &db);
    CHECK_MSG(rc == CORDON_OK, "hdb_open(%s): %s", path, cordon_errname(rc));
    return db;
}

static const char *fresh_path(void)
{
    return tu_path("%s/db%d.cordon", tu_tmpdir(), ++db_counter);
}

static hdb_t *fresh_db(void)
{
    hdb_opts_t o = {0};
    o.nosync = 1;
    return open_db(fresh_path(), &o);
}

static int mkbank(hdb_t *db, const char *name, int enabled)
{
    hdb_bank_spec_t spec = {name, enabled, NULL, NULL, 0};
    return hdb_bank_create(db, &spec, NULL);
}

static int add1(hdb_t *db, const char *bank, hdb_signal_t sig, unsigned flags,
                hdb_add_result_t *res)
{
    hdb_item_spec_t spec;
    memset(&spec, 0, sizeof spec);
    spec.bank = bank;
    spec.signals = &sig;
    spec.nsignals = 1;
    return hdb_item_add(db, &spec, flags, res);
}

static int sig_eq(const hdb_signal_t *a, const hdb_signal_t *b)
{
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case HDB_SIG_PDQ:
        return a->quality == b->quality &&
               memcmp(&a->pdq, &b->pdq, sizeof a->pdq) == 0;
    case HDB_SIG_MD5:
        return memcmp(a->digest, b->digest, 16) == 0;
    case HDB_SIG_SHA256:
        return memcmp(a->digest, b->digest, 32) == 0;
    case HDB_SIG_VPDQ:
        if (a->nframes != b->nframes)
            return 0;
        for (size_t i = 0; i < a->nframes; i++)
            if (memcmp(&a->frames[i].hash, &b->frames[i].hash, 32) ||
                a->frames[i].quality != b->frames[i].quality ||
                a->frames[i].timestamp != b->frames[i].timestamp ||
                a->frames[i].count != b->frames[i].count)
                return 0;
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */

TEST(signal_text_forms)
{
    hdb_signal_t s;
    hdb_sigtype_t t;
    char buf[512];
    size_t len;
    const char *hex =
        "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";

    CHECK_EQ(hdb_signal_parse(HDB_SIG_PDQ, hex, 64, &s, NULL, 0), CORDON_OK);
    CHECK_EQ(s.quality, HDB_QUALITY_UNKNOWN);
    cordon_hash256_t ref;
    CHECK_EQ(cordon_hash_from_hex(hex, 64, &ref), CORDON_OK);
    CHECK(memcmp(&ref, &s.pdq, sizeof ref) == 0); /* the engine's layout */
    /* Bit layout of cordon_pdq.h: the first 16 digits are w[3]. */
    CHECK(s.pdq.w[3] == 0xf8f8f0cee0f4a84full);
    CHECK(s.pdq.w[0] == 0x33e6b39c4e9c9b22ull);
    CHECK_EQ(hdb_signal_format(&s, 1, buf, sizeof buf, &len), CORDON_OK);
    CHECK_STREQ(buf, hex);
    CHECK_EQ(len, 64);

    const char *withq = "  F8F8F0CEE0F4A84F06370A22038F63F0B36E2ED596621E1D33E6"
                        "B39C4E9C9B22 , 87 \n";
    CHECK_EQ(hdb_signal_parse(HDB_SIG_PDQ, withq, strlen(withq), &s, NULL, 0),
             CORDON_OK);
    CHECK_EQ(s.quality, 87);
    CHECK_EQ(hdb_signal_format(&s, 1, buf, sizeof buf, NULL), CORDON_OK);
    CHECK_STREQ(buf, tu_path("%s,87", hex));
    CHECK_EQ(hdb_signal_format(&s, 1, buf, 10, &len), CORDON_ESCRATCH);
    CHECK_EQ(len, 67);

    CHECK_EQ(hdb_signal_parse(HDB_SIG_PDQ, hex, 63, &s, NULL, 0), CORDON_EHEX);
    CHECK_EQ(
        hdb_signal_parse(HDB_SIG_PDQ, tu_path("%s,101", hex), 68, &s, NULL, 0),
        CORDON_EPARSE);
    CHECK_EQ(hdb_signal_parse(HDB_SIG_MD5, "d41d8cd98f00b204e9800998ecf8427g",
                              32, &s, NULL, 0),
             CORDON_EHEX);
    CHECK_EQ(hdb_signal_parse(HDB_SIG_MD5, "d41d8cd98f00b204e9800998ecf8427e",
                              32, &s, NULL, 0),
             CORDON_OK);
    CHECK_EQ(s.digest[0], 0xd4);
    CHECK_EQ(s.digest[15], 0x7e);
    CHECK_EQ(hdb_signal_parse(HDB_SIG_SHA256, hex, 64, &s, NULL, 0), CORDON_OK);
    CHECK_EQ(s.digest[0], 0xf8);

    /* vPDQ: consecutive identical frames fold into one entry. */
    hdb_vpdq_frame_t fr[8];
    char vp[1024];
    snprintf(vp, sizeof vp,
             "[\"%s,90,0\", \"%s,90,1.0\",\"%s,90,2.5\", \"%s,40,3\"]", hex,
             hex, hex, hex);
    CHECK_EQ(hdb_signal_parse(HDB_SIG_VPDQ, vp, strlen(vp), &s, fr, 8),
             CORDON_OK);
    REQUIRE(s.nframes == 2);
    CHECK_EQ(s.frames[0].count, 3);
    CHECK_EQ(s.frames[0].quality, 90);
    CHECK(s.frames[1].timestamp == 3.0);
    CHECK_EQ(hdb_signal_parse(HDB_SIG_VPDQ, vp, strlen(vp), &s, fr, 1),
             CORDON_ESCRATCH);
    CHECK_EQ(hdb_signal_parse(HDB_SIG_VPDQ, "[]", 2, &s, fr, 8), CORDON_EEMPTY);
    CHECK_EQ(hdb_signal_parse(HDB_SIG_VPDQ, "[\"x\"]", 5, &s, fr, 8),
             CORDON_EPARSE);
    /* Formatting expands counts, so that parsing gives the same entries. */
    CHECK_EQ(hdb_signal_parse(HDB_SIG_VPDQ, vp, strlen(vp), &s, fr, 8),
             CORDON_OK);
    size_t need = 0;
    CHECK_EQ(hdb_signal_format(&s, 0, buf, 100, &need), CORDON_ESCRATCH);
    CHECK_EQ(strlen(buf), 99);
    char big[2048];
    CHECK_EQ(hdb_signal_format(&s, 0, big, sizeof big, &len), CORDON_OK);
    CHECK_EQ(len, strlen(big));
    CHECK_EQ(need, len);
    CHECK(strncmp(big, "[\"f8f8", 6) == 0);
    hdb_vpdq_frame_t fr2[8];
    hdb_signal_t s2;
    CHECK_EQ(hdb_signal_parse(HDB_SIG_VPDQ, big, len, &s2, fr2, 8), CORDON_OK);
    CHECK(sig_eq(&s, &s2));

    /* Every frame of a run is exported with its own time: runs are spaced
     * evenly up to the next entry, and a run ending the list keeps its
     * last frame apart so that its spacing is known. */
    const char *hex2 =
        "0000000000000000000000000000000000000000000000000000000000000001";
    snprintf(vp, sizeof vp,
             "[\"%s,90,0\",\"%s,90,0.5\",\"%s,90,1\",\"%s,90,1.5\","
             "\"%s,90,2\"]",
             hex, hex, hex2, hex2, hex2);
    CHECK_EQ(hdb_signal_parse(HDB_SIG_VPDQ, vp, strlen(vp), &s, fr, 3),
             CORDON_OK);
    REQUIRE(s.nframes == 3);
    CHECK_EQ(s.frames[0].count, 2);
    CHECK_EQ(s.frames[1].count, 2);
    CHECK_EQ(s.frames[2].count, 1);
    CHECK(s.frames[2].timestamp == 2.0);
    CHECK_EQ(hdb_signal_parse(HDB_SIG_VPDQ, vp, strlen(vp), &s, fr, 2),
             CORDON_ESCRATCH);
    CHECK_EQ(hdb_signal_parse(HDB_SIG_VPDQ, vp, strlen(vp), &s, fr, 8),
             CORDON_OK);
    CHECK_EQ(hdb_signal_format(&s, 0, big, sizeof big, &len), CORDON_OK);
    const char *p = big;
    for (int i = 0; i < 5; i++) {
        p = strchr(p, '"');
        REQUIRE(p);
        const char *c = strchr(strchr(p, ',') + 1, ',');
        CHECK(strtod(c + 1, NULL) == 0.5 * i);
        p = strchr(c, '"') + 1;
    }
    CHECK_EQ(hdb_signal_parse(HDB_SIG_VPDQ, big, len, &s2, fr2, 8), CORDON_OK);
    CHECK(sig_eq(&s, &s2));

    CHECK_EQ(hdb_sigtype_from_name("PDQ", 3, &t), CORDON_OK);
    CHECK_EQ(t, HDB_SIG_PDQ);
    CHECK_EQ(hdb_sigtype_from_name("video_md5", 9, &t), CORDON_OK);
    CHECK_EQ(t, HDB_SIG_MD5);
    CHECK_EQ(hdb_sigtype_from_name("photo_md5", 9, &t), CORDON_OK);
    CHECK_EQ(hdb_sigtype_from_name("video_sha256", 12, &t), CORDON_OK);
    CHECK_EQ(t, HDB_SIG_SHA256);
    CHECK_EQ(hdb_sigtype_from_name("vpdq", 4, &t), CORDON_OK);
    CHECK_EQ(hdb_sigtype_from_name("raw_text", 8, &t), CORDON_EPARSE);
    CHECK_EQ(hdb_sigtype_from_name("md5x", 3, &t), CORDON_OK); /* by length */
}

typedef struct {
    int n;
    char names[8][64];
    int enabled[8];
} bank_list_t;

static int collect_bank(void *ctx, const hdb_bank_t *b)
{
    bank_list_t *l = ctx;
    if (l->n < 8) {
        snprintf(l->names[l->n], 64, "%s", b->name);
        l->enabled[l->n] = b->enabled;
    }
    l->n++;
    return 0;
}

TEST(banks)
{
    hdb_t *db = fresh_db();
    REQUIRE(db);
    const char *labels[] = {"entity:isis", "content:video"};
    hdb_bank_spec_t spec = {"ISIS_AMAQ_VIDEO", 1, "block", labels, 2};
    uint32_t id1 = 0, id2 = 0;
    CHECK_EQ(hdb_bank_create(db, &spec, &id1), CORDON_OK);
    CHECK_EQ(hdb_bank_create(db, &spec, NULL), CORDON_EEXIST);
    hdb_bank_spec_t spec2 = {"CIP_2019_CHRISTCHURCH", 0, NULL, NULL, 0};
    CHECK_EQ(hdb_bank_create(db, &spec2, &id2), CORDON_OK);
    CHECK_NE(id1, id2);

    hdb_bank_spec_t bad = {"", 1, NULL, NULL, 0};
    CHECK_EQ(hdb_bank_create(db, &bad, NULL), CORDON_EINVAL);
    bad.name = "tab\there";
    CHECK_EQ(hdb_bank_create(db, &bad, NULL), CORDON_EINVAL);
    const char *badl[] = {"nocolon"};
    hdb_bank_spec_t bad2 = {"X", 1, NULL, badl, 1};
    CHECK_EQ(hdb_bank_create(db, &bad2, NULL), CORDON_EINVAL);
    const char *badl2[] = {"key:has space"};
    bad2.labels = badl2;
    CHECK_EQ(hdb_bank_create(db, &bad2, NULL), CORDON_EINVAL);

    hdb_bank_t *b = NULL;
    REQUIRE(hdb_bank_get(db, "ISIS_AMAQ_VIDEO", &b) == CORDON_OK);
    CHECK_EQ(b->id, id1);
    CHECK_STREQ(b->name, "ISIS_AMAQ_VIDEO");
    CHECK_EQ(b->enabled, 1);
    CHECK_STREQ(b->default_action, "block");
    REQUIRE(b->nlabels == 2);
    CHECK_STREQ(b->labels[0], "entity:isis");
    CHECK_STREQ(b->labels[1], "content:video");
    CHECK_GT(b->created, 0);
    CHECK_GT(b->seq, 0);
    hdb_free(b);
    CHECK_EQ(hdb_bank_get(db, "NOPE", &b), CORDON_ENOTFOUND);
    CHECK(b == NULL);

    CHECK_EQ(hdb_bank_set_enabled(db, "ISIS_AMAQ_VIDEO", 0), CORDON_OK);
    const char *l2[] = {"behaviour:recruitment"};
    CHECK_EQ(hdb_bank_set_labels(db, "ISIS_AMAQ_VIDEO", l2, 1), CORDON_OK);
    CHECK_EQ(hdb_bank_set_default_action(db, "ISIS_AMAQ_VIDEO", "review"),
             CORDON_OK);
    CHECK_EQ(hdb_bank_set_enabled(db, "NOPE", 0), CORDON_ENOTFOUND);
    REQUIRE(hdb_bank_get(db, "ISIS_AMAQ_VIDEO", &b) == CORDON_OK);
    CHECK_EQ(b->enabled, 0);
    CHECK_STREQ(b->default_action, "review");
    REQUIRE(b->nlabels == 1);
    CHECK_STREQ(b->labels[0], "behaviour:recruitment");
    hdb_free(b);

    bank_list_t bl = {0};
    CHECK_EQ(hdb_bank_list(db, collect_bank, &bl), CORDON_OK);
    REQUIRE(bl.n == 2);
    CHECK_STREQ(bl.names[0], "ISIS_AMAQ_VIDEO");
    CHECK_STREQ(bl.names[1], "CIP_2019_CHRISTCHURCH");
    CHECK_EQ(bl.enabled[0], 0);

    /* Delete: refused while the bank has live items. */
    hdb_add_result_t r;
    CHECK_EQ(add1(db, "CIP_2019_CHRISTCHURCH", pdq_sig(1, 90), 0, &r),
             CORDON_OK);
    CHECK_EQ(hdb_bank_delete(db, "CIP_2019_CHRISTCHURCH"), CORDON_EBUSY);
    CHECK_EQ(hdb_item_remove(db, r.id, NULL), CORDON_OK);
    CHECK_EQ(hdb_bank_delete(db, "CIP_2019_CHRISTCHURCH"), CORDON_OK);
    CHECK_EQ(hdb_bank_get(db, "CIP_2019_CHRISTCHURCH", &b), CORDON_ENOTFOUND);
    /* The tombstone still names its (deleted) bank. */
    hdb_item_t *it = NULL;
    REQUIRE(hdb_item_get(db, r.id, &it) == CORDON_OK);
    CHECK_STREQ(it->bank, "CIP_2019_CHRISTCHURCH");
    CHECK_EQ(it->deleted, 1);
    hdb_free(it);
    /* The name can be used again, for a new bank. */
    uint32_t id3 = 0;
    CHECK_EQ(hdb_bank_create(db, &spec2, &id3), CORDON_OK);
    CHECK_NE(id3, id2);
    bl.n = 0;
    CHECK_EQ(hdb_bank_list(db, collect_bank, &bl), CORDON_OK);
    CHECK_EQ(bl.n, 2);
    hdb_stats_t st;
    CHECK_EQ(hdb_stats(db, &st), CORDON_OK);
    CHECK_EQ(st.banks, 2);
    hdb_close(db);
}

typedef struct {
    uint64_t ids[64];
    int n;
    int deleted;
} id_list_t;

static int collect_item(void *ctx, const hdb_item_t *it)
{
    id_list_t *l = ctx;
    if (l->n < 64)
        l->ids[l->n] = it->id;
    l->n++;
    l->deleted += it->deleted;
    return 0;
}

TEST(items_round_trip)
{
    hdb_t *db = fresh_db();
    REQUIRE(db);
    REQUIRE(mkbank(db, "A", 1) == CORDON_OK);
    REQUIRE(mkbank(db, "B", 1) == CORDON_OK);

    hdb_vpdq_frame_t frames[3];
    for (int i = 0; i < 3; i++) {
        frames[i].hash = pdq_sig(100 + i, 0).pdq;
        frames[i].quality = 60 + i;
        frames[i].timestamp = i * 1.5;
        frames[i].count = (uint32_t)(i + 1);
    }
    hdb_signal_t sigs[4] = {pdq_sig(7, 93), digest_sig(HDB_SIG_MD5, 7),
                            digest_sig(HDB_SIG_SHA256, 7)};
    memset(&sigs[3], 0, sizeof sigs[3]);
    sigs[3].type = HDB_SIG_VPDQ;
    sigs[3].frames = frames;
    sigs[3].nframes = 3;
    const char *labels[] = {"entity:amaq", "content:image",
                            "behaviour:violence"};
    hdb_item_spec_t spec;
    memset(&spec, 0, sizeof spec);
    spec.bank = "A";
    spec.labels = labels;
    spec.nlabels = 3;
    spec.note = "from the 2019 takedown\nsecond line";
    spec.prov.added_by = "alice";
    spec.prov.source = HDB_SOURCE_EXCHANGE;
    spec.prov.source_name = "GIFCT";
    spec.prov.added_at = 1500000000;
    spec.disable_until = 0;
    spec.signals = sigs;
    spec.nsignals = 4;
    hdb_add_result_t r;
    REQUIRE(hdb_item_add(db, &spec, 0, &r) == CORDON_OK);
    CHECK_GT(r.id, 0);
    CHECK_GT(r.seq, 0);
    CHECK_EQ(r.duplicate, 0);

    hdb_item_t *it = NULL;
    REQUIRE(hdb_item_get(db, r.id, &it) == CORDON_OK);
    CHECK_EQ(it->id, r.id);
    CHECK_STREQ(it->bank, "A");
    CHECK_EQ(it->deleted, 0);
    REQUIRE(it->nlabels == 3);
    for (int i = 0; i < 3; i++)
        CHECK_STREQ(it->labels[i], labels[i]);
    CHECK_STREQ(it->note, spec.note);
    CHECK_STREQ(it->prov.added_by, "alice");
    CHECK_EQ(it->prov.source, HDB_SOURCE_EXCHANGE);
    CHECK_STREQ(it->prov.source_name, "GIFCT");
    CHECK_EQ(it->prov.added_at, 1500000000);
    CHECK_EQ(it->seq, r.seq);
    REQUIRE(it->nsignals == 4);
    for (int i = 0; i < 4; i++)
        CHECK_MSG(sig_eq(&it->signals[i], &sigs[i]), "signal %d", i);
    hdb_free(it);

    /* Unknown quality survives the round trip. */
    hdb_add_result_t r2;
    REQUIRE(add1(db, "B", pdq_sig(8, HDB_QUALITY_UNKNOWN), 0, &r2) ==
            CORDON_OK);
    REQUIRE(hdb_item_get(db, r2.id, &it) == CORDON_OK);
    CHECK_EQ(it->signals[0].quality, HDB_QUALITY_UNKNOWN);
    CHECK_STREQ(it->note, "");
    CHECK(it->prov.added_at > 0); /* defaulted to now */
    hdb_free(it);

    /* Updates. */
    const char *l2[] = {"entity:other"};
    CHECK_EQ(hdb_item_set_note(db, r.id, "changed"), CORDON_OK);
    CHECK_EQ(hdb_item_set_labels(db, r.id, l2, 1), CORDON_OK);
    const char *badl[] = {":x"};
    CHECK_EQ(hdb_item_set_labels(db, r.id, badl, 1), CORDON_EINVAL);
    CHECK_EQ(hdb_item_set_note(db, 999999, "x"), CORDON_ENOTFOUND);
    REQUIRE(hdb_item_get(db, r.id, &it) == CORDON_OK);
    CHECK_STREQ(it->note, "changed");
    REQUIRE(it->nlabels == 1);
    CHECK_STREQ(it->labels[0], "entity:other");
    CHECK_EQ(it->nsignals, 4);
    CHECK_GT(it->seq, r.seq);
    hdb_free(it);

    /* Refused specs. */
    spec.bank = "NOPE";
    CHECK_EQ(hdb_item_add(db, &spec, 0, NULL), CORDON_ENOTFOUND);
    spec.bank = "A";
    spec.nsignals = 0;
    CHECK_EQ(hdb_item_add(db, &spec, 0, NULL), CORDON_EINVAL);
    spec.nsignals = 1;
    sigs[0].quality = 101;
    CHECK_EQ(hdb_item_add(db, &spec, 0, NULL), CORDON_EINVAL);

    /* Listing and paging. */
    for (int i = 0; i < 10; i++)
        REQUIRE(add1(db, i % 2 ? "A" : "B", pdq_sig(1000 + i, 80), 0, NULL) ==
                CORDON_OK);
    id_list_t l = {{0}, 0, 0};
    CHECK_EQ(hdb_item_list(db, NULL, 0, 0, 0, collect_item, &l, NULL),
             CORDON_OK);
    CHECK_EQ(l.n, 12);
    for (int i = 1; i < 12; i++)
        CHECK_LT(l.ids[i - 1], l.ids[i]);
    id_list_t la = {{0}, 0, 0};
    uint64_t last = 0, prev = 0;
    int pages = 0;
    do {
        prev = last;
        CHECK_EQ(hdb_item_list(db, "A", prev, 2, 0, collect_item, &la, &last),
                 CORDON_OK);
        pages++;
    } while (last != prev && pages < 20);
    CHECK_EQ(la.n, 6); /* the first item plus five */
    CHECK_EQ(pages, 4);
    CHECK_EQ(hdb_item_list(db, "NOPE", 0, 0, 0, collect_item, &la, NULL),
             CORDON_ENOTFOUND);

    hdb_stats_t st;
    CHECK_EQ(hdb_stats(db, &st), CORDON_OK);
    CHECK_EQ(st.items, 12);
    CHECK_EQ(st.signals[HDB_SIG_PDQ], 12);
    CHECK_EQ(st.signals[HDB_SIG_MD5], 1);
    CHECK_EQ(st.signals[HDB_SIG_VPDQ], 1);
    CHECK_EQ(st.schema_version, HDB_SCHEMA_VERSION);
    CHECK_GT(st.file_size, 0);
    CHECK_GE(st.map_size, st.map_used);
    hdb_close(db);
}

TEST(dedup_within_bank_only)
{
    hdb_t *db = fresh_db();
    REQUIRE(db);
    REQUIRE(mkbank(db, "A", 1) == CORDON_OK);
    REQUIRE(mkbank(db, "B", 1) == CORDON_OK);
    hdb_add_result_t r1, r2;
    hdb_signal_t md5 = digest_sig(HDB_SIG_MD5, 42);
    hdb_signal_t sha = digest_sig(HDB_SIG_SHA256, 42);

    REQUIRE(add1(db, "A", md5, 0, &r1) == CORDON_OK);
    CHECK_EQ(add1(db, "A", md5, 0, &r2), CORDON_EEXIST);
    CHECK_EQ(r2.id, r1.id);
    CHECK_EQ(r2.duplicate, 1);
    CHECK_EQ(r2.seq, 0);
    CHECK_EQ(add1(db, "B", md5, 0, &r2), CORDON_OK); /* other bank */
    CHECK_NE(r2.id, r1.id);
    CHECK_EQ(r2.duplicate, 0);

    /* A multi-signal item is a duplicate if any digest is known. */
    hdb_signal_t two[2] = {pdq_sig(5, 90), sha};
    hdb_item_spec_t spec;
    memset(&spec, 0, sizeof spec);
    spec.bank = "A";
    spec.signals = two;
    spec.nsignals = 2;
    REQUIRE(hdb_item_add(db, &spec, 0, &r1) == CORDON_OK);
    two[0] = pdq_sig(6, 90);
    CHECK_EQ(hdb_item_add(db, &spec, 0, &r2), CORDON_EEXIST);
    CHECK_EQ(r2.id, r1.id);

    /* PDQ: two images may share a hash; adds do not deduplicate it. */
    hdb_signal_t p = pdq_sig(77, 90);
    REQUIRE(add1(db, "A", p, 0, &r1) == CORDON_OK);
    CHECK_EQ(add1(db, "A", p, HDB_ADD_DEDUP_VPDQ, &r2), CORDON_OK);
    CHECK_NE(r2.id, r1.id);
    p.quality = 10; /* quality is not part of the identity */
    CHECK_EQ(add1(db, "B", p, 0, &r2), CORDON_OK);

    /* vPDQ: the whole entry list is the identity. */
    hdb_vpdq_frame_t fr[2] = {{pdq_sig(9, 0).pdq, 70, 0.0, 2},
                              {pdq_sig(10, 0).pdq, 71, 2.0, 1}};
    hdb_signal_t vs;
    memset(&vs, 0, sizeof vs);
    vs.type = HDB_SIG_VPDQ;
    vs.frames = fr;
    vs.nframes = 2;
    hdb_add_result_t rv;
    REQUIRE(add1(db, "A", vs, HDB_ADD_DEDUP_VPDQ, &rv) == CORDON_OK);
    CHECK_EQ(add1(db, "A", vs, HDB_ADD_DEDUP_VPDQ, &r2), CORDON_EEXIST);
    CHECK_EQ(r2.id, rv.id);
    fr[1].timestamp = 2.5;
    CHECK_EQ(add1(db, "A", vs, HDB_ADD_DEDUP_VPDQ, &r2), CORDON_OK);
    uint64_t vids[4];
    size_t vn;
    CHECK_EQ(hdb_lookup(db, &vs, NULL, vids, 4, &vn), CORDON_OK);
    CHECK_EQ(vn, 1);
    CHECK_EQ(vids[0], r2.id);

    /* Exact lookups. */
    uint64_t ids[8];
    size_t n;
    CHECK_EQ(hdb_lookup(db, &md5, NULL, ids, 8, &n), CORDON_OK);
    CHECK_EQ(n, 2);
    CHECK_EQ(hdb_lookup(db, &md5, "B", ids, 8, &n), CORDON_OK);
    CHECK_EQ(n, 1);
    CHECK_EQ(hdb_lookup(db, &p, "A", ids, 1, &n), CORDON_OK);
    CHECK_EQ(n, 2); /* total, though only one fitted */
    CHECK_EQ(ids[0], r1.id);
    CHECK_EQ(hdb_lookup(db, &p, NULL, ids, 8, &n), CORDON_OK);
    CHECK_EQ(n, 3);
    hdb_signal_t other = pdq_sig(78, 90);
    CHECK_EQ(hdb_lookup(db, &other, NULL, ids, 8, &n), CORDON_OK);
    CHECK_EQ(n, 0);
    hdb_signal_t unknown = digest_sig(HDB_SIG_MD5, 4242);
    CHECK_EQ(hdb_lookup(db, &unknown, NULL, ids, 8, &n), CORDON_OK);
    CHECK_EQ(n, 0);

    /* A tombstone is not a duplicate. */
    CHECK_EQ(hdb_lookup(db, &md5, "A", ids, 8, &n), CORDON_OK);
    REQUIRE(n == 1);
    CHECK_EQ(hdb_item_remove(db, ids[0], NULL), CORDON_OK);
    CHECK_EQ(add1(db, "A", md5, 0, &r2), CORDON_OK);
    CHECK_NE(r2.id, ids[0]);

    /* Within one batch too. */
    hdb_batch_t *b;
    REQUIRE(hdb_batch_begin(db, &b) == CORDON_OK);
    hdb_signal_t fresh = digest_sig(HDB_SIG_SHA256, 900);
    spec.signals = &fresh;
    spec.nsignals = 1;
    CHECK_EQ(hdb_batch_add(b, &spec, 0), CORDON_OK);
    CHECK_EQ(hdb_batch_add(b, &spec, 0), CORDON_OK);
    spec.bank = "B";
    CHECK_EQ(hdb_batch_add(b, &spec, 0), CORDON_OK);
    hdb_add_result_t rs[3];
    hdb_batch_result_t br;
    CHECK_EQ(hdb_batch_commit(b, rs, &br), CORDON_OK);
    CHECK_EQ(br.added, 2);
    CHECK_EQ(br.duplicates, 1);
    CHECK_EQ(rs[1].duplicate, 1);
    CHECK_EQ(rs[1].id, rs[0].id);
    CHECK_EQ(rs[2].duplicate, 0);
    CHECK_EQ(br.last_seq, rs[2].seq);
    hdb_close(db);
}

TEST(tombstones_and_disable)
{
    hdb_t *db = fresh_db();
    REQUIRE(db);
    REQUIRE(mkbank(db, "ON", 1) == CORDON_OK);
    REQUIRE(mkbank(db, "OFF", 0) == CORDON_OK);
    hdb_add_result_t a, b, c;
    hdb_signal_t pa = pdq_sig(1, 90), pb = pdq_sig(2, 91), pc = pdq_sig(3, 92);
    REQUIRE(add1(db, "ON", pa, 0, &a) == CORDON_OK);
    REQUIRE(add1(db, "OFF", pb, 0, &b) == CORDON_OK);
    REQUIRE(add1(db, "ON", pc, 0, &c) == CORDON_OK);

    CHECK_EQ(hdb_item_set_disable_until(db, c.id, 4000000000ll), CORDON_OK);
    CHECK_EQ(hdb_item_set_disable_until(db, c.id, -5), CORDON_EINVAL);
    uint64_t seq;
    CHECK_EQ(hdb_item_remove(db, a.id, &seq), CORDON_OK);
    CHECK_GT(seq, c.seq);
    CHECK_EQ(hdb_item_remove(db, a.id, NULL), CORDON_ENOTFOUND);
    CHECK_EQ(hdb_item_set_note(db, a.id, "x"), CORDON_ENOTFOUND);
    CHECK_EQ(hdb_item_remove(db, 12345, NULL), CORDON_ENOTFOUND);

    hdb_item_t *it;
    REQUIRE(hdb_item_get(db, a.id, &it) == CORDON_OK);
    CHECK_EQ(it->deleted, 1);
    CHECK_EQ(it->seq, seq);
    CHECK_EQ(it->nsignals, 1); /* kept for the record */
    hdb_free(it);
    REQUIRE(hdb_item_get(db, c.id, &it) == CORDON_OK);
    CHECK_EQ(it->disable_until, 4000000000ll);
    hdb_free(it);

    id_list_t l = {{0}, 0, 0};
    CHECK_EQ(hdb_item_list(db, NULL, 0, 0, 0, collect_item, &l, NULL),
             CORDON_OK);
    CHECK_EQ(l.n, 2);
    CHECK_EQ(l.deleted, 0);
    id_list_t l2 = {{0}, 0, 0};
    CHECK_EQ(hdb_item_list(db, NULL, 0, 0, HDB_LIST_TOMBSTONES, collect_item,
                           &l2, NULL),
             CORDON_OK);
    CHECK_EQ(l2.n, 3);
    CHECK_EQ(l2.deleted, 1);
    id_list_t l3 = {{0}, 0, 0};
    CHECK_EQ(hdb_item_list(db, "ON", 0, 0, 0, collect_item, &l3, NULL),
             CORDON_OK);
    CHECK_EQ(l3.n, 1);

    uint64_t ids[4];
    size_t n;
    CHECK_EQ(hdb_lookup(db, &pa, NULL, ids, 4, &n), CORDON_OK);
    CHECK_EQ(n, 0);

    hdb_stats_t st;
    CHECK_EQ(hdb_stats(db, &st), CORDON_OK);
    CHECK_EQ(st.items, 2);
    CHECK_EQ(st.tombstones, 1);
    CHECK_EQ(st.signals[HDB_SIG_PDQ], 2);
    hdb_bank_t *bk;
    REQUIRE(hdb_bank_get(db, "ON", &bk) == CORDON_OK);
    CHECK_EQ(bk->nitems, 1);
    CHECK_EQ(bk->ntombstones, 1);
    hdb_free(bk);
    hdb_close(db);
}

typedef struct {
    hdb_hash_entry_t e[16];
    int n;
} hash_list_t;

static int collect_hashes(void *ctx, const hdb_hash_entry_t *e, size_t n)
{
    hash_list_t *l = ctx;
    for (size_t i = 0; i < n; i++) {
        if (l->n < 16)
            l->e[l->n] = e[i];
        l->n++;
    }
    return 0;
}

TEST(hash_iteration_flags)
{
    hdb_t *db = fresh_db();
    REQUIRE(db);
    REQUIRE(mkbank(db, "ON", 1) == CORDON_OK);
    REQUIRE(mkbank(db, "OFF", 0) == CORDON_OK);
    hdb_add_result_t a, b, c, v;
    hdb_signal_t pa = pdq_sig(1, 90), pb = pdq_sig(2, 91), pc = pdq_sig(3, 92);
    REQUIRE(add1(db, "ON", pa, 0, &a) == CORDON_OK);
    REQUIRE(add1(db, "OFF", pb, 0, &b) == CORDON_OK);
    REQUIRE(add1(db, "ON", pc, 0, &c) == CORDON_OK);
    REQUIRE(add1(db, "ON", digest_sig(HDB_SIG_MD5, 1), 0, NULL) == CORDON_OK);
    hdb_vpdq_frame_t fr[2] = {{pdq_sig(9, 0).pdq, 70, 0.0, 2},
                              {pdq_sig(10, 0).pdq, 71, 2.0, 1}};
    hdb_signal_t vs;
    memset(&vs, 0, sizeof vs);
    vs.type = HDB_SIG_VPDQ;
    vs.frames = fr;
    vs.nframes = 2;
    REQUIRE(add1(db, "ON", vs, 0, &v) == CORDON_OK);
    CHECK_EQ(hdb_item_set_disable_until(db, c.id, 4000000000ll), CORDON_OK);
    CHECK_EQ(hdb_item_remove(db, a.id, NULL), CORDON_OK);

    hash_list_t l = {0};
    uint64_t snap = 0, last = 0;
    CHECK_EQ(hdb_iter_hashes(db, HDB_ITER_PDQ, collect_hashes, &l, &snap),
             CORDON_OK);
    CHECK_EQ(hdb_last_seq(db, &last), CORDON_OK);
    CHECK_EQ(snap, last);
    REQUIRE(l.n == 2);
    CHECK_EQ(l.e[0].item_id, b.id);
    CHECK_EQ(l.e[0].bank_enabled, 0);
    CHECK(memcmp(&l.e[0].hash, &pb.pdq, 32) == 0);
    CHECK_EQ(l.e[0].quality, 91);
    CHECK_EQ(l.e[0].disable_until, 0);
    CHECK_EQ(l.e[1].item_id, c.id);
    CHECK_EQ(l.e[1].bank_enabled, 1);
    CHECK_EQ(l.e[1].disable_until, 4000000000ll);
    CHECK_EQ(l.e[1].type, HDB_SIG_PDQ);

    hash_list_t lv = {0};
    CHECK_EQ(hdb_iter_hashes(db, HDB_ITER_VPDQ, collect_hashes, &lv, NULL),
             CORDON_OK);
    REQUIRE(lv.n == 2);
    CHECK_EQ(lv.e[0].item_id, v.id);
    CHECK_EQ(lv.e[1].frame, 1);
    CHECK_EQ(lv.e[1].quality, 71);
    CHECK_EQ(lv.e[1].type, HDB_SIG_VPDQ);
    CHECK(memcmp(&lv.e[1].hash, &fr[1].hash, 32) == 0);

    /* Enabling the bank shows in the next iteration. */
    CHECK_EQ(hdb_bank_set_enabled(db, "OFF", 1), CORDON_OK);
    hash_list_t l2 = {0};
    CHECK_EQ(hdb_iter_hashes(db, 0, collect_hashes, &l2, NULL), CORDON_OK);
    REQUIRE(l2.n == 2);
    CHECK_EQ(l2.e[0].bank_enabled, 1);
    hdb_close(db);
}

typedef struct {
    uint64_t seq[64];
    int kind[64];
    uint64_t id[64];
    int n;
} change_list_t;

static int collect_change(void *ctx, const hdb_change_t *ch)
{
    change_list_t *l = ctx;
    if (l->n < 64) {
        l->seq[l->n] = ch->seq;
        l->kind[l->n] = ch->kind;
        l->id[l->n] = ch->item ? ch->item->id : ch->bank->id;
    }
    l->n++;
    return 0;
}

TEST(change_log)
{
    hdb_t *db = fresh_db();
    REQUIRE(db);
    uint64_t s0 = 99;
    CHECK_EQ(hdb_last_seq(db, &s0), CORDON_OK);
    CHECK_EQ(s0, 0);
    uint32_t bank = 0;
    hdb_bank_spec_t spec = {"A", 1, NULL, NULL, 0};
    REQUIRE(hdb_bank_create(db, &spec, &bank) == CORDON_OK); /* seq 1 */
    hdb_add_result_t r[4];
    for (int i = 0; i < 4; i++) /* seq 2..5 */
        REQUIRE(add1(db, "A", pdq_sig(50 + i, 90), 0, &r[i]) == CORDON_OK);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(r[i].seq, 2 + i);
    CHECK_EQ(hdb_item_set_note(db, r[1].id, "n"), CORDON_OK); /* 6 */
    CHECK_EQ(hdb_item_remove(db, r[2].id, NULL), CORDON_OK);  /* 7 */
    CHECK_EQ(hdb_item_set_note(db, r[1].id, "m"), CORDON_OK); /* 8 */
    uint64_t last;
    CHECK_EQ(hdb_last_seq(db, &last), CORDON_OK);
    CHECK_EQ(last, 8);

    /* From the start: every object once, at its latest sequence. */
    change_list_t l = {{0}, {0}, {0}, 0};
    uint64_t end = 0;
    CHECK_EQ(hdb_changes_since(db, 0, 0, collect_change, &l, &end), CORDON_OK);
    REQUIRE(l.n == 5);
    CHECK_EQ(end, 8);
    for (int i = 1; i < l.n; i++)
        CHECK_LT(l.seq[i - 1], l.seq[i]);
    CHECK_EQ(l.kind[0], HDB_CHANGE_BANK_ADD);
    CHECK_EQ(l.id[0], bank);
    CHECK_EQ(l.kind[1], HDB_CHANGE_ITEM_ADD); /* r[0] at 2 */
    CHECK_EQ(l.id[1], r[0].id);
    CHECK_EQ(l.kind[2], HDB_CHANGE_ITEM_ADD); /* r[3] at 5 */
    CHECK_EQ(l.id[2], r[3].id);
    CHECK_EQ(l.kind[3], HDB_CHANGE_ITEM_DELETE); /* r[2] at 7 */
    CHECK_EQ(l.seq[3], 7);
    CHECK_EQ(l.kind[4], HDB_CHANGE_ITEM_UPDATE); /* r[1] at 8 */
    CHECK_EQ(l.id[4], r[1].id);

    /* After a point: only what changed later. */
    change_list_t l2 = {{0}, {0}, {0}, 0};
    CHECK_EQ(hdb_changes_since(db, 5, 0, collect_change, &l2, &end), CORDON_OK);
    REQUIRE(l2.n == 2);
    CHECK_EQ(l2.seq[0], 7);
    CHECK_EQ(l2.seq[1], 8);
    change_list_t l3 = {{0}, {0}, {0}, 0};
    CHECK_EQ(hdb_changes_since(db, 8, 0, collect_change, &l3, &end), CORDON_OK);
    CHECK_EQ(l3.n, 0);
    CHECK_EQ(end, 8);

    /* Paging. */
    change_list_t l4 = {{0}, {0}, {0}, 0};
    uint64_t pos = 0;
    int pages = 0;
    for (;;) {
        uint64_t next;
        CHECK_EQ(hdb_changes_since(db, pos, 2, collect_change, &l4, &next),
                 CORDON_OK);
        pages++;
        if (next == pos || pages > 10)
            break;
        pos = next;
    }
    CHECK_EQ(l4.n, 5);
    CHECK_EQ(pages, 4);

    /* Bank changes are logged too, and so is a bank delete. */
    CHECK_EQ(hdb_bank_set_enabled(db, "A", 0), CORDON_OK); /* 9 */
    REQUIRE(mkbank(db, "B", 1) == CORDON_OK);              /* 10 */
    CHECK_EQ(hdb_bank_delete(db, "B"), CORDON_OK);         /* 11 */
    change_list_t l5 = {{0}, {0}, {0}, 0};
    CHECK_EQ(hdb_changes_since(db, 8, 0, collect_change, &l5, &end), CORDON_OK);
    REQUIRE(l5.n == 2);
    CHECK_EQ(l5.kind[0], HDB_CHANGE_BANK_UPDATE);
    CHECK_EQ(l5.kind[1], HDB_CHANGE_BANK_DELETE);
    CHECK_EQ(end, 11);
    /* Writes that are not logged do not move the sequence. */
    CHECK_EQ(hdb_kv_set(db, "sync.peer.x", "42", 2), CORDON_OK);
    CHECK_EQ(hdb_last_seq(db, &last), CORDON_OK);
    CHECK_EQ(last, 11);
    hdb_close(db);
}

/* Rewrites the stored schema version behind the library's back. */
static int poke_version(const char *path, uint32_t v)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    int rc = mdb_env_create(&env);
    if (rc)
        return rc;
    mdb_env_set_maxdbs(env, 16);
    if ((rc = mdb_env_open(env, path, MDB_NOSUBDIR, 0644)) ||
        (rc = mdb_txn_begin(env, NULL, 0, &txn))) {
        mdb_env_close(env);
        return rc;
    }
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                    (uint8_t)v};
    MDB_val k = {14, "schema_version"}, d = {4, b};
    if ((rc = mdb_dbi_open(txn, "meta", 0, &dbi)) ||
        (rc = mdb_put(txn, dbi, &k, &d, 0))) {
        mdb_txn_abort(txn);
        mdb_env_close(env);
        return rc;
    }
    rc = mdb_txn_commit(txn);
    mdb_env_close(env);
    return rc;
}

TEST(schema_version)
{
    const char *path = fresh_path();
    hdb_t *db = open_db(path, NULL);
    REQUIRE(db);
    hdb_stats_t st;
    CHECK_EQ(hdb_stats(db, &st), CORDON_OK);
    CHECK_EQ(st.schema_version, 1);
    hdb_close(db);

    REQUIRE(poke_version(path, HDB_SCHEMA_VERSION + 1) == 0);
    hdb_opts_t ro = {0};
    ro.readonly = 1;
    CHECK_EQ(hdb_open(path, NULL, &db), CORDON_EDBVERSION);
    CHECK(db == NULL);
    CHECK_EQ(hdb_open(path, &ro, &db), CORDON_EDBVERSION);
    /* Back to the current version, it opens again. */
    REQUIRE(poke_version(path, HDB_SCHEMA_VERSION) == 0);
    CHECK_EQ(hdb_open(path, &ro, &db), CORDON_OK);
    hdb_close(db);

    /* Read-only: no file, no database; no writes. */
    CHECK_EQ(hdb_open(tu_path("%s/none.db", tu_tmpdir()), &ro, &db),
             CORDON_ENOTFOUND);
    REQUIRE(hdb_open(path, &ro, &db) == CORDON_OK);
    CHECK_EQ(mkbank(db, "A", 1), CORDON_EPERM);
    hdb_close(db);
    /* Not an LMDB file. */
    const char *junk = tu_path("%s/junk.db", tu_tmpdir());
    char garbage[8192];
    memset(garbage, 'x', sizeof garbage);
    REQUIRE(tu_write_file(junk, garbage, sizeof garbage) == 0);
    int rc = hdb_open(junk, NULL, &db);
    CHECK_MSG(rc == CORDON_EFORMAT || rc == CORDON_ECORRUPT, "%s",
              cordon_errname(rc));
}

TEST(map_grows_when_full)
{
    const char *path = fresh_path();
    hdb_opts_t o = {0};
    o.nosync = 1;
    o.initial_map_size = 64 << 10; /* raised to the 128 KiB floor */
    hdb_t *db = open_db(path, &o);
    REQUIRE(db);
    hdb_stats_t st0, st;
    CHECK_EQ(hdb_stats(db, &st0), CORDON_OK);
    CHECK_LE(st0.map_size, 256 << 10);
    REQUIRE(mkbank(db, "A", 1) == CORDON_OK);
    const int N = 6000;
    const char *labels[] = {"entity:test", "content:image"};
    int added = 0;
    for (int start = 0; start < N; start += 1000) {
        hdb_batch_t *b;
        REQUIRE(hdb_batch_begin(db, &b) == CORDON_OK);
        for (int i = start; i < start + 1000; i++) {
            hdb_signal_t s[2] = {pdq_sig((uint64_t)i, 80),
                                 digest_sig(HDB_SIG_SHA256, (uint64_t)i)};
            hdb_item_spec_t spec;
            memset(&spec, 0, sizeof spec);
            spec.bank = "A";
            spec.labels = labels;
            spec.nlabels = 2;
            spec.note = "a note that takes some room in every record";
            spec.signals = s;
            spec.nsignals = 2;
            REQUIRE(hdb_batch_add(b, &spec, 0) == CORDON_OK);
        }
        hdb_batch_result_t br;
        int rc = hdb_batch_commit(b, NULL, &br);
        CHECK_MSG(rc == CORDON_OK, "%s", cordon_errname(rc));
        added += (int)br.added;
    }
    /* Single adds grow the map too. */
    for (int i = N; i < N + 300; i++)
        if (add1(db, "A", pdq_sig((uint64_t)i, 80), 0, NULL) == CORDON_OK)
            added++;
    CHECK_EQ(added, N + 300);
    CHECK_EQ(hdb_stats(db, &st), CORDON_OK);
    CHECK_EQ(st.items, (uint64_t)(N + 300));
    CHECK_GT(st.map_size, st0.map_size * 8);
    hdb_close(db);

    /* Everything is there after reopening (with the small map option). */
    db = open_db(path, &o);
    REQUIRE(db);
    CHECK_EQ(hdb_stats(db, &st), CORDON_OK);
    CHECK_EQ(st.items, (uint64_t)(N + 300));
    for (int i = 0; i < N + 300; i += 97) {
        hdb_signal_t p = pdq_sig((uint64_t)i, 80);
        uint64_t id;
        size_t n;
        CHECK_EQ(hdb_lookup(db, &p, "A", &id, 1, &n), CORDON_OK);
        CHECK_EQ(n, 1);
        CHECK_EQ(id, (uint64_t)i + 1);
    }
    CHECK_EQ(add1(db, "A", pdq_sig(123456, 80), 0, NULL), CORDON_OK);
    hdb_close(db);

    /* A hard ceiling is reported, not crashed through. */
    hdb_opts_t tight = o;
    tight.max_map_size = 256 << 10;
    db = open_db(fresh_path(), &tight);
    REQUIRE(db);
    REQUIRE(mkbank(db, "A", 1) == CORDON_OK);
    int rc = CORDON_OK;
    for (int i = 0; i < 20000 && rc == CORDON_OK; i++)
        rc = add1(db, "A", pdq_sig((uint64_t)i, 80), 0, NULL);
    CHECK_EQ(rc, CORDON_ETOOLARGE);
    hdb_signal_t first = pdq_sig(0, 80);
    uint64_t fid;
    size_t fn;
    CHECK_EQ(hdb_lookup(db, &first, "A", &fid, 1, &fn), CORDON_OK);
    CHECK_EQ(fn, 1); /* still readable and consistent */
    hdb_close(db);
}

/* ------------------------------------------------------------------ */
/* Interchange                                                          */

typedef struct {
    uint64_t line[32];
    int err[32];
    int n;
} err_list_t;

static void collect_err(void *ctx, uint64_t line, int err, const char *msg)
{
    err_list_t *l = ctx;
    (void)msg;
    if (l->n < 32) {
        l->line[l->n] = line;
        l->err[l->n] = err;
    }
    l->n++;
}

static int mem_write(void *ctx, const char *buf, size_t len)
{
    char **s = ctx;
    size_t old = *s ? strlen(*s) : 0;
    char *n = realloc(*s, old + len + 1);
    if (!n)
        return CORDON_ENOMEM;
    memcpy(n + old, buf, len);
    n[old + len] = 0;
    *s = n;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The lines of text, sorted and joined: a set, for comparisons. */
static char *sorted_lines(const char *text, int skip_first)
{
    char *copy = strdup(text ? text : "");
    char *lines[4096];
    int n = 0;
    for (char *save, *l = strtok_r(copy, "\n", &save); l && n < 4096;
         l = strtok_r(NULL, "\n", &save))
        lines[n++] = l;
    int first = skip_first && n ? 1 : 0;
    qsort(lines + first, (size_t)(n - first), sizeof *lines, cmp_str);
    size_t total = 1;
    for (int i = first; i < n; i++)
        total += strlen(lines[i]) + 1;
    char *out = calloc(1, total);
    for (int i = first; i < n; i++) {
        strcat(out, lines[i]);
        strcat(out, "\n");
    }
    free(copy);
    return out;
}

static void fill_sample(hdb_t *db)
{
    const char *bl[] = {"entity:isis"};
    hdb_bank_spec_t b1 = {"ISIS_AMAQ", 1, "block", bl, 1};
    hdb_bank_spec_t b2 = {"Sample Data", 1, NULL, NULL, 0};
    REQUIRE(hdb_bank_create(db, &b1, NULL) == CORDON_OK);
    REQUIRE(hdb_bank_create(db, &b2, NULL) == CORDON_OK);
    const char *l1[] = {"category:TRUE_POSITIVE", "tag:media_type_video",
                        "entity:amaq"};
    const char *l2[] = {"tag:x", "content:image"};
    hdb_vpdq_frame_t fr[2] = {{pdq_sig(9, 0).pdq, 70, 0.0, 2},
                              {pdq_sig(10, 0).pdq, 71, 2.25, 1}};
    for (int i = 0; i < 12; i++) {
        hdb_signal_t s[2];
        size_t ns = 1;
        switch (i % 4) {
        case 0:
            s[0] = pdq_sig((uint64_t)i, 90);
            s[1] = digest_sig(HDB_SIG_MD5, (uint64_t)i); /* two rows */
            ns = 2;
            break;
        case 1:
            s[0] = digest_sig(HDB_SIG_MD5, (uint64_t)i + 100);
            break;
        case 2:
            s[0] = digest_sig(HDB_SIG_SHA256, (uint64_t)i);
            break;
        default:
            memset(&s[0], 0, sizeof s[0]);
            s[0].type = HDB_SIG_VPDQ;
            s[0].frames = fr;
            s[0].nframes = 2;
            fr[0].hash.w[0] = (uint64_t)i; /* distinct per item */
            break;
        }
        hdb_item_spec_t spec;
        memset(&spec, 0, sizeof spec);
        spec.bank = i % 3 ? "ISIS_AMAQ" : "Sample Data";
        spec.labels = i % 2 ? l1 : l2;
        spec.nlabels = i % 2 ? 3 : 2;
        spec.signals = s;
        spec.nsignals = ns;
        REQUIRE(hdb_item_add(db, &spec, 0, NULL) == CORDON_OK);
    }
}

static void round_trip(hdb_format_t fmt)
{
    hdb_t *a = fresh_db(), *b = fresh_db();
    REQUIRE(a && b);
    fill_sample(a);
    char *out1 = NULL, *out2 = NULL;
    hdb_export_params_t ep;
    memset(&ep, 0, sizeof ep);
    ep.format = fmt;
    hdb_export_result_t er;
    if (fmt == HDB_FMT_LOCAL)
        ep.bank = "ISIS_AMAQ";
    CHECK_EQ(hdb_export(a, &ep, mem_write, &out1, &er), CORDON_OK);
    REQUIRE(out1);
    CHECK_EQ(er.items, fmt == HDB_FMT_LOCAL ? 8 : 12);
    CHECK_EQ(er.rows, fmt == HDB_FMT_LOCAL ? 10 : 15);

    hdb_import_params_t ip;
    memset(&ip, 0, sizeof ip);
    ip.format = fmt;
    ip.create_banks = 1;
    ip.bank = fmt == HDB_FMT_LOCAL ? "ISIS_AMAQ" : NULL;
    hdb_import_result_t ir;
    err_list_t errs = {{0}, {0}, 0};
    ip.on_error = collect_err;
    ip.error_ctx = &errs;
    CHECK_EQ(hdb_import(b, &ip, out1, strlen(out1), &ir), CORDON_OK);
    CHECK_EQ(errs.n, 0);
    CHECK_EQ(ir.added, er.rows);
    CHECK_EQ(ir.bad, 0);
    CHECK_EQ(ir.banks_created, fmt == HDB_FMT_LOCAL ? 1 : 2);
    CHECK_EQ(hdb_export(b, &ep, mem_write, &out2, NULL), CORDON_OK);
    char *s1 = sorted_lines(out1, fmt == HDB_FMT_TE_CSV);
    char *s2 = sorted_lines(out2, fmt == HDB_FMT_TE_CSV);
    CHECK_MSG(strcmp(s1, s2) == 0, "export 1:\n%s\nexport 2:\n%s", s1, s2);
    if (fmt == HDB_FMT_TE_CSV)
        CHECK(strncmp(out2, "signal_type,signal_str,collab,category,tags\n",
                      44) == 0);

    /* Importing the same file again only finds duplicates. */
    CHECK_EQ(hdb_import(b, &ip, out1, strlen(out1), &ir), CORDON_OK);
    CHECK_EQ(ir.added, 0);
    CHECK_EQ(ir.duplicates, er.rows);
    free(s1);
    free(s2);
    free(out1);
    free(out2);
    hdb_close(a);
    hdb_close(b);
}

TEST(te_csv_round_trip)
{
    round_trip(HDB_FMT_TE_CSV);
}

TEST(local_round_trip)
{
    round_trip(HDB_FMT_LOCAL);
}

TEST(te_csv_mapping_and_since)
{
    hdb_t *db = fresh_db();
    REQUIRE(db);
    /* python-threatexchange's own column order, quoting, CRLF, a
     * multi-line quoted field and long type names. */
    const char *csv =
        "collab,signal_type,signal_str,category,tags\r\n"
        "Sample Data,pdq,f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6"
        "b39c4e9c9b22,TRUE_POSITIVE,media_type_photo entity:x\r\n"
        "\"Other, Collab\",video_md5,D41D8CD98F00B204E9800998ECF8427E,,\r\n"
        "\"Multi\nLine\",raw_text,hello,,\n";
    hdb_import_params_t ip;
    memset(&ip, 0, sizeof ip);
    ip.format = HDB_FMT_TE_CSV;
    ip.create_banks = 1;
    ip.ignore_unknown_types = 1;
    hdb_import_result_t ir;
    CHECK_EQ(hdb_import(db, &ip, csv, strlen(csv), &ir), CORDON_OK);
    CHECK_EQ(ir.added, 2);
    CHECK_EQ(ir.unknown_types, 1);
    CHECK_EQ(ir.lines, 5);
    CHECK_EQ(ir.banks_created, 2);
    hdb_item_t *it;
    REQUIRE(hdb_item_get(db, 1, &it) == CORDON_OK);
    CHECK_STREQ(it->bank, "Sample Data");
    REQUIRE(it->nlabels == 3);
    CHECK_STREQ(it->labels[0], "category:TRUE_POSITIVE");
    CHECK_STREQ(it->labels[1], "tag:media_type_photo");
    CHECK_STREQ(it->labels[2], "entity:x");
    CHECK_EQ(it->signals[0].quality, HDB_QUALITY_UNKNOWN);
    hdb_free(it);
    REQUIRE(hdb_item_get(db, 2, &it) == CORDON_OK);
    CHECK_STREQ(it->bank, "Other, Collab");
    CHECK_EQ(it->signals[0].type, HDB_SIG_MD5);
    hdb_free(it);

    /* Export: since a sequence, one bank, python-threatexchange names. */
    uint64_t mark;
    CHECK_EQ(hdb_last_seq(db, &mark), CORDON_OK);
    hdb_signal_t md5 = digest_sig(HDB_SIG_MD5, 5);
    REQUIRE(add1(db, "Other, Collab", md5, 0, NULL) == CORDON_OK);
    REQUIRE(add1(db, "Sample Data", pdq_sig(3, 90), 0, NULL) == CORDON_OK);
    hdb_export_params_t ep;
    memset(&ep, 0, sizeof ep);
    ep.format = HDB_FMT_TE_CSV;
    ep.since_seq = mark;
    ep.bank = "Other, Collab";
    ep.pytx_names = 1;
    ep.no_header = 1;
    char *out = NULL;
    hdb_export_result_t er;
    CHECK_EQ(hdb_export(db, &ep, mem_write, &out, &er), CORDON_OK);
    REQUIRE(out);
    char want[256];
    char hex[33];
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", md5.digest[i]);
    snprintf(want, sizeof want, "video_md5,%s,\"Other, Collab\",,\n", hex);
    CHECK_STREQ(out, want);
    CHECK_EQ(er.items, 1);
    CHECK_EQ(er.last_seq, mark + 2);
    free(out);
    out = NULL;
    ep.bank = NULL;
    ep.types = 1u << HDB_SIG_PDQ;
    ep.since_seq = 0;
    CHECK_EQ(hdb_export(db, &ep, mem_write, &out, &er), CORDON_OK);
    CHECK_EQ(er.rows, 2);
    free(out);
    hdb_close(db);
}

TEST(import_errors_strict_and_skip)
{
    hdb_t *db = fresh_db();
    REQUIRE(db);
    REQUIRE(mkbank(db, "A", 1) == CORDON_OK);
    const char *text =
        "pdq f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22\n"
        "# a comment\n"
        "md5 d41d8cd98f00b204e9800998ecf8427e\n"
        "md5 d41d8cd98f00b204e9800998ecf8427\n" /* line 4: short */
        "\n"
        "sha256 zz\n"    /* line 6 */
        "tmk_pdqf abc\n" /* line 7: unknown type */
        "pdq\n"          /* line 8: no signal */
        "pdq 0000000000000000000000000000000000000000000000000000000000000001,"
        "100\n";
    hdb_import_params_t ip;
    memset(&ip, 0, sizeof ip);
    ip.format = HDB_FMT_LOCAL;
    ip.bank = "A";
    err_list_t errs = {{0}, {0}, 0};
    ip.on_error = collect_err;
    ip.error_ctx = &errs;
    hdb_import_result_t ir;

    /* Strict: every bad line reported, nothing written. */
    CHECK_EQ(hdb_import(db, &ip, text, strlen(text), &ir), CORDON_EPARSE);
    REQUIRE(errs.n == 4);
    CHECK_EQ(errs.line[0], 4);
    CHECK_EQ(errs.line[1], 6);
    CHECK_EQ(errs.line[2], 7);
    CHECK_EQ(errs.line[3], 8);
    CHECK_EQ(errs.err[0], CORDON_EPARSE);
    CHECK_EQ(ir.bad, 4);
    CHECK_EQ(ir.first_bad_line, 4);
    CHECK_EQ(ir.added, 0);
    CHECK_EQ(ir.lines, 9);
    hdb_stats_t st;
    CHECK_EQ(hdb_stats(db, &st), CORDON_OK);
    CHECK_EQ(st.items, 0);
    CHECK_EQ(st.last_seq, 1); /* only the bank */

    /* max_errors limits the reports, not the count. */
    errs.n = 0;
    ip.max_errors = 2;
    CHECK_EQ(hdb_import(db, &ip, text, strlen(text), &ir), CORDON_EPARSE);
    CHECK_EQ(errs.n, 2);
    CHECK_EQ(ir.bad, 4);

    /* Skip mode: bad lines reported and skipped, the rest imported whole. */
    errs.n = 0;
    ip.max_errors = 0;
    ip.skip_bad_lines = 1;
    ip.batch_items = 2;
    CHECK_EQ(hdb_import(db, &ip, text, strlen(text), &ir), CORDON_OK);
    CHECK_EQ(errs.n, 4);
    CHECK_EQ(ir.added, 3);
    CHECK_EQ(ir.bad, 4);
    CHECK_EQ(hdb_stats(db, &st), CORDON_OK);
    CHECK_EQ(st.items, 3);
    hdb_item_t *it;
    REQUIRE(hdb_item_get(db, 3, &it) == CORDON_OK);
    CHECK_EQ(it->signals[0].quality, 100);
    hdb_free(it);

    /* CSV: a broken quoted record, an unknown bank, a bad label. */
    const char *csv =
        "signal_type,signal_str,collab,category,tags\n"
        "md5,00000000000000000000000000000001,A,,ok\n"
        "md5,\"00000000000000000000000000000002\"x,A,,\n"          /* line 3 */
        "md5,00000000000000000000000000000003,NOBANK,,\n"          /* line 4 */
        "md5,00000000000000000000000000000004,A,,\"bad\001tag\"\n" /* 5 */
        "md5,\"0000000000000000000000000000000\n5\",A,,\n"         /* 6-7 */
        "md5,00000000000000000000000000000006,A\n";                /* 8 */
    memset(&ip, 0, sizeof ip);
    ip.format = HDB_FMT_TE_CSV;
    errs.n = 0;
    ip.on_error = collect_err;
    ip.error_ctx = &errs;
    CHECK_EQ(hdb_import(db, &ip, csv, strlen(csv), &ir), CORDON_EPARSE);
    REQUIRE(errs.n == 4);
    CHECK_EQ(errs.line[0], 3);
    CHECK_EQ(errs.line[1], 4);
    CHECK_EQ(errs.line[2], 5);
    CHECK_EQ(errs.line[3], 6);
    CHECK_EQ(ir.lines, 8);
    CHECK_EQ(hdb_stats(db, &st), CORDON_OK);
    CHECK_EQ(st.items, 3);

    /* Unterminated quote at the end. */
    const char *tail = "md5,\"0000";
    errs.n = 0;
    CHECK_EQ(hdb_import(db, &ip, tail, strlen(tail), &ir), CORDON_EPARSE);
    CHECK_EQ(errs.n, 1);
    CHECK_EQ(errs.line[0], 1);

    /* Local format needs its bank. */
    memset(&ip, 0, sizeof ip);
    ip.format = HDB_FMT_LOCAL;
    ip.bank = "MISSING";
    CHECK_EQ(hdb_import(db, &ip, text, strlen(text), &ir), CORDON_ENOTFOUND);
    ip.bank = NULL;
    CHECK_EQ(hdb_import(db, &ip, text, strlen(text), &ir), CORDON_EINVAL);

    /* From a file, with a default type. */
    const char *path = tu_path("%s/hashes.txt", tu_tmpdir());
    const char *plain = "00000000000000000000000000000000000000000000000000"
                        "000000000000ff\n";
    REQUIRE(tu_write_file(path, plain, strlen(plain)) == 0);
    ip.bank = "A";
    ip.default_type = HDB_SIG_PDQ;
    CHECK_EQ(hdb_import_file(db, &ip, path, &ir), CORDON_OK);
    CHECK_EQ(ir.added, 1);
    CHECK_EQ(hdb_import_file(db, &ip, tu_path("%s/nope", tu_tmpdir()), &ir),
             CORDON_ENOTFOUND);
    hdb_close(db);
}

/* ------------------------------------------------------------------ */

typedef struct {
    hdb_t *dst;
    int errors;
} replicate_t;

static int replicate(void *ctx, const hdb_change_t *ch)
{
    replicate_t *r = ctx;
    if (ch->bank) {
        if (ch->kind == HDB_CHANGE_BANK_ADD) {
            hdb_bank_spec_t s = {ch->bank->name, ch->bank->enabled,
                                 ch->bank->default_action, ch->bank->labels,
                                 ch->bank->nlabels};
            if (hdb_bank_create(r->dst, &s, NULL) != CORDON_OK)
                r->errors++;
        }
        return 0;
    }
    if (hdb_item_put(r->dst, ch->item, NULL) != CORDON_OK)
        r->errors++;
    return 0;
}

TEST(replicate_with_item_put)
{
    hdb_t *a = fresh_db(), *b = fresh_db();
    REQUIRE(a && b);
    fill_sample(a);
    CHECK_EQ(hdb_item_remove(a, 2, NULL), CORDON_OK);
    CHECK_EQ(hdb_item_set_note(a, 3, "updated"), CORDON_OK);
    replicate_t r = {b, 0};
    CHECK_EQ(hdb_changes_since(a, 0, 0, replicate, &r, NULL), CORDON_OK);
    CHECK_EQ(r.errors, 0);
    hdb_stats_t sa, sb;
    CHECK_EQ(hdb_stats(a, &sa), CORDON_OK);
    CHECK_EQ(hdb_stats(b, &sb), CORDON_OK);
    CHECK_EQ(sb.items, sa.items);
    CHECK_EQ(sb.tombstones, sa.tombstones);
    for (int t = 1; t <= HDB_SIG_MAX; t++)
        CHECK_EQ(sb.signals[t], sa.signals[t]);
    for (uint64_t id = 1; id <= 12; id++) {
        hdb_item_t *x, *y;
        REQUIRE(hdb_item_get(a, id, &x) == CORDON_OK);
        REQUIRE(hdb_item_get(b, id, &y) == CORDON_OK);
        CHECK_STREQ(x->bank, y->bank);
        CHECK_STREQ(x->note, y->note);
        CHECK_EQ(x->deleted, y->deleted);
        CHECK_EQ(x->nsignals, y->nsignals);
        for (size_t i = 0; i < x->nsignals && i < y->nsignals; i++)
            CHECK(sig_eq(&x->signals[i], &y->signals[i]));
        hdb_free(x);
        hdb_free(y);
    }
    /* New local items do not collide with the replicated ids. */
    hdb_add_result_t res;
    CHECK_EQ(add1(b, "ISIS_AMAQ", pdq_sig(999, 90), 0, &res), CORDON_OK);
    CHECK_EQ(res.id, 13);
    hdb_close(a);
    hdb_close(b);
}

typedef struct {
    int n;
    int revoked;
} key_count_t;

static int count_key(void *ctx, const hdb_apikey_t *k)
{
    key_count_t *c = ctx;
    c->n++;
    c->revoked += k->revoked_at != 0;
    return 0;
}

TEST(kv_and_api_keys)
{
    hdb_t *db = fresh_db();
    REQUIRE(db);
    char buf[16];
    size_t len;
    CHECK_EQ(hdb_kv_get(db, "sync.peer.a", buf, sizeof buf, &len),
             CORDON_ENOTFOUND);
    CHECK_EQ(hdb_kv_set(db, "sync.peer.a", "12345", 5), CORDON_OK);
    CHECK_EQ(hdb_kv_get(db, "sync.peer.a", buf, sizeof buf, &len), CORDON_OK);
    CHECK_EQ(len, 5);
    CHECK(memcmp(buf, "12345", 5) == 0);
    CHECK_EQ(hdb_kv_get(db, "sync.peer.a", buf, 2, &len), CORDON_ESCRATCH);
    CHECK_EQ(len, 5);
    CHECK_EQ(hdb_kv_del(db, "sync.peer.a"), CORDON_OK);
    CHECK_EQ(hdb_kv_del(db, "sync.peer.a"), CORDON_ENOTFOUND);
    CHECK_EQ(hdb_kv_set(db, "", "x", 1), CORDON_EINVAL);

    uint8_t h1[32], h2[32];
    memset(h1, 1, 32);
    memset(h2, 2, 32);
    uint64_t id1, id2;
    CHECK_EQ(hdb_apikey_add(db, "moderation-ui", "write", h1, &id1), CORDON_OK);
    CHECK_EQ(hdb_apikey_add(db, "again", "read", h1, NULL), CORDON_EEXIST);
    CHECK_EQ(hdb_apikey_add(db, "uploader", "read", h2, &id2), CORDON_OK);
    CHECK_NE(id1, id2);
    hdb_apikey_t *k = NULL;
    REQUIRE(hdb_apikey_lookup(db, h1, &k) == CORDON_OK);
    CHECK_STREQ(k->name, "moderation-ui");
    CHECK_STREQ(k->role, "write");
    CHECK_EQ(k->id, id1);
    CHECK_EQ(k->revoked_at, 0);
    hdb_free(k);
    CHECK_EQ(hdb_apikey_revoke(db, id1), CORDON_OK);
    CHECK_EQ(hdb_apikey_revoke(db, id1), CORDON_ENOTFOUND);
    CHECK_EQ(hdb_apikey_lookup(db, h1, &k), CORDON_EPERM);
    uint8_t h3[32] = {3};
    CHECK_EQ(hdb_apikey_lookup(db, h3, &k), CORDON_ENOTFOUND);
    key_count_t c = {0, 0};
    CHECK_EQ(hdb_apikey_list(db, count_key, &c), CORDON_OK);
    CHECK_EQ(c.n, 2);
    CHECK_EQ(c.revoked, 1);
    hdb_close(db);
}

/* ------------------------------------------------------------------ */
/* Two processes                                                        */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

typedef struct {
    uint64_t items;
} count_ctx_t;

static int count_adds(void *ctx, const hdb_change_t *ch)
{
    count_ctx_t *c = ctx;
    if (ch->item && !ch->item->deleted)
        c->items++;
    return 0;
}

/* The child: polls hdb_last_seq like a long-running server and follows the
 * change log until it has seen `want` items. Exit 0 on success. */
static int reader_child(const char *path, int ready_fd, uint64_t want)
{
    hdb_opts_t o = {0};
    o.readonly = 1;
    o.initial_map_size = 128 << 10; /* smaller than the writer's map */
    hdb_t *db = NULL;
    if (hdb_open(path, &o, &db) != CORDON_OK)
        return 10;
    if (write(ready_fd, "r", 1) != 1)
        return 11;
    close(ready_fd);
    uint64_t pos = 0, seen = 0, last = 0;
    double deadline = now_s() + 60;
    while (seen < want && now_s() < deadline) {
        if (hdb_last_seq(db, &last) != CORDON_OK)
            return 12;
        if (last > pos) {
            count_ctx_t c = {0};
            uint64_t next;
            if (hdb_changes_since(db, pos, 0, count_adds, &c, &next) !=
                CORDON_OK)
                return 13;
            seen += c.items;
            pos = next;
        }
        usleep(20000);
    }
    hdb_stats_t st;
    int ok =
        seen == want && hdb_stats(db, &st) == CORDON_OK && st.items == want;
    hdb_close(db);
    return ok ? 0 : 14;
}

TEST(second_process_sees_writes)
{
    const char *path = fresh_path();
    hdb_opts_t o = {0};
    o.nosync = 1;
    o.initial_map_size = 128 << 10;
    hdb_t *db = open_db(path, &o);
    REQUIRE(db);
    REQUIRE(mkbank(db, "A", 1) == CORDON_OK);
    hdb_close(db); /* no handle may cross fork() */

    const uint64_t rounds = 20, per = 200;
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        _exit(reader_child(path, fds[1], rounds * per));
    }
    close(fds[1]);
    char c;
    CHECK_EQ(read(fds[0], &c, 1), 1);
    close(fds[0]);

    db = open_db(path, &o);
    if (db) {
        uint64_t n = 0;
        for (uint64_t r = 0; r < rounds; r++) {
            hdb_batch_t *b;
            if (hdb_batch_begin(db, &b) != CORDON_OK)
                break;
            for (uint64_t i = 0; i < per; i++) {
                hdb_signal_t s = pdq_sig(r * per + i, 90);
                hdb_item_spec_t spec;
                memset(&spec, 0, sizeof spec);
                spec.bank = "A";
                spec.note = "written while another process reads";
                spec.signals = &s;
                spec.nsignals = 1;
                hdb_batch_add(b, &spec, 0);
            }
            hdb_batch_result_t br;
            CHECK_EQ(hdb_batch_commit(b, NULL, &br), CORDON_OK);
            n += br.added;
            usleep(10000);
        }
        CHECK_EQ(n, rounds * per);
        hdb_stats_t st;
        CHECK_EQ(hdb_stats(db, &st), CORDON_OK);
        CHECK_GT(st.map_size, (uint64_t)(128 << 10)); /* it grew meanwhile */
        hdb_close(db);
    }
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
}

typedef struct {
    hdb_t *db;
    volatile int stop;
    int errors;
    uint64_t reads;
} reader_thread_t;

static int count_only(void *ctx, const hdb_hash_entry_t *e, size_t n)
{
    (void)e;
    *(uint64_t *)ctx += n;
    return 0;
}

static void *reader_thread(void *arg)
{
    reader_thread_t *r = arg;
    uint64_t prev = 0;
    while (!r->stop) {
        uint64_t seq = 0, n = 0, snap = 0;
        if (hdb_last_seq(r->db, &seq) != CORDON_OK || seq < prev)
            r->errors++;
        prev = seq;
        if (hdb_iter_hashes(r->db, 0, count_only, &n, &snap) != CORDON_OK ||
            snap < seq || n + 1 < snap) /* seq 1 is the bank */
            r->errors++;
        r->reads++;
    }
    return NULL;
}

/* Threads share one handle while the map grows under them. */
TEST(threads_share_a_handle)
{
    hdb_opts_t o = {0};
    o.nosync = 1;
    o.initial_map_size = 128 << 10;
    hdb_t *db = open_db(fresh_path(), &o);
    REQUIRE(db);
    REQUIRE(mkbank(db, "A", 1) == CORDON_OK);
    reader_thread_t r[2] = {{db, 0, 0, 0}, {db, 0, 0, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        REQUIRE(pthread_create(&th[i], NULL, reader_thread, &r[i]) == 0);
    int ok = 0;
    for (int i = 0; i < 3000; i++)
        ok += add1(db, "A", pdq_sig((uint64_t)i, 90), 0, NULL) == CORDON_OK;
    for (int i = 0; i < 2; i++) {
        r[i].stop = 1;
        pthread_join(th[i], NULL);
        CHECK_EQ(r[i].errors, 0);
        CHECK_GT(r[i].reads, 0);
    }
    CHECK_EQ(ok, 3000);
    hdb_stats_t st;
    CHECK_EQ(hdb_stats(db, &st), CORDON_OK);
    CHECK_EQ(st.items, 3000);
    CHECK_GT(st.map_size, (uint64_t)(512 << 10));
    hdb_close(db);
}

/* Import deduplicates PDQ by the whole hash: hashes that differ only in
 * their upper or lower half are distinct items; an identical one is a
 * duplicate. */
TEST(import_pdq_dedup_uses_whole_hash)
{
    hdb_t *db = NULL;
    hdb_opts_t o;
    memset(&o, 0, sizeof o);
    o.nosync = 1;
    REQUIRE(hdb_open(tu_path("%s/dedup.db", tu_tmpdir()), &o, &db) ==
            CORDON_OK);
    const char *in =
        "pdq fb4eed46cb8a6c78819ca06b756c541f7b07ef6d02c82fccd00f862166272cda\n"
        "pdq 0b4eed46cb8a6c78819ca06b756c541f7b07ef6d02c82fccd00f862166272cda\n"
        "pdq fb4eed46cb8a6c78819ca06b756c541f7b07ef6d02c82fccd00f862166272cdb\n"
        "pdq fb4eed46cb8a6c78819ca06b756c541f7b07ef6d02c82fccd00f862166272cda\n"
        "pdq 0000000000000000000000000000000000000000000000000000000000000000\n"
        "pdq "
        "0000000000000000000000000000000000000000000000000000000000000000\n";
    hdb_import_params_t ip;
    memset(&ip, 0, sizeof ip);
    ip.format = HDB_FMT_LOCAL;
    ip.bank = "T";
    ip.create_banks = 1;
    hdb_import_result_t ir;
    CHECK_EQ(hdb_import(db, &ip, in, strlen(in), &ir), CORDON_OK);
    CHECK_EQ(ir.added, 4);
    CHECK_EQ(ir.duplicates, 2);
    /* A second import of the same lines adds nothing. */
    CHECK_EQ(hdb_import(db, &ip, in, strlen(in), &ir), CORDON_OK);
    CHECK_EQ(ir.added, 0);
    CHECK_EQ(ir.duplicates, 6);
    hdb_close(db);
}

int main(int argc, char **argv)
{
    (void)argc;
    th_init(argv[0]);
    RUN(signal_text_forms);
    RUN(banks);
    RUN(items_round_trip);
    RUN(dedup_within_bank_only);
    RUN(tombstones_and_disable);
    RUN(hash_iteration_flags);
    RUN(change_log);
    RUN(schema_version);
    RUN(map_grows_when_full);
    RUN(te_csv_round_trip);
    RUN(local_round_trip);
    RUN(te_csv_mapping_and_since);
    RUN(import_errors_strict_and_skip);
    RUN(replicate_with_item_put);
    RUN(kv_and_api_keys);
    RUN(threads_share_a_handle);
    RUN(second_process_sees_writes);
    RUN(import_pdq_dedup_uses_whole_hash);
    return TH_END();
}
