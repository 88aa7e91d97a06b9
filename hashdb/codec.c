/* codec.c - the record encoding of hashdb: varints, TLV fields, signal
 * payloads, item and bank records, and the validation of their contents.
 * The format is described in hdb_internal.h. */
#include <stdlib.h>
#include <string.h>

#include "hdb_internal.h"

/* Item record tags. */
enum {
    IT_BANK = 1,
    IT_FLAGS = 2,
    IT_CREATED = 3,
    IT_UPDATED = 4,
    IT_SEQ = 5,
    IT_DISABLE = 6,
    IT_ADDED_BY = 7,
    IT_SOURCE = 8,
    IT_SOURCE_NAME = 9,
    IT_ADDED_AT = 10,
    IT_NOTE = 11,
    IT_LABEL = 12,
    IT_SIGNAL = 13,
    IT_CREATED_SEQ = 14
};

/* Bank record tags. */
enum {
    BK_NAME = 1,
    BK_ENABLED = 2,
    BK_ACTION = 3,
    BK_LABEL = 4,
    BK_CREATED = 5,
    BK_UPDATED = 6,
    BK_SEQ = 7,
    BK_DELETED = 8,
    BK_CREATED_SEQ = 9
};

#define WT_VARINT 0
#define WT_FIXED64 1
#define WT_BYTES 2

/* ---------------------------------------------------------------- */

void hdb__buf_free(hdb__buf_t *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

int hdb__buf_reserve(hdb__buf_t *b, size_t extra)
{
    if (b->oom)
        return CORDON_ENOMEM;
    if (b->cap - b->len >= extra)
        return CORDON_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra) {
        if (cap > SIZE_MAX / 2) {
            b->oom = 1;
            return CORDON_ENOMEM;
        }
        cap *= 2;
    }
    uint8_t *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return CORDON_ENOMEM;
    }
    b->p = p;
    b->cap = cap;
    return CORDON_OK;
}

void hdb__buf_put(hdb__buf_t *b, const void *p, size_t n)
{
    if (n == 0 || hdb__buf_reserve(b, n) != CORDON_OK)
        return;
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

void hdb__buf_u8(hdb__buf_t *b, uint8_t v)
{
    if (hdb__buf_reserve(b, 1) == CORDON_OK)
        b->p[b->len++] = v;
}

void hdb__buf_varint(hdb__buf_t *b, uint64_t v)
{
    if (hdb__buf_reserve(b, 10) != CORDON_OK)
        return;
    while (v >= 0x80) {
        b->p[b->len++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b->p[b->len++] = (uint8_t)v;
}

static uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

int64_t hdb__unzigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

void hdb__tlv_u(hdb__buf_t *b, unsigned tag, uint64_t v)
{
    hdb__buf_varint(b, (uint64_t)tag << 3 | WT_VARINT);
    hdb__buf_varint(b, v);
}

void hdb__tlv_i(hdb__buf_t *b, unsigned tag, int64_t v)
{
    hdb__tlv_u(b, tag, zigzag(v));
}

void hdb__tlv_bytes(hdb__buf_t *b, unsigned tag, const void *p, size_t n)
{
    hdb__buf_varint(b, (uint64_t)tag << 3 | WT_BYTES);
    hdb__buf_varint(b, n);
    hdb__buf_put(b, p, n);
}

void hdb__tlv_str(hdb__buf_t *b, unsigned tag, const char *s)
{
    if (s)
        hdb__tlv_bytes(b, tag, s, strlen(s) + 1);
}

int hdb__rd_varint(hdb__rd_t *r, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end)
            return CORDON_ECORRUPT;
        uint8_t c = *r->p++;
        x |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return CORDON_OK;
        }
    }
    return CORDON_ECORRUPT;
}

