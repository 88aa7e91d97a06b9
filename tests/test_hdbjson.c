/* The JSON codec of the change feed (tools/hdbjson.c): round trips of every
 * field and signal type, through text and through a real database, and
 * refusal of malformed records with errors that name the member. */
#include <math.h>

#include "../tools/hdbjson.h"
#include "cordon_error.h"
#include "harness.h"
#include "hdb.h"
#include "util.h"

static const char PDQ1[] =
    "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
static const char PDQ2[] =
    "0000000000000000ffffffffffffffff0123456789abcdef0123456789abcdef";

static hdb_signal_t sig_pdq(const char *hex, int q)
{
    hdb_signal_t s;
    memset(&s, 0, sizeof s);
    s.type = HDB_SIG_PDQ;
    s.quality = q;
    cordon_hash_from_hex(hex, 64, &s.pdq);
    return s;
}

static hdb_signal_t sig_digest(hdb_sigtype_t t, uint8_t fill)
{
    hdb_signal_t s;
    memset(&s, 0, sizeof s);
    s.type = t;
    for (int i = 0; i < (t == HDB_SIG_MD5 ? 16 : 32); i++)
        s.digest[i] = (uint8_t)(fill + 37 * i);
    return s;
}

static hdb_vpdq_frame_t frames[3];

static hdb_signal_t sig_vpdq(void)
{
    cordon_hash_from_hex(PDQ1, 64, &frames[0].hash);
    frames[0].quality = 100;
    frames[0].timestamp = 0;
    frames[0].count = 1;
    cordon_hash_from_hex(PDQ2, 64, &frames[1].hash);
    frames[1].quality = HDB_QUALITY_UNKNOWN;
    frames[1].timestamp = 0.1; /* not exact in binary: must still round trip */
    frames[1].count = 7;
    cordon_hash_from_hex(PDQ1, 64, &frames[2].hash);
    frames[2].quality = 0;
    frames[2].timestamp = 12345.678901234567;
    frames[2].count = UINT32_MAX;
    hdb_signal_t s;
    memset(&s, 0, sizeof s);
    s.type = HDB_SIG_VPDQ;
    s.frames = frames;
    s.nframes = 3;
    return s;
}

static const char *const LABELS[] = {"entity:amaq", "type:video",
                                     "behaviour:recruitment"};

static hdb_item_t sample_item(hdb_signal_t *sigs)
{
    sigs[0] = sig_pdq(PDQ1, 87);
    sigs[1] = sig_pdq(PDQ2, HDB_QUALITY_UNKNOWN);
    sigs[2] = sig_digest(HDB_SIG_MD5, 3);
    sigs[3] = sig_digest(HDB_SIG_SHA256, 200);
    sigs[4] = sig_vpdq();
    hdb_item_t it;
    memset(&it, 0, sizeof it);
    it.id = 1234;
    it.bank = "ISIS_AMAQ_VIDEO";
    it.labels = LABELS;
    it.nlabels = 3;
    it.note = "seen on \"channel\" \\ twice\nsecond line";
    it.prov.added_by = "analyst1";
    it.prov.source = HDB_SOURCE_EXCHANGE;
    it.prov.source_name = "gifct";
    it.prov.added_at = 1764000000;
    it.disable_until = INT64_MAX;
    it.signals = sigs;
    it.nsignals = 5;
    return it;
}