int hdb__rd_next(hdb__rd_t *r, hdb__field_t *f)
{
    if (r->p >= r->end)
        return 0;
    uint64_t key;
    if (hdb__rd_varint(r, &key) != CORDON_OK || key >> 3 > 0xffff)
        return CORDON_ECORRUPT;
    f->tag = (unsigned)(key >> 3);
    f->wt = (unsigned)(key & 7);
    f->data = NULL;
    f->len = 0;
    f->u = 0;
    switch (f->wt) {
    case WT_VARINT:
        return hdb__rd_varint(r, &f->u) == CORDON_OK ? 1 : CORDON_ECORRUPT;
    case WT_FIXED64:
        if (r->end - r->p < 8)
            return CORDON_ECORRUPT;
        for (int i = 7; i >= 0; i--)
            f->u = f->u << 8 | r->p[i];
        r->p += 8;
        return 1;
    case WT_BYTES: {
        uint64_t n;
        if (hdb__rd_varint(r, &n) != CORDON_OK || n > (uint64_t)(r->end - r->p))
            return CORDON_ECORRUPT;
        f->data = r->p;
        f->len = (size_t)n;
        r->p += n;
        return 1;
    }
    default:
        return CORDON_ECORRUPT;
    }
}

const char *hdb__field_str(const hdb__field_t *f)
{
    if (f->wt != WT_BYTES || f->len == 0 || f->data[f->len - 1] != 0 ||
        memchr(f->data, 0, f->len - 1))
        return NULL;
    return (const char *)f->data;
}

/* ---------------------------------------------------------------- */

void hdb__hash_to_bytes(const cordon_hash256_t *h, uint8_t out[32])
{
    for (int i = 0; i < 4; i++)
        hdb__be64(out + 8 * i, h->w[3 - i]);
}

void hdb__hash_from_bytes(const uint8_t in[32], cordon_hash256_t *h)
{
    for (int i = 0; i < 4; i++)
        h->w[3 - i] = hdb__rd64(in + 8 * i);
}

/* ---------------------------------------------------------------- */

static int has_control(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 1;
    return 0;
}

int hdb__valid_name(const char *s)
{
    if (!s)
        return 0;
    size_t n = strlen(s);
    return n >= 1 && n <= HDB_MAX_NAME && !has_control(s) && s[0] != ' ' &&
           s[n - 1] != ' ';
}

int hdb__valid_label(const char *s)
{
    if (!s)
        return 0;
    size_t n = strlen(s);
    const char *colon = strchr(s, ':');
    if (n < 3 || n > HDB_MAX_LABEL || !colon || colon == s || !colon[1])
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

int hdb__valid_text(const char *s, size_t max)
{
    return !s || (strlen(s) <= max && !has_control(s));
}

int hdb__valid_labels(const char *const *l, size_t n)
{
    if (n > HDB_MAX_LABELS || (n && !l))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!hdb__valid_label(l[i]))
            return 0;
    return 1;
}

int hdb__valid_signal(const hdb_signal_t *s)
{
    switch (s->type) {
    case HDB_SIG_PDQ:
        return s->quality == HDB_QUALITY_UNKNOWN ||
               (s->quality >= 0 && s->quality <= 100);
    case HDB_SIG_MD5:
    case HDB_SIG_SHA256:
        return 1;
    case HDB_SIG_VPDQ:
        if (s->nframes == 0 || s->nframes > HDB_MAX_VPDQ_FRAMES || !s->frames)
            return 0;
        for (size_t i = 0; i < s->nframes; i++) {
            const hdb_vpdq_frame_t *f = &s->frames[i];
            if (f->count == 0 ||
                !(f->quality == HDB_QUALITY_UNKNOWN ||
                  (f->quality >= 0 && f->quality <= 100)) ||
                !(f->timestamp >= 0 && f->timestamp < 1e12))
                return 0;
        }
        return 1;
    default:
        return 0;
    }
}

int hdb__valid_item_fields(const hdb_item_spec_t *spec)
{
    if (spec->nsignals == 0 || spec->nsignals > HDB_MAX_SIGNALS ||
        !spec->signals)
        return 0;
    for (size_t i = 0; i < spec->nsignals; i++)
        if (!hdb__valid_signal(&spec->signals[i]))
            return 0;
    if (!hdb__valid_labels(spec->labels, spec->nlabels))
        return 0;
    if (spec->note && strlen(spec->note) > HDB_MAX_NOTE)
        return 0;
    if (!hdb__valid_text(spec->prov.added_by, HDB_MAX_TEXT) ||
        !hdb__valid_text(spec->prov.source_name, HDB_MAX_TEXT) ||
        (unsigned)spec->prov.source > HDB_SOURCE_PEER)
        return 0;
    return spec->disable_until >= 0 && spec->prov.added_at >= 0;
}

/* ---------------------------------------------------------------- */

/* A 256-bit digest of a vPDQ signal's entries, for the exact-value index.
 * Four independently seeded multiply-xorshift lanes over 64-bit words: not
 * cryptographic, so deduplication verifies candidates (item.c). */
typedef struct {
    uint64_t lane[4];
    uint64_t word;
    unsigned nbytes;
    uint64_t total;
} vdig_t;

static const uint64_t vdig_mul[4] = {
    0x9e3779b97f4a7c15ull, 0xc2b2ae3d27d4eb4full, 0x165667b19e3779f9ull,
    0xd6e8feb86659fd93ull};

static void vdig_word(vdig_t *d, uint64_t w)
{
    for (int i = 0; i < 4; i++) {
        uint64_t h = (d->lane[i] ^ w) * vdig_mul[i];
        d->lane[i] = h ^ (h >> 31);
    }
}

static void vdig_bytes(vdig_t *d, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        d->word |= (uint64_t)p[i] << (8 * d->nbytes);
        if (++d->nbytes == 8) {
            vdig_word(d, d->word);
            d->word = 0;
            d->nbytes = 0;
        }
    }
    d->total += n;
}

static void vpdq_digest(const hdb_signal_t *s, uint8_t out[32])
{
    vdig_t d = {{1, 2, 3, 4}, 0, 0, 0};
    for (size_t i = 0; i < s->nframes; i++) {
        const hdb_vpdq_frame_t *f = &s->frames[i];
        uint8_t b[32 + 1 + 8 + 4];
        uint64_t bits;
        hdb__hash_to_bytes(&f->hash, b);
        b[32] = f->quality == HDB_QUALITY_UNKNOWN ? HDB__PDQ_Q_UNKNOWN
                                                  : (uint8_t)f->quality;
        memcpy(&bits, &f->timestamp, 8);
        for (int k = 0; k < 8; k++)
            b[33 + k] = (uint8_t)(bits >> (8 * k));
        for (int k = 0; k < 4; k++)
            b[41 + k] = (uint8_t)(f->count >> (8 * k));
        vdig_bytes(&d, b, sizeof b);
    }
    if (d.nbytes)
        vdig_word(&d, d.word);
    vdig_word(&d, d.total);
    for (int r = 0; r < 2; r++) /* let every lane see every other */
        for (int i = 0; i < 4; i++)
            vdig_word(&d, d.lane[(i + 1) & 3] + d.lane[i]);
    for (int i = 0; i < 4; i++)
        hdb__be64(out + 8 * i, d.lane[i]);
}

size_t hdb__sig_index_value(const hdb_signal_t *s, uint8_t out[32])
{
    switch (s->type) {
    case HDB_SIG_VPDQ:
        vpdq_digest(s, out);
        return 32;
    case HDB_SIG_PDQ:
        /* Not indexed: random 32-byte keys made bulk loads five times
         * slower (every transaction rewrote most of that tree). Exact PDQ
         * lookups scan, and the Hamming index finds distance 0 anyway. */
        return 0;
    case HDB_SIG_MD5:
        memcpy(out, s->digest, 16);
        return 16;
    case HDB_SIG_SHA256:
        memcpy(out, s->digest, 32);
        return 32;
    default:
        return 0;
    }
}

static uint8_t enc_quality(int q)
{
    return q == HDB_QUALITY_UNKNOWN ? HDB__PDQ_Q_UNKNOWN : (uint8_t)q;
}

static int dec_quality(uint8_t q)
{
    return q == HDB__PDQ_Q_UNKNOWN ? HDB_QUALITY_UNKNOWN
                                   : (q > 100 ? -2 : (int)q);
}