static void check_same_signal(const hdb_signal_t *a, const hdb_signal_t *b)
{
    CHECK_EQ(a->type, b->type);
    switch (a->type) {
    case HDB_SIG_PDQ:
        CHECK(memcmp(&a->pdq, &b->pdq, sizeof a->pdq) == 0);
        CHECK_EQ(a->quality, b->quality);
        break;
    case HDB_SIG_MD5:
        CHECK(memcmp(a->digest, b->digest, 16) == 0);
        break;
    case HDB_SIG_SHA256:
        CHECK(memcmp(a->digest, b->digest, 32) == 0);
        break;
    case HDB_SIG_VPDQ:
        CHECK_EQ(a->nframes, b->nframes);
        for (size_t i = 0; i < a->nframes && i < b->nframes; i++) {
            const hdb_vpdq_frame_t *x = &a->frames[i], *y = &b->frames[i];
            CHECK(memcmp(&x->hash, &y->hash, sizeof x->hash) == 0);
            CHECK_EQ(x->quality, y->quality);
            CHECK_MSG(x->timestamp == y->timestamp, "%.17g vs %.17g",
                      x->timestamp, y->timestamp);
            CHECK_EQ(x->count, y->count);
        }
        break;
    default:
        CHECK(0);
    }
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

static void check_same_item(const hdb_item_t *a, const hdb_item_t *b)
{
    CHECK_EQ(a->id, b->id);
    CHECK_STREQ(a->bank, b->bank);
    CHECK_EQ(a->deleted, b->deleted);
    CHECK_EQ(a->nlabels, b->nlabels);
    for (size_t i = 0; i < a->nlabels && i < b->nlabels; i++)
        CHECK_STREQ(a->labels[i], b->labels[i]);
    CHECK_STREQ(nz(a->note), nz(b->note));
    CHECK_STREQ(nz(a->prov.added_by), nz(b->prov.added_by));
    CHECK_EQ(a->prov.source, b->prov.source);
    CHECK_STREQ(nz(a->prov.source_name), nz(b->prov.source_name));
    CHECK_EQ(a->prov.added_at, b->prov.added_at);
    CHECK_EQ(a->disable_until, b->disable_until);
    CHECK_EQ(a->nsignals, b->nsignals);
    for (size_t i = 0; i < a->nsignals && i < b->nsignals; i++)
        check_same_signal(&a->signals[i], &b->signals[i]);
}

/* Encodes, prints, reloads and parses: what a peer on the wire sees. */
static int reparse_item(const hdb_item_t *it, hdbjson_item_buf_t *buf)
{
    json_t *j = hdbjson_item(it);
    if (!j)
        return CORDON_ENOMEM;
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    json_error_t e;
    json_t *back = json_loads(text, JSON_REJECT_DUPLICATES, &e);
    free(text);
    int rc = hdbjson_item_parse(back, buf);
    json_decref(back);
    return rc;
}

TEST(item_round_trip_every_field)
{
    hdb_signal_t sigs[5];
    hdb_item_t it = sample_item(sigs);
    hdbjson_item_buf_t buf = {0};
    int rc = reparse_item(&it, &buf);
    CHECK_MSG(rc == CORDON_OK, "%s", buf.error);
    check_same_item(&it, &buf.item);

    /* The encoding of the parsed record is the same JSON again. */
    json_t *a = hdbjson_item(&it), *b = hdbjson_item(&buf.item);
    CHECK(a && b && json_equal(a, b));
    json_decref(a);
    json_decref(b);

    /* A tombstone of a deleted bank, unknown provenance, no labels. */
    it.deleted = 1;
    it.bank = "";
    it.nlabels = 0;
    it.note = NULL;
    it.prov.added_by = NULL;
    it.prov.source_name = NULL;
    it.prov.source = HDB_SOURCE_UNKNOWN;
    it.disable_until = 0;
    rc = reparse_item(&it, &buf); /* reuses the buffer */
    CHECK_MSG(rc == CORDON_OK, "%s", buf.error);
    check_same_item(&it, &buf.item);
    CHECK(buf.item.prov.added_by == NULL);
    CHECK(buf.item.prov.source_name == NULL);
    CHECK_STREQ(buf.item.note, "");
    hdbjson_item_buf_free(&buf);
    hdbjson_item_buf_free(&buf); /* twice is fine */
}

TEST(item_json_shape)
{
    hdb_signal_t sigs[5];
    hdb_item_t it = sample_item(sigs);
    json_t *j = hdbjson_item(&it);
    REQUIRE(j);
    CHECK_EQ(json_integer_value(json_object_get(j, "id")), 1234);
    CHECK_STREQ(json_string_value(json_object_get(j, "bank")),
                "ISIS_AMAQ_VIDEO");
    json_t *prov = json_object_get(j, "provenance");
    CHECK_STREQ(json_string_value(json_object_get(prov, "source")), "exchange");
    json_t *s = json_object_get(j, "signals");
    CHECK_STREQ(
        json_string_value(json_object_get(json_array_get(s, 0), "value")),
        PDQ1);
    CHECK_EQ(
        json_integer_value(json_object_get(json_array_get(s, 1), "quality")),
        -1);
    CHECK_STREQ(
        json_string_value(json_object_get(json_array_get(s, 2), "type")),
        "md5");
    json_t *v = json_object_get(json_array_get(s, 4), "value");
    CHECK_EQ(json_array_size(v), 3);
    /* One frame: 3 fields; a run of 7: a fourth field with the count. */
    char want0[128], want1[128];
    snprintf(want0, sizeof want0, "%s,100,0", PDQ1);
    snprintf(want1, sizeof want1, "%s,-1,0.1,7", PDQ2);
    CHECK_STREQ(json_string_value(json_array_get(v, 0)), want0);
    CHECK_STREQ(json_string_value(json_array_get(v, 1)), want1);
    json_decref(j);
}

TEST(frames_in_contract_forms)
{
    /* Upper-case hex, a fixed-point timestamp and an exponent. */
    char doc[1024];
    snprintf(doc, sizeof doc,
             "{\"id\": 9, \"bank\": \"B\", \"signals\": [{\"type\": \"vpdq\","
             " \"value\": [\"%s,100,3.000,5\", \"%s,50,1.5e1\"]}]}",
             "F8F8F0CEE0F4A84F06370A22038F63F0B36E2ED596621E1D33E6B39C4E9C9B22",
             PDQ2);
    json_t *j = json_loads(doc, 0, NULL);
    REQUIRE(j);
    hdbjson_item_buf_t buf = {0};
    int rc = hdbjson_item_parse(j, &buf);
    CHECK_MSG(rc == CORDON_OK, "%s", buf.error);
    if (rc == CORDON_OK) {
        const hdb_signal_t *s = &buf.item.signals[0];
        CHECK_EQ(s->nframes, 2);
        CHECK_EQ(s->frames[0].count, 5);
        CHECK(s->frames[0].timestamp == 3.0);
        CHECK_EQ(s->frames[1].quality, 50);
        CHECK(s->frames[1].timestamp == 15.0);
        cordon_hash256_t h;
        cordon_hash_from_hex(PDQ1, 64, &h);
        CHECK(memcmp(&h, &s->frames[0].hash, sizeof h) == 0);
        /* Defaults of the optional members. */
        CHECK_EQ(buf.item.nlabels, 0);
        CHECK_EQ(buf.item.deleted, 0);
        CHECK_EQ(buf.item.disable_until, 0);
        CHECK_EQ(buf.item.prov.source, HDB_SOURCE_UNKNOWN);
    }
    hdbjson_item_buf_free(&buf);
    json_decref(j);
}

TEST(bank_round_trip)
{
    static const char *const bl[] = {"entity:amaq", "collab:gifct"};
    hdb_bank_t b;
    memset(&b, 0, sizeof b);
    b.id = 3;
    b.name = "ISIS AMAQ VIDEO";
    b.enabled = 0;
    b.default_action = "block";
    b.labels = bl;
    b.nlabels = 2;
    b.deleted = 1;
    json_t *j = hdbjson_bank(&b);
    REQUIRE(j);
    hdbjson_bank_buf_t buf = {0};
    int rc = hdbjson_bank_parse(j, &buf);
    CHECK_MSG(rc == CORDON_OK, "%s", buf.error);
    CHECK_EQ(buf.bank.id, 3);
    CHECK_STREQ(buf.bank.name, "ISIS AMAQ VIDEO");
    CHECK_EQ(buf.bank.enabled, 0);
    CHECK_STREQ(buf.bank.default_action, "block");
    CHECK_EQ(buf.bank.nlabels, 2);
    if (buf.bank.nlabels == 2)
        CHECK_STREQ(buf.bank.labels[1], "collab:gifct");
    CHECK_EQ(buf.bank.deleted, 1);
    json_decref(j);

    j = json_loads("{\"name\": \"X\"}", 0, NULL);
    rc = hdbjson_bank_parse(j, &buf);
    CHECK_EQ(rc, CORDON_OK);
    CHECK_EQ(buf.bank.enabled, 1);
    CHECK_STREQ(buf.bank.default_action, "");
    CHECK_EQ(buf.bank.nlabels, 0);
    json_decref(j);
    hdbjson_bank_buf_free(&buf);
}

/* An item document with one member replaced: parse must fail with an error
 * mentioning `want`. */
static void expect_bad_item(const char *doc, const char *want, int line)
{
    json_error_t e;
    json_t *j = json_loads(doc, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &e);
    if (!j) {
        fprintf(stderr, "  FAIL line %d: test document does not load: %s\n",
                line, e.text);
        th_cur_failed++;
        return;
    }
    hdbjson_item_buf_t buf = {0};
    int rc = hdbjson_item_parse(j, &buf);
    if (rc != CORDON_EPARSE || !strstr(buf.error, want)) {
        fprintf(stderr,
                "  FAIL line %d: rc %s, error \"%s\", wanted one mentioning "
                "\"%s\"\n  doc: %.300s\n",
                line, cordon_errname(rc), buf.error, want, doc);
        th_cur_failed++;
    }
    hdbjson_item_buf_free(&buf);
    json_decref(j);
}

#define BAD_ITEM(doc, want) expect_bad_item(doc, want, __LINE__)

/* A valid item around one replaceable signal. */
static const char *with_signal(const char *sig)
{
    return tu_path("{\"id\": 1, \"bank\": \"B\", \"signals\": [%s]}", sig);
}

static const char *with_frame(const char *frame)
{
    return with_signal(
        tu_path("{\"type\": \"vpdq\", \"value\": [\"%s\"]}", frame));
}

TEST(malformed_items_rejected)
{
    const char *ok = with_signal(tu_path(
        "{\"type\": \"pdq\", \"value\": \"%s\", \"quality\": 90}", PDQ1));
    json_t *j = json_loads(ok, 0, NULL);
    hdbjson_item_buf_t buf = {0};
    CHECK_EQ(hdbjson_item_parse(j, &buf), CORDON_OK);
    json_decref(j);
    hdbjson_item_buf_free(&buf);

    /* Top level and ids. */
    BAD_ITEM("[]", "expected an object");
    BAD_ITEM("{\"bank\": \"B\", \"signals\": []}", "missing \"id\"");
    BAD_ITEM("{\"id\": 0, \"bank\": \"B\"}", "item.id: 0 is out of range");
    BAD_ITEM("{\"id\": -5, \"bank\": \"B\"}", "out of range");
    BAD_ITEM("{\"id\": 1.5, \"bank\": \"B\"}", "item.id: expected an integer");
    BAD_ITEM("{\"id\": \"7\", \"bank\": \"B\"}", "got a string");
    /* Banks. */
    BAD_ITEM("{\"id\": 1, \"signals\": []}", "missing \"bank\"");
    BAD_ITEM("{\"id\": 1, \"bank\": \"\", \"signals\": []}", "is empty");
    BAD_ITEM("{\"id\": 1, \"bank\": \"a\\tb\", \"signals\": []}",
             "control character");
    BAD_ITEM("{\"id\": 1, \"bank\": \" lead\", \"signals\": []}",
             "starts or ends with a space");
    BAD_ITEM("{\"id\": 1, \"bank\": \"a\\u0000b\", \"signals\": []}",
             "NUL character");
    BAD_ITEM(tu_path("{\"id\": 1, \"bank\": \"%0129d\"}", 0), "longer than");
    /* Flags, times, text. */
    BAD_ITEM("{\"id\": 1, \"bank\": \"B\", \"deleted\": 1}",
             "deleted: expected a boolean");
    BAD_ITEM("{\"id\": 1, \"bank\": \"B\", \"disable_until\": -1}",
             "disable_until: -1 is out of range");
    BAD_ITEM("{\"id\": 1, \"bank\": \"B\", \"note\": 5}", "note: expected a");
    BAD_ITEM("{\"id\": 1, \"bank\": \"B\", \"note\": \"a\\u0000\"}",
             "note: holds a NUL");
    /* Labels. */
    BAD_ITEM("{\"id\": 1, \"bank\": \"B\", \"labels\": \"a:b\"}",
             "labels: expected an array");
    BAD_ITEM("{\"id\": 1, \"bank\": \"B\", \"labels\": [\"nocolon\"]}",
             "labels[0]: \"nocolon\" is not key:value");
    BAD_ITEM("{\"id\": 1, \"bank\": \"B\", \"labels\": [\"a:b\", \"k:v w\"]}",
             "labels[1]");
    BAD_ITEM("{\"id\": 1, \"bank\": \"B\", \"labels\": [\":v\"]}",
             "not key:value");
    BAD_ITEM("{\"id\": 1, \"bank\": \"B\", \"labels\": [7]}",
             "labels[0]: expected a string");
    {
        char doc[4096];
        int k = snprintf(doc, sizeof doc,
                         "{\"id\": 1, \"bank\": \"B\", \"labels\": [");
        for (int i = 0; i < 65; i++)
            k += snprintf(doc + k, sizeof doc - (size_t)k, "%s\"k:v%d\"",
                          i ? "," : "", i);
        snprintf(doc + k, sizeof doc - (size_t)k, "]}");
        BAD_ITEM(doc, "more than 64 labels");
    }
    /* Provenance. */
    BAD_ITEM("{\"id\": 1, \"bank\": \"B\", \"provenance\": []}",
             "provenance: expected an object");
    BAD_ITEM("{\"id\": 1, \"bank\": \"B\", \"provenance\": {\"source\": "
             "\"martian\"}}",
             "item.provenance.source: unknown source");
    BAD_ITEM("{\"id\": 1, \"bank\": \"B\", \"provenance\": {\"added_at\": "
             "-1}}",
             "item.provenance.added_at");
    BAD_ITEM("{\"id\": 1, \"bank\": \"B\", \"provenance\": {\"added_by\": "
             "\"a\\nb\"}}",
             "added_by: holds a control character");
    BAD_ITEM(tu_path("{\"id\": 1, \"bank\": \"B\", \"provenance\": "
                     "{\"source_name\": \"%0257d\"}}",
                     0),
             "source_name: longer than 256");
    /* Signals. */
    BAD_ITEM("{\"id\": 1, \"bank\": \"B\"}", "missing \"signals\"");
    BAD_ITEM("{\"id\": 1, \"bank\": \"B\", \"signals\": []}",
             "expected 1..16 signals, got 0");
    {
        char doc[8192];
        int k = snprintf(doc, sizeof doc,
                         "{\"id\": 1, \"bank\": \"B\", \"signals\": [");
        for (int i = 0; i < 17; i++)
            k += snprintf(doc + k, sizeof doc - (size_t)k,
                          "%s{\"type\": \"pdq\", \"value\": \"%s\"}",
                          i ? "," : "", PDQ1);
        snprintf(doc + k, sizeof doc - (size_t)k, "]}");
        BAD_ITEM(doc, "got 17");
    }
    BAD_ITEM(with_signal("7"), "signals[0]: expected an object");
    BAD_ITEM(with_signal("{\"value\": \"00\"}"), "signals[0].type");
    BAD_ITEM(with_signal("{\"type\": \"tmk\", \"value\": \"00\"}"),
             "unknown signal type \"tmk\"");
    BAD_ITEM(with_signal("{\"type\": \"pdq\"}"), "missing \"value\"");
    BAD_ITEM(
        with_signal(tu_path("{\"type\": \"pdq\", \"value\": \"%.63s\"}", PDQ1)),
        "signals[0].value: expected 64 hex digits");
    BAD_ITEM(with_signal(
                 tu_path("{\"type\": \"pdq\", \"value\": \"%.63sg\"}", PDQ1)),
             "expected 64 hex digits");
    BAD_ITEM(with_signal(tu_path("{\"type\": \"pdq\", \"value\": \"%s\", "
                                 "\"quality\": 101}",
                                 PDQ1)),
             "signals[0].quality");
    BAD_ITEM(with_signal(tu_path("{\"type\": \"pdq\", \"value\": \"%s\", "
                                 "\"quality\": \"90\"}",
                                 PDQ1)),
             "signals[0].quality");
    BAD_ITEM(with_signal("{\"type\": \"md5\", \"value\": "
                         "\"0123456789abcdef0123456789abcde\"}"),
             "expected 32 hex digits");
    BAD_ITEM(
        with_signal(tu_path("{\"type\": \"md5\", \"value\": \"%s\"}", PDQ1)),
        "expected 32 hex digits");
    BAD_ITEM(with_signal(tu_path(
                 "{\"type\": \"sha256\", \"value\": \"%.62s zz\"}", PDQ1)),
             "expected 64 hex digits");
    BAD_ITEM(with_signal("{\"type\": \"sha256\", \"value\": [\"x\"]}"),
             "value: expected a string, got an array");
    /* vPDQ. */
    BAD_ITEM(with_signal("{\"type\": \"vpdq\", \"value\": []}"), "no frames");
    BAD_ITEM(with_signal(
                 tu_path("{\"type\": \"vpdq\", \"value\": \"%s,1,0\"}", PDQ1)),
             "expected an array");
    BAD_ITEM(with_signal("{\"type\": \"vpdq\", \"value\": [5]}"),
             "value[0]: expected a string");
    BAD_ITEM(with_frame(tu_path("%s,100", PDQ1)),
             "value[0]: expected \"pdqhex,quality,timestamp[,count]\"");
    BAD_ITEM(with_frame(tu_path("%s,100,1,2,3", PDQ1)), "more than 4 fields");
    BAD_ITEM(with_frame(tu_path("%.62s,100,1", PDQ1)), "expected 64 hex");
    BAD_ITEM(with_frame(tu_path("%s,101,1", PDQ1)), "quality is not -1..100");
    BAD_ITEM(with_frame(tu_path("%s,-2,1", PDQ1)), "quality is not");
    BAD_ITEM(with_frame(tu_path("%s,,1", PDQ1)), "quality is not");
    BAD_ITEM(with_frame(tu_path("%s,1x,1", PDQ1)), "quality is not");
    BAD_ITEM(with_frame(tu_path("%s,100,nan", PDQ1)), "bad timestamp");
    BAD_ITEM(with_frame(tu_path("%s,100,inf", PDQ1)), "bad timestamp");
    BAD_ITEM(with_frame(tu_path("%s,100,-1", PDQ1)), "bad timestamp");
    BAD_ITEM(with_frame(tu_path("%s,100,0x10", PDQ1)), "bad timestamp");
    BAD_ITEM(with_frame(tu_path("%s,100, 1", PDQ1)), "bad timestamp");
    BAD_ITEM(with_frame(tu_path("%s,100,1e12", PDQ1)), "bad timestamp");
    BAD_ITEM(with_frame(tu_path("%s,100,1..2", PDQ1)), "bad timestamp");
    BAD_ITEM(with_frame(tu_path("%s,100,", PDQ1)), "bad timestamp");
    BAD_ITEM(with_frame(tu_path("%s,100,1,0", PDQ1)), "count is not");
    BAD_ITEM(with_frame(tu_path("%s,100,1,4294967296", PDQ1)), "count is not");
    BAD_ITEM(with_frame(tu_path("%s,100,1,-3", PDQ1)), "count is not");
    BAD_ITEM(with_frame(tu_path("%s,100,1,%0160d", PDQ1, 1)), "too long");
}

/* A feed page document around the given changes. */
static int parse_feed(const char *doc, uint64_t since, size_t limit,
                      hdbjson_feed_t *f)
{
    json_t *j = json_loads(doc, JSON_REJECT_DUPLICATES, NULL);
    if (!j) {
        snprintf(f->error, sizeof f->error, "(test document does not load)");
        return -999;
    }
    int rc = hdbjson_feed_parse(j, since, limit, f);
    json_decref(j);
    return rc;
}

static const char *item_change(uint64_t seq, const char *kind, uint64_t id,
                               int deleted)
{
    return tu_path("{\"seq\": %llu, \"kind\": \"%s\", \"item\": {\"id\": "
                   "%llu, \"bank\": \"B\", \"deleted\": %s, \"signals\": "
                   "[{\"type\": \"md5\", \"value\": "
                   "\"0123456789abcdef0123456789abcdef\"}]}}",
                   (unsigned long long)seq, kind, (unsigned long long)id,
                   deleted ? "true" : "false");
}

static void expect_bad_feed(const char *doc, uint64_t since, size_t limit,
                            const char *want, int line)
{
    hdbjson_feed_t f = {0};
    int rc = parse_feed(doc, since, limit, &f);
    if (rc != CORDON_EPARSE || !strstr(f.error, want)) {
        fprintf(stderr,
                "  FAIL line %d: rc %d, error \"%s\", wanted one mentioning "
                "\"%s\"\n  doc: %.400s\n",
                line, rc, f.error, want, doc);
        th_cur_failed++;
    }
    hdbjson_feed_free(&f);
}

#define BAD_FEED(doc, since, limit, want)                                      \
    expect_bad_feed(doc, since, limit, want, __LINE__)

TEST(feed_pages_checked)
{
    char doc[4096];
    hdbjson_feed_t f = {0};
    snprintf(doc, sizeof doc,
             "{\"changes\": [%s, %s, {\"seq\": 9, \"kind\": \"bank_update\", "
             "\"bank\": {\"id\": 1, \"name\": \"B\", \"enabled\": false}}], "
             "\"next\": 9, \"last_seq\": 20, \"more\": true, \"extra\": 1}",
             item_change(5, "item_add", 1, 0),
             item_change(7, "item_delete", 2, 1));
    int rc = parse_feed(doc, 4, 0, &f);
    CHECK_MSG(rc == CORDON_OK, "%s", f.error);
    CHECK_EQ(f.n, 3);
    CHECK_EQ(f.next, 9);
    CHECK_EQ(f.last_seq, 20);
    CHECK_EQ(f.more, 1);
    if (f.n == 3) {
        CHECK_EQ(f.changes[0].change.kind, HDB_CHANGE_ITEM_ADD);
        CHECK_EQ(f.changes[1].change.item->deleted, 1);
        CHECK_EQ(f.changes[2].change.kind, HDB_CHANGE_BANK_UPDATE);
        CHECK_EQ(f.changes[2].change.bank->enabled, 0);
        CHECK(f.changes[2].change.item == NULL);
    }
    /* Reused for an empty page. */
    rc = parse_feed("{\"changes\": [], \"next\": 9, \"last_seq\": 9, "
                    "\"more\": false}",
                    9, 0, &f);
    CHECK_EQ(rc, CORDON_OK);
    CHECK_EQ(f.n, 0);
    hdbjson_feed_free(&f);

    BAD_FEED("[]", 0, 0, "feed: expected an object");
    BAD_FEED("{\"next\": 0, \"last_seq\": 0, \"more\": false}", 0, 0,
             "feed.changes: missing");
    BAD_FEED("{\"changes\": [], \"last_seq\": 0, \"more\": false}", 0, 0,
             "missing \"next\"");
    BAD_FEED("{\"changes\": [], \"next\": 0, \"last_seq\": 0}", 0, 0,
             "feed.more");
    BAD_FEED("{\"changes\": [], \"next\": 0, \"last_seq\": 0, \"more\": 0}", 0,
             0, "feed.more");
    BAD_FEED("{\"changes\": [], \"next\": 3, \"last_seq\": 2, \"more\": "
             "false}",
             0, 0, "last_seq: 2 is behind next");
    BAD_FEED("{\"changes\": [], \"next\": 3, \"last_seq\": 9, \"more\": "
             "false}",
             5, 0, "next: 3 is behind");
    snprintf(doc, sizeof doc,
             "{\"changes\": [%s, %s], \"next\": 9, \"last_seq\": 9, \"more\": "
             "false}",
             item_change(6, "item_add", 1, 0),
             item_change(5, "item_add", 2, 0));
    BAD_FEED(doc, 0, 0, "changes[1]: seq 5 does not follow 6");
    snprintf(doc, sizeof doc,
             "{\"changes\": [%s], \"next\": 9, \"last_seq\": 9, \"more\": "
             "false}",
             item_change(4, "item_add", 1, 0));
    BAD_FEED(doc, 4, 0, "seq 4 does not follow 4");
    snprintf(doc, sizeof doc,
             "{\"changes\": [%s], \"next\": 5, \"last_seq\": 9, \"more\": "
             "true}",
             item_change(6, "item_add", 1, 0));
    BAD_FEED(doc, 0, 0, "next: 5 is behind the page (6)");
    snprintf(doc, sizeof doc,
             "{\"changes\": [%s, %s], \"next\": 7, \"last_seq\": 9, \"more\": "
             "true}",
             item_change(6, "item_add", 1, 0),
             item_change(7, "item_add", 2, 0));
    BAD_FEED(doc, 0, 1, "2 changes, more than the 1 asked for");
    snprintf(doc, sizeof doc,
             "{\"changes\": [%s, %s], \"next\": 7, \"last_seq\": 9, \"more\": "
             "true}",
             item_change(6, "item_add", 3, 0),
             item_change(7, "item_update", 3, 0));
    BAD_FEED(doc, 0, 0, "item 3 appears twice");
    snprintf(doc, sizeof doc,
             "{\"changes\": [%s], \"next\": 7, \"last_seq\": 9, \"more\": "
             "true}",
             item_change(7, "item_delete", 3, 0));
    BAD_FEED(doc, 0, 0, "kind item_delete but \"deleted\": false");
    snprintf(doc, sizeof doc,
             "{\"changes\": [%s], \"next\": 7, \"last_seq\": 9, \"more\": "
             "true}",
             item_change(7, "item_update", 3, 1));
    BAD_FEED(doc, 0, 0, "kind item_update but \"deleted\": true");
    snprintf(doc, sizeof doc,
             "{\"changes\": [%s], \"next\": 7, \"last_seq\": 9, \"more\": "
             "true}",
             item_change(7, "item_move", 3, 0));
    BAD_FEED(doc, 0, 0, "unknown kind \"item_move\"");
    BAD_FEED("{\"changes\": [{\"seq\": 1, \"kind\": \"item_add\", \"bank\": "
             "{\"name\": \"B\"}}], \"next\": 1, \"last_seq\": 1, \"more\": "
             "false}",
             0, 0, "kind item_add without \"item\"");
    BAD_FEED("{\"changes\": [{\"seq\": 1, \"kind\": \"item_add\", \"item\": "
             "{\"id\": 1, \"bank\": \"B\", \"signals\": [{\"type\": \"md5\", "
             "\"value\": \"zz\"}]}}], \"next\": 1, \"last_seq\": 1, \"more\": "
             "false}",
             0, 0, "changes[0]: change 1: item.signals[0].value: expected 32");
    BAD_FEED("{\"changes\": [{\"seq\": 0, \"kind\": \"bank_add\", \"bank\": "
             "{\"name\": \"B\"}}], \"next\": 1, \"last_seq\": 1, \"more\": "
             "false}",
             0, 0, "change.seq: 0 is out of range");
}

static int page_cb(void *ctx, const hdb_change_t *c)
{
    (void)c;
    (*(int *)ctx)++;
    return 0;
}

/* Records written by hdb, served as a feed page, parsed back and written
 * with hdb_item_put into a second database, read back equal. */
TEST(database_round_trip)
{
    hdb_opts_t o = {0};
    o.nosync = 1;
    hdb_t *src = NULL, *dst = NULL;
    REQUIRE(hdb_open(tu_path("%s/src.db", tu_tmpdir()), &o, &src) == 0);
    REQUIRE(hdb_open(tu_path("%s/dst.db", tu_tmpdir()), &o, &dst) == 0);
    static const char *const bl[] = {"entity:amaq"};
    hdb_bank_spec_t bs = {"ISIS_AMAQ_VIDEO", 1, "block", bl, 1};
    CHECK_EQ(hdb_bank_create(src, &bs, NULL), 0);
    CHECK_EQ(hdb_bank_create(dst, &bs, NULL), 0);
    hdb_signal_t sigs[5];
    hdb_item_t proto = sample_item(sigs);
    hdb_item_spec_t spec = {proto.bank,    proto.labels,  proto.nlabels,
                            proto.note,    proto.prov,    proto.disable_until,
                            proto.signals, proto.nsignals};
    hdb_add_result_t r1, r2;
    CHECK_EQ(hdb_item_add(src, &spec, 0, &r1), 0);
    spec.nsignals = 1;
    spec.prov.added_by = NULL;
    spec.note = NULL;
    CHECK_EQ(hdb_item_add(src, &spec, 0, &r2), 0);
    CHECK_EQ(hdb_item_remove(src, r2.id, NULL), 0);

    json_t *page = NULL;
    REQUIRE(hdbjson_feed_page(src, 0, 2, &page) == 0);
    char *text = json_dumps(page, JSON_COMPACT);
    json_decref(page);
    page = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    free(text);
    hdbjson_feed_t f = {0};
    int rc = hdbjson_feed_parse(page, 0, 2, &f);
    CHECK_MSG(rc == CORDON_OK, "%s", f.error);
    json_decref(page);
    REQUIRE(rc == CORDON_OK);
    /* bank_add (1), item 1 add (2); item 2's latest change is its delete. */
    CHECK_EQ(f.n, 2);
    CHECK_EQ(f.next, 2);
    CHECK_EQ(f.more, 1);
    uint64_t last;
    CHECK_EQ(hdb_last_seq(src, &last), 0);
    CHECK_EQ(f.last_seq, last);
    REQUIRE(f.n == 2);
    CHECK_EQ(f.changes[0].change.kind, HDB_CHANGE_BANK_ADD);
    CHECK_STREQ(f.changes[0].change.bank->default_action, "block");
    const hdb_item_t *got = f.changes[1].change.item;
    hdb_item_t *orig = NULL;
    REQUIRE(hdb_item_get(src, r1.id, &orig) == 0);
    check_same_item(orig, got);
    CHECK_EQ(hdb_item_put(dst, got, NULL), 0);
    hdb_item_t *copy = NULL;
    REQUIRE(hdb_item_get(dst, r1.id, &copy) == 0);
    check_same_item(orig, copy);
    hdb_free(copy);
    hdb_free(orig);

    /* The rest: the tombstone, with its signals. */
    REQUIRE(hdbjson_feed_page(src, f.next, 0, &page) == 0);
    rc = hdbjson_feed_parse(page, 2, 0, &f);
    CHECK_MSG(rc == CORDON_OK, "%s", f.error);
    json_decref(page);
    CHECK_EQ(f.n, 1);
    CHECK_EQ(f.more, 0);
    if (f.n == 1) {
        CHECK_EQ(f.changes[0].change.kind, HDB_CHANGE_ITEM_DELETE);
        CHECK_EQ(f.changes[0].change.item->id, r2.id);
        CHECK_EQ(f.changes[0].change.item->nsignals, 1);
        CHECK(f.changes[0].change.item->prov.added_by == NULL);
    }
    hdbjson_feed_free(&f);

    /* Past the end: empty, next == since. */
    REQUIRE(hdbjson_feed_page(src, last, 0, &page) == 0);
    CHECK_EQ(json_array_size(json_object_get(page, "changes")), 0);
    CHECK_EQ(json_integer_value(json_object_get(page, "next")),
             (long long)last);
    CHECK(json_is_false(json_object_get(page, "more")));
    json_decref(page);
    CHECK_EQ(hdbjson_feed_page(src, 0, HDBJSON_FEED_LIMIT_MAX + 1, &page),
             CORDON_EINVAL);
    int n = 0;
    CHECK_EQ(hdb_changes_since(dst, 0, 0, page_cb, &n, NULL), 0);
    CHECK_EQ(n, 2);
    hdb_close(src);
    hdb_close(dst);
}

int main(int argc, char **argv)
{
    (void)argc;
    th_init(argv[0]);
    RUN(item_round_trip_every_field);
    RUN(item_json_shape);
    RUN(frames_in_contract_forms);
    RUN(bank_round_trip);
    RUN(malformed_items_rejected);
    RUN(feed_pages_checked);
    RUN(database_round_trip);
    return TH_END();
}