void hdb__sig_encode(hdb__buf_t *b, const hdb_signal_t *s)
{
    uint8_t tmp[32];
    hdb__buf_u8(b, (uint8_t)s->type);
    switch (s->type) {
    case HDB_SIG_PDQ:
        hdb__hash_to_bytes(&s->pdq, tmp);
        hdb__buf_put(b, tmp, 32);
        hdb__buf_u8(b, enc_quality(s->quality));
        break;
    case HDB_SIG_MD5:
        hdb__buf_put(b, s->digest, 16);
        break;
    case HDB_SIG_SHA256:
        hdb__buf_put(b, s->digest, 32);
        break;
    case HDB_SIG_VPDQ:
        hdb__buf_varint(b, s->nframes);
        for (size_t i = 0; i < s->nframes; i++) {
            const hdb_vpdq_frame_t *f = &s->frames[i];
            uint64_t bits;
            uint8_t le[8];
            hdb__hash_to_bytes(&f->hash, tmp);
            hdb__buf_put(b, tmp, 32);
            hdb__buf_u8(b, enc_quality(f->quality));
            memcpy(&bits, &f->timestamp, 8);
            for (int k = 0; k < 8; k++)
                le[k] = (uint8_t)(bits >> (8 * k));
            hdb__buf_put(b, le, 8);
            hdb__buf_varint(b, f->count);
        }
        break;
    }
}

/* Decodes one signal field. vPDQ frames are appended to v->frames; their
 * pointer is fixed up by the caller once the array stops moving (the frame
 * offset is parked in nframes' neighbour through *frame_off). */
static int sig_decode(const uint8_t *p, size_t n, hdb_signal_t *s,
                      hdb__item_view_t *v, size_t *nframes_used,
                      size_t *frame_off)
{
    memset(s, 0, sizeof *s);
    if (n < 1)
        return CORDON_ECORRUPT;
    s->type = (hdb_sigtype_t)p[0];
    p++;
    n--;
    switch (s->type) {
    case HDB_SIG_PDQ:
        if (n != 33)
            return CORDON_ECORRUPT;
        hdb__hash_from_bytes(p, &s->pdq);
        s->quality = dec_quality(p[32]);
        return s->quality == -2 ? CORDON_ECORRUPT : CORDON_OK;
    case HDB_SIG_MD5:
        if (n != 16)
            return CORDON_ECORRUPT;
        memcpy(s->digest, p, 16);
        return CORDON_OK;
    case HDB_SIG_SHA256:
        if (n != 32)
            return CORDON_ECORRUPT;
        memcpy(s->digest, p, 32);
        return CORDON_OK;
    case HDB_SIG_VPDQ: {
        hdb__rd_t r = {p, p + n};
        uint64_t cnt;
        if (hdb__rd_varint(&r, &cnt) != CORDON_OK || cnt == 0 ||
            cnt > HDB_MAX_VPDQ_FRAMES || cnt > (uint64_t)(r.end - r.p) / 42)
            return CORDON_ECORRUPT;
        size_t need = *nframes_used + (size_t)cnt;
        if (need > v->frames_cap) {
            size_t cap = v->frames_cap ? v->frames_cap : 64;
            while (cap < need)
                cap *= 2;
            hdb_vpdq_frame_t *nf = realloc(v->frames, cap * sizeof *nf);
            if (!nf)
                return CORDON_ENOMEM;
            v->frames = nf;
            v->frames_cap = cap;
        }
        *frame_off = *nframes_used;
        for (uint64_t i = 0; i < cnt; i++) {
            hdb_vpdq_frame_t *f = &v->frames[*nframes_used + i];
            if (r.end - r.p < 42)
                return CORDON_ECORRUPT;
            hdb__hash_from_bytes(r.p, &f->hash);
            f->quality = dec_quality(r.p[32]);
            uint64_t bits = 0, c;
            for (int k = 7; k >= 0; k--)
                bits = bits << 8 | r.p[33 + k];
            memcpy(&f->timestamp, &bits, 8);
            r.p += 41;
            if (hdb__rd_varint(&r, &c) != CORDON_OK || c == 0 ||
                c > UINT32_MAX || f->quality == -2)
                return CORDON_ECORRUPT;
            f->count = (uint32_t)c;
        }
        if (r.p != r.end)
            return CORDON_ECORRUPT;
        s->nframes = (size_t)cnt;
        *nframes_used += (size_t)cnt;
        return CORDON_OK;
    }
    default:
        /* A signal type from a newer writer: keep the record readable. */
        s->type = 0;
        return CORDON_OK;
    }
}

/* ---------------------------------------------------------------- */

void hdb__item_encode(hdb__buf_t *b, const hdb_item_t *it, uint64_t created_seq)
{
    hdb__buf_u8(b, HDB__REC_VERSION);
    hdb__tlv_u(b, IT_BANK, it->bank_id);
    if (it->deleted)
        hdb__tlv_u(b, IT_FLAGS, 1);
    /* Fields equal to their defaults are left out: a bulk-loaded item is
     * created, updated and first added at one time, in one change. */
    hdb__tlv_i(b, IT_CREATED, it->created);
    if (it->updated != it->created)
        hdb__tlv_i(b, IT_UPDATED, it->updated);
    hdb__tlv_u(b, IT_SEQ, it->seq);
    if (created_seq != it->seq)
        hdb__tlv_u(b, IT_CREATED_SEQ, created_seq);
    if (it->disable_until)
        hdb__tlv_i(b, IT_DISABLE, it->disable_until);
    if (it->prov.added_by && *it->prov.added_by)
        hdb__tlv_str(b, IT_ADDED_BY, it->prov.added_by);
    if (it->prov.source)
        hdb__tlv_u(b, IT_SOURCE, (uint64_t)it->prov.source);
    if (it->prov.source_name && *it->prov.source_name)
        hdb__tlv_str(b, IT_SOURCE_NAME, it->prov.source_name);
    if (it->prov.added_at != it->created)
        hdb__tlv_i(b, IT_ADDED_AT, it->prov.added_at);
    if (it->note && *it->note)
        hdb__tlv_str(b, IT_NOTE, it->note);
    for (size_t i = 0; i < it->nlabels; i++)
        hdb__tlv_str(b, IT_LABEL, it->labels[i]);
    for (size_t i = 0; i < it->nsignals; i++) {
        const hdb_signal_t *s = &it->signals[i];
        if (s->type == HDB_SIG_VPDQ) {
            /* Variable length: encode aside, then length-prefix it. */
            hdb__buf_t tmp = {0};
            hdb__sig_encode(&tmp, s);
            if (tmp.oom)
                b->oom = 1;
            hdb__tlv_bytes(b, IT_SIGNAL, tmp.p, tmp.len);
            hdb__buf_free(&tmp);
            continue;
        }
        size_t len = s->type == HDB_SIG_PDQ   ? 34
                     : s->type == HDB_SIG_MD5 ? 17
                                              : 33;
        hdb__buf_varint(b, (uint64_t)IT_SIGNAL << 3 | WT_BYTES);
        hdb__buf_varint(b, len);
        hdb__sig_encode(b, s);
    }
}

void hdb__item_view_free(hdb__item_view_t *v)
{
    free(v->frames);
    v->frames = NULL;
    v->frames_cap = 0;
}

int hdb__item_decode(const void *p, size_t n, hdb__item_view_t *v)
{
    hdb__rd_t r = {(const uint8_t *)p, (const uint8_t *)p + n};
    hdb__field_t f;
    size_t nframes_used = 0, frame_off[HDB_MAX_SIGNALS];
    hdb_item_t *it = &v->item;
    int rc;

    int have_updated = 0, have_cseq = 0, have_added = 0;
    memset(it, 0, sizeof *it);
    v->created_seq = 0;
    it->note = "";
    if (n < 1 || *r.p != HDB__REC_VERSION)
        return CORDON_ECORRUPT;
    r.p++;
    while ((rc = hdb__rd_next(&r, &f)) == 1) {
        switch (f.tag) {
        case IT_BANK:
            if (f.u > UINT32_MAX)
                return CORDON_ECORRUPT;
            it->bank_id = (uint32_t)f.u;
            break;
        case IT_FLAGS:
            it->deleted = (int)(f.u & 1);
            break;
        case IT_CREATED:
            it->created = hdb__unzigzag(f.u);
            break;
        case IT_UPDATED:
            it->updated = hdb__unzigzag(f.u);
            have_updated = 1;
            break;
        case IT_SEQ:
            it->seq = f.u;
            break;
        case IT_CREATED_SEQ:
            v->created_seq = f.u;
            have_cseq = 1;
            break;
        case IT_DISABLE:
            it->disable_until = hdb__unzigzag(f.u);
            break;
        case IT_ADDED_BY:
            if (!(it->prov.added_by = hdb__field_str(&f)))
                return CORDON_ECORRUPT;
            break;
        case IT_SOURCE:
            it->prov.source = (hdb_source_t)f.u;
            break;
        case IT_SOURCE_NAME:
            if (!(it->prov.source_name = hdb__field_str(&f)))
                return CORDON_ECORRUPT;
            break;
        case IT_ADDED_AT:
            it->prov.added_at = hdb__unzigzag(f.u);
            have_added = 1;
            break;
        case IT_NOTE:
            if (!(it->note = hdb__field_str(&f)))
                return CORDON_ECORRUPT;
            break;
        case IT_LABEL:
            if (it->nlabels >= HDB_MAX_LABELS ||
                !(v->labels[it->nlabels] = hdb__field_str(&f)))
                return CORDON_ECORRUPT;
            it->nlabels++;
            break;
        case IT_SIGNAL:
            if (f.wt != WT_BYTES || it->nsignals >= HDB_MAX_SIGNALS)
                return CORDON_ECORRUPT;
            rc = sig_decode(f.data, f.len, &v->sigs[it->nsignals], v,
                            &nframes_used, &frame_off[it->nsignals]);
            if (rc != CORDON_OK)
                return rc;
            if (v->sigs[it->nsignals].type)
                it->nsignals++;
            break;
        default:
            break;
        }
    }
    if (rc < 0)
        return rc;
    if (!have_updated)
        it->updated = it->created;
    if (!have_cseq)
        v->created_seq = it->seq;
    if (!have_added)
        it->prov.added_at = it->created;
    for (size_t i = 0; i < it->nsignals; i++)
        if (v->sigs[i].type == HDB_SIG_VPDQ)
            v->sigs[i].frames = v->frames + frame_off[i];
    it->labels = v->labels;
    it->signals = v->sigs;
    return CORDON_OK;
}

static size_t str_size(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

static char *str_copy(char **dst, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *r = memcpy(*dst, s, n);
    *dst += n;
    return r;
}

hdb_item_t *hdb__item_clone(const hdb_item_t *it)
{
    size_t nframes = 0;
    for (size_t i = 0; i < it->nsignals; i++)
        if (it->signals[i].type == HDB_SIG_VPDQ)
            nframes += it->signals[i].nframes;
    size_t size = sizeof(hdb_item_t) + it->nlabels * sizeof(char *) +
                  it->nsignals * sizeof(hdb_signal_t) +
                  nframes * sizeof(hdb_vpdq_frame_t);
    size += str_size(it->bank) + str_size(it->note) +
            str_size(it->prov.added_by) + str_size(it->prov.source_name);
    for (size_t i = 0; i < it->nlabels; i++)
        size += str_size(it->labels[i]);

    uint8_t *mem = malloc(size);
    if (!mem)
        return NULL;
    hdb_item_t *out = (hdb_item_t *)mem;
    *out = *it;
    const char **labels = (const char **)(out + 1);
    hdb_signal_t *sigs = (hdb_signal_t *)(labels + it->nlabels);
    hdb_vpdq_frame_t *frames = (hdb_vpdq_frame_t *)(sigs + it->nsignals);
    char *strs = (char *)(frames + nframes);

    for (size_t i = 0; i < it->nsignals; i++) {
        sigs[i] = it->signals[i];
        if (sigs[i].type == HDB_SIG_VPDQ) {
            memcpy(frames, it->signals[i].frames,
                   sigs[i].nframes * sizeof *frames);
            sigs[i].frames = frames;
            frames += sigs[i].nframes;
        }
    }
    out->bank = str_copy(&strs, it->bank);
    out->note = str_copy(&strs, it->note);
    out->prov.added_by = str_copy(&strs, it->prov.added_by);
    out->prov.source_name = str_copy(&strs, it->prov.source_name);
    for (size_t i = 0; i < it->nlabels; i++)
        labels[i] = str_copy(&strs, it->labels[i]);
    out->labels = labels;
    out->signals = sigs;
    return out;
}

/* ---------------------------------------------------------------- */

void hdb__bank_encode(hdb__buf_t *b, const hdb_bank_t *bk, uint64_t created_seq)
{
    hdb__buf_u8(b, HDB__REC_VERSION);
    hdb__tlv_str(b, BK_NAME, bk->name);
    hdb__tlv_u(b, BK_ENABLED, bk->enabled ? 1 : 0);
    if (bk->default_action && *bk->default_action)
        hdb__tlv_str(b, BK_ACTION, bk->default_action);
    for (size_t i = 0; i < bk->nlabels; i++)
        hdb__tlv_str(b, BK_LABEL, bk->labels[i]);
    hdb__tlv_i(b, BK_CREATED, bk->created);
    hdb__tlv_i(b, BK_UPDATED, bk->updated);
    hdb__tlv_u(b, BK_SEQ, bk->seq);
    hdb__tlv_u(b, BK_CREATED_SEQ, created_seq);
    if (bk->deleted)
        hdb__tlv_u(b, BK_DELETED, 1);
}

int hdb__bank_decode(const void *p, size_t n, hdb__bank_view_t *v)
{
    hdb__rd_t r = {(const uint8_t *)p, (const uint8_t *)p + n};
    hdb__field_t f;
    hdb_bank_t *bk = &v->bank;
    int rc;

    memset(bk, 0, sizeof *bk);
    v->created_seq = 0;
    bk->default_action = "";
    if (n < 1 || *r.p != HDB__REC_VERSION)
        return CORDON_ECORRUPT;
    r.p++;
    while ((rc = hdb__rd_next(&r, &f)) == 1) {
        switch (f.tag) {
        case BK_NAME:
            if (!(bk->name = hdb__field_str(&f)))
                return CORDON_ECORRUPT;
            break;
        case BK_ENABLED:
            bk->enabled = f.u != 0;
            break;
        case BK_ACTION:
            if (!(bk->default_action = hdb__field_str(&f)))
                return CORDON_ECORRUPT;
            break;
        case BK_LABEL:
            if (bk->nlabels >= HDB_MAX_LABELS ||
                !(v->labels[bk->nlabels] = hdb__field_str(&f)))
                return CORDON_ECORRUPT;
            bk->nlabels++;
            break;
        case BK_CREATED:
            bk->created = hdb__unzigzag(f.u);
            break;
        case BK_UPDATED:
            bk->updated = hdb__unzigzag(f.u);
            break;
        case BK_SEQ:
            bk->seq = f.u;
            break;
        case BK_CREATED_SEQ:
            v->created_seq = f.u;
            break;
        case BK_DELETED:
            bk->deleted = f.u != 0;
            break;
        default:
            break;
        }
    }
    if (rc < 0 || !bk->name)
        return CORDON_ECORRUPT;
    bk->labels = v->labels;
    return CORDON_OK;
}

hdb_bank_t *hdb__bank_clone(const hdb_bank_t *bk)
{
    size_t size = sizeof *bk + bk->nlabels * sizeof(char *) +
                  str_size(bk->name) + str_size(bk->default_action);
    for (size_t i = 0; i < bk->nlabels; i++)
        size += str_size(bk->labels[i]);
    uint8_t *mem = malloc(size);
    if (!mem)
        return NULL;
    hdb_bank_t *out = (hdb_bank_t *)mem;
    *out = *bk;
    const char **labels = (const char **)(out + 1);
    char *strs = (char *)(labels + bk->nlabels);
    out->name = str_copy(&strs, bk->name);
    out->default_action = str_copy(&strs, bk->default_action);
    for (size_t i = 0; i < bk->nlabels; i++)
        labels[i] = str_copy(&strs, bk->labels[i]);
    out->labels = labels;
    return out;
}
