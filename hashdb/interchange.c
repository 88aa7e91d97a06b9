/* interchange.c - import and export of python-threatexchange's dataset CSV
 * and of the local-file exchange format. The mapping and the error policy
 * are documented in hdb.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hdb_internal.h"

#define MAX_FIELDS 16
#define DEFAULT_BATCH 20000
#define DEFAULT_MAX_ERRORS 100

int hdb_format_from_name(const char *name, hdb_format_t *out)
{
    if (!name || !out)
        return CORDON_EINVAL;
    if (!strcasecmp(name, "te-csv") || !strcasecmp(name, "csv") ||
        !strcasecmp(name, "te_csv")) {
        *out = HDB_FMT_TE_CSV;
        return CORDON_OK;
    }
    if (!strcasecmp(name, "local") || !strcasecmp(name, "txt") ||
        !strcasecmp(name, "local-file")) {
        *out = HDB_FMT_LOCAL;
        return CORDON_OK;
    }
    return CORDON_EPARSE;
}

/* ---------------------------------------------------------------- */
/* Import                                                             */

enum { COL_TYPE, COL_SIGNAL, COL_COLLAB, COL_CATEGORY, COL_TAGS, NCOLS };
static const char *const col_names[NCOLS] = {"signal_type", "signal_str",
                                             "collab", "category", "tags"};

typedef struct {
    const char *p;
    size_t len;
} span_t;

/* A set of whole PDQ hashes. Open addressing; the all-zero hash (a blank
 * image) is kept aside because zero marks an empty slot. */
typedef struct {
    uint64_t *k; /* 4 words per slot */
    size_t cap, n;
    int has_zero, loaded;
} fpset_t;

/* Known banks and what import does about them. */
typedef struct {
    char name[HDB_MAX_NAME + 1];
    int state; /* 1 exists, 2 to be created, 3 created */
    fpset_t pdq;
} bank_slot_t;

typedef struct {
    hdb_t *db;
    const hdb_import_params_t *p;
    hdb_import_result_t *res;
    int writing; /* pass that writes (strict pass 2, or skip mode) */
    size_t max_errors;

    /* input cursor */
    const char *cur, *end;
    uint64_t line; /* physical line of cur, 1-based */
    int col[NCOLS];
    int header_seen; /* te-csv: first record examined */

    hdb__buf_t field_buf; /* unescaped quoted fields */
    span_t fields[MAX_FIELDS];
    size_t nfields;
    uint64_t rec_line;

    /* the record being converted */
    char bank[HDB_MAX_NAME + 1];
    char labels[HDB_MAX_LABELS][HDB_MAX_LABEL + 1];
    const char *label_ptrs[HDB_MAX_LABELS];
    size_t nlabels;
    hdb_signal_t sig;
    hdb_vpdq_frame_t *frames; /* HDB_MAX_VPDQ_FRAMES, allocated on demand */

    bank_slot_t *banks;
    size_t nbanks, banks_cap;

    hdb_batch_t *batch;
    char msg[256];
} imp_t;

static int report(imp_t *im, uint64_t line, int err, const char *msg)
{
    im->res->bad++;
    if (!im->res->first_bad_line)
        im->res->first_bad_line = line;
    if (im->p->on_error && im->res->bad <= im->max_errors)
        im->p->on_error(im->p->error_ctx, line, err, msg);
    return err;
}

/* Slots hold whole 256-bit hashes (4 words): a duplicate is an identical
 * hash, never merely a colliding part of one. The all-zero hash marks an
 * empty slot, so it is tracked by has_zero. */
static int slot_empty(const uint64_t *k)
{
    return !(k[0] | k[1] | k[2] | k[3]);
}

static size_t slot_of(const uint64_t *w, size_t cap)
{
    uint64_t x = w[0] ^ (w[1] * 0x9E3779B97F4A7C15ull) ^ (w[2] >> 17) ^
                 (w[3] * 0xC2B2AE3D27D4EB4Full);
    x ^= x >> 29;
    return (size_t)x & (cap - 1);
}

static int fp_grow(fpset_t *fs)
{
    size_t cap = fs->cap ? fs->cap * 2 : 1024;
    uint64_t *k = calloc(cap, 4 * sizeof *k);
    if (!k)
        return CORDON_ENOMEM;
    for (size_t i = 0; i < fs->cap; i++) {
        const uint64_t *src = fs->k + 4 * i;
        if (slot_empty(src))
            continue;
        size_t j = slot_of(src, cap);
        while (!slot_empty(k + 4 * j))
            j = (j + 1) & (cap - 1);
        memcpy(k + 4 * j, src, 4 * sizeof *k);
    }
    free(fs->k);
    fs->k = k;
    fs->cap = cap;
    return CORDON_OK;
}

/* Adds a hash: 1 if it was new, 0 if present, or an error. */
static int fp_add(fpset_t *fs, const cordon_hash256_t *h)
{
    if (slot_empty(h->w)) {
        int was = fs->has_zero;
        fs->has_zero = 1;
        return !was;
    }
    if ((fs->n + 1) * 10 > fs->cap * 7 && fp_grow(fs))
        return CORDON_ENOMEM;
    size_t j = slot_of(h->w, fs->cap);
    while (!slot_empty(fs->k + 4 * j)) {
        if (memcmp(fs->k + 4 * j, h->w, 4 * sizeof(uint64_t)) == 0)
            return 0;
        j = (j + 1) & (fs->cap - 1);
    }
    memcpy(fs->k + 4 * j, h->w, 4 * sizeof(uint64_t));
    fs->n++;
    return 1;
}

static int fp_load_item(void *ctx, const hdb_item_t *it)
{
    for (size_t i = 0; i < it->nsignals; i++)
        if (it->signals[i].type == HDB_SIG_PDQ &&
            fp_add(ctx, &it->signals[i].pdq) < 0)
            return CORDON_ENOMEM;
    return 0;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static span_t trim(span_t s)
{
    while (s.len && is_blank(*s.p)) {
        s.p++;
        s.len--;
    }
    while (s.len && is_blank(s.p[s.len - 1]))
        s.len--;
    return s;
}

static void skip_line(imp_t *im)
{
    const char *nl = memchr(im->cur, '\n', (size_t)(im->end - im->cur));
    if (nl) {
        im->cur = nl + 1;
        im->line++;
    } else {
        im->cur = im->end;
    }
}

/* Reads one CSV record (RFC 4180; a quoted field may span lines). Returns 1
 * for a record, 0 at the end, or a negative error (the rest of the line is
 * then skipped). */
static int csv_record(imp_t *im)
{
    size_t offs[MAX_FIELDS], lens[MAX_FIELDS];
    int quoted[MAX_FIELDS];
    const char *start = im->cur;
    if (im->cur >= im->end)
        return 0;
    im->rec_line = im->line;
    im->nfields = 0;
    im->field_buf.len = 0;
    for (;;) {
        if (im->nfields == MAX_FIELDS) {
            skip_line(im);
            snprintf(im->msg, sizeof im->msg, "more than %d columns",
                     MAX_FIELDS);
            return CORDON_EPARSE;
        }
        size_t f = im->nfields++;
        if (im->cur < im->end && *im->cur == '"') {
            quoted[f] = 1;
            offs[f] = im->field_buf.len;
            im->cur++;
            for (;;) {
                if (im->cur >= im->end) {
                    snprintf(im->msg, sizeof im->msg,
                             "unterminated quoted field");
                    return CORDON_EPARSE;
                }
                char c = *im->cur++;
                if (c == '"') {
                    if (im->cur < im->end && *im->cur == '"') {
                        im->cur++;
                        hdb__buf_u8(&im->field_buf, '"');
                        continue;
                    }
                    break;
                }
                if (c == '\n')
                    im->line++;
                hdb__buf_u8(&im->field_buf, (uint8_t)c);
            }
            lens[f] = im->field_buf.len - offs[f];
            if (im->cur < im->end && *im->cur == '\r')
                im->cur++;
            if (im->cur < im->end && *im->cur != ',' && *im->cur != '\n') {
                skip_line(im);
                snprintf(im->msg, sizeof im->msg, "text after a closing quote");
                return CORDON_EPARSE;
            }
        } else {
            quoted[f] = 0;
            offs[f] = (size_t)(im->cur - start);
            while (im->cur < im->end && *im->cur != ',' && *im->cur != '\n')
                im->cur++;
            lens[f] = (size_t)(im->cur - start) - offs[f];
            if (lens[f] && start[offs[f] + lens[f] - 1] == '\r')
                lens[f]--;
        }
        if (im->cur >= im->end)
            break;
        if (*im->cur == '\n') {
            im->cur++;
            im->line++;
            break;
        }
        im->cur++; /* ',' */
    }
    if (im->field_buf.oom)
        return CORDON_ENOMEM;
    for (size_t f = 0; f < im->nfields; f++) {
        im->fields[f].p = quoted[f] ? (const char *)im->field_buf.p + offs[f]
                                    : start + offs[f];
        im->fields[f].len = lens[f];
    }
    return 1;
}

static int span_is(span_t s, const char *word)
{
    s = trim(s);
    return s.len == strlen(word) && strncasecmp(s.p, word, s.len) == 0;
}

/* A header names signal_type and signal_str; its names order the columns. */
static int csv_header(imp_t *im)
{
    int found[NCOLS] = {0}, col[NCOLS];
    for (int c = 0; c < NCOLS; c++)
        col[c] = -1;
    for (size_t f = 0; f < im->nfields; f++)
        for (int c = 0; c < NCOLS; c++)
            if (span_is(im->fields[f], col_names[c]) && !found[c]) {
                found[c] = 1;
                col[c] = (int)f;
            }
    if (!found[COL_TYPE] || !found[COL_SIGNAL])
        return 0;
    memcpy(im->col, col, sizeof col);
    return 1;
}

static span_t field(imp_t *im, int c)
{
    span_t none = {"", 0};
    int f = im->col[c];
    if (f < 0 || (size_t)f >= im->nfields)
        return none;
    return trim(im->fields[f]);
}

static int add_label(imp_t *im, const char *key, span_t value)
{
    if (im->nlabels >= HDB_MAX_LABELS) {
        snprintf(im->msg, sizeof im->msg, "more than %d labels",
                 HDB_MAX_LABELS);
        return CORDON_EPARSE;
    }
    char *dst = im->labels[im->nlabels];
    size_t kl = key ? strlen(key) : 0;
    if (kl + 1 + value.len > HDB_MAX_LABEL) {
        snprintf(im->msg, sizeof im->msg, "label longer than %d bytes",
                 HDB_MAX_LABEL);
        return CORDON_EPARSE;
    }
    if (key) {
        memcpy(dst, key, kl);
        dst[kl++] = ':';
    }
    memcpy(dst + kl, value.p, value.len);
    dst[kl + value.len] = 0;
    if (!hdb__valid_label(dst)) {
        snprintf(im->msg, sizeof im->msg, "bad label \"%.80s\"", dst);
        return CORDON_EPARSE;
    }
    for (size_t i = 0; i < im->nlabels; i++)
        if (strcmp(im->labels[i], dst) == 0)
            return CORDON_OK; /* repeated: keep one */
    im->label_ptrs[im->nlabels] = dst;
    im->nlabels++;
    return CORDON_OK;
}

static int set_signal(imp_t *im, span_t type, span_t value,
                      hdb_sigtype_t forced)
{
    hdb_sigtype_t t = forced;
    if (!t && hdb_sigtype_from_name(type.p, type.len, &t) != CORDON_OK) {
        if (im->p->ignore_unknown_types && type.len) {
            im->res->unknown_types++;
            return 1; /* skip quietly */
        }
        snprintf(im->msg, sizeof im->msg, "unknown signal type \"%.*s\"",
                 (int)(type.len > 40 ? 40 : type.len), type.p);
        return CORDON_EPARSE;
    }
    if (t == HDB_SIG_VPDQ && !im->frames) {
        im->frames = malloc(HDB_MAX_VPDQ_FRAMES * sizeof *im->frames);
        if (!im->frames)
            return CORDON_ENOMEM;
    }
    int rc = hdb_signal_parse(t, value.p, value.len, &im->sig, im->frames,
                              t == HDB_SIG_VPDQ ? HDB_MAX_VPDQ_FRAMES : 0);
    if (rc) {
        snprintf(im->msg, sizeof im->msg, "bad %s signal: %s",
                 hdb_sigtype_name(t), cordon_strerror(rc));
        return rc == CORDON_ENOMEM ? rc : CORDON_EPARSE;
    }
    return CORDON_OK;
}

static int set_bank(imp_t *im, span_t name)
{
    if (!name.len) {
        if (!im->p->bank) {
            snprintf(im->msg, sizeof im->msg, "no collab and no default bank");
            return CORDON_EPARSE;
        }
        name.p = im->p->bank;
        name.len = strlen(im->p->bank);
    }
    if (name.len > HDB_MAX_NAME) {
        snprintf(im->msg, sizeof im->msg, "bank name too long");
        return CORDON_EPARSE;
    }
    memcpy(im->bank, name.p, name.len);
    im->bank[name.len] = 0;
    if (!hdb__valid_name(im->bank)) {
        snprintf(im->msg, sizeof im->msg, "bad bank name");
        return CORDON_EPARSE;
    }
    for (size_t i = 0; i < im->nbanks; i++)
        if (strcmp(im->banks[i].name, im->bank) == 0)
            return CORDON_OK;
    hdb_bank_t *bk = NULL;
    int rc = hdb_bank_get(im->db, im->bank, &bk);
    hdb_free(bk);
    if (rc && rc != CORDON_ENOTFOUND)
        return rc;
    if (rc == CORDON_ENOTFOUND && !im->p->create_banks) {
        snprintf(im->msg, sizeof im->msg, "no bank \"%.*s\"", 100, im->bank);
        return CORDON_EPARSE;
    }
    if (im->nbanks == im->banks_cap) {
        size_t cap = im->banks_cap ? im->banks_cap * 2 : 8;
        bank_slot_t *nb = realloc(im->banks, cap * sizeof *nb);
        if (!nb)
            return CORDON_ENOMEM;
        im->banks = nb;
        im->banks_cap = cap;
    }
    memset(&im->banks[im->nbanks], 0, sizeof im->banks[im->nbanks]);
    strcpy(im->banks[im->nbanks].name, im->bank);
    im->banks[im->nbanks].state = rc == CORDON_OK ? 1 : 2;
    im->nbanks++;
    return CORDON_OK;
}

static int create_banks(imp_t *im)
{
    for (size_t i = 0; i < im->nbanks; i++) {
        if (im->banks[i].state != 2)
            continue;
        hdb_bank_spec_t spec = {im->banks[i].name, 1, NULL, NULL, 0};
        int rc = hdb_bank_create(im->db, &spec, NULL);
        if (rc && rc != CORDON_EEXIST)
            return rc;
        if (rc == CORDON_OK)
            im->res->banks_created++;
        im->banks[i].state = 3;
    }
    return CORDON_OK;
}

static int common_labels(imp_t *im)
{
    im->nlabels = 0;
    for (size_t i = 0; i < im->p->nlabels; i++) {
        span_t s = {im->p->labels[i], strlen(im->p->labels[i])};
        int rc = add_label(im, NULL, s);
        if (rc)
            return rc;
    }
    return CORDON_OK;
}

/* Converts the current CSV record: 1 skip, 0 item ready, < 0 error. */
static int csv_convert(imp_t *im)
{
    int rc;
    if (im->nfields == 1 && trim(im->fields[0]).len == 0)
        return 1; /* blank line */
    if (!im->header_seen) {
        im->header_seen = 1;
        if (csv_header(im))
            return 1;
    }
    im->res->records++;
    span_t type = field(im, COL_TYPE), sig = field(im, COL_SIGNAL);
    if (!type.len || !sig.len) {
        snprintf(im->msg, sizeof im->msg, "missing signal_type or signal_str");
        return CORDON_EPARSE;
    }
    if ((rc = set_signal(im, type, sig, 0)))
        return rc;
    if ((rc = set_bank(im, field(im, COL_COLLAB))) || (rc = common_labels(im)))
        return rc;
    span_t cat = field(im, COL_CATEGORY);
    if (cat.len && (rc = add_label(im, "category", cat)))
        return rc;
    span_t tags = field(im, COL_TAGS);
    size_t i = 0;
    while (i < tags.len) {
        while (i < tags.len && is_blank(tags.p[i]))
            i++;
        size_t s = i;
        while (i < tags.len && !is_blank(tags.p[i]))
            i++;
        if (i == s)
            break;
        span_t tag = {tags.p + s, i - s};
        rc = memchr(tag.p, ':', tag.len) ? add_label(im, NULL, tag)
                                         : add_label(im, "tag", tag);
        if (rc)
            return rc;
    }
    return 0;
}

/* Reads and converts one local-format line: 1 skip, 0 item, < 0 error,
 * 2 at the end. */
static int local_next(imp_t *im)
{
    if (im->cur >= im->end)
        return 2;
    im->rec_line = im->line;
    const char *nl = memchr(im->cur, '\n', (size_t)(im->end - im->cur));
    span_t ln = {im->cur,
                 nl ? (size_t)(nl - im->cur) : (size_t)(im->end - im->cur)};
    im->cur = nl ? nl + 1 : im->end;
    if (nl)
        im->line++;
    ln = trim(ln);
    if (!ln.len || ln.p[0] == '#')
        return 1;
    im->res->records++;
    span_t type = {"", 0}, sig = ln;
    int rc;
    if (!im->p->default_type) {
        size_t sp = 0;
        while (sp < ln.len && !is_blank(ln.p[sp]))
            sp++;
        type.p = ln.p;
        type.len = sp;
        sig.p = ln.p + sp;
        sig.len = ln.len - sp;
        sig = trim(sig);
        if (!sig.len) {
            snprintf(im->msg, sizeof im->msg,
                     "expected \"<signal_type> <signal>\"");
            return CORDON_EPARSE;
        }
    }
    if ((rc = set_signal(im, type, sig, im->p->default_type)))
        return rc;
    span_t none = {"", 0};
    if ((rc = set_bank(im, none)) || (rc = common_labels(im)))
        return rc;
    return 0;
}

static int flush_batch(imp_t *im)
{
    hdb_batch_result_t br;
    if (!im->batch)
        return CORDON_OK;
    int rc = hdb_batch_commit(im->batch, NULL, &br);
    im->batch = NULL;
    if (rc)
        return rc;
    im->res->added += br.added;
    im->res->duplicates += br.duplicates;
    if (br.first_seq && !im->res->first_seq)
        im->res->first_seq = br.first_seq;
    if (br.last_seq)
        im->res->last_seq = br.last_seq;
    return CORDON_OK;
}

static int queue_item(imp_t *im)
{
    int rc;
    for (size_t i = 0; i < im->nbanks; i++)
        if (im->banks[i].state == 2 && (rc = create_banks(im)))
            return rc;
    if (im->sig.type == HDB_SIG_PDQ && !im->p->keep_pdq_duplicates) {
        bank_slot_t *bs = NULL;
        for (size_t i = 0; i < im->nbanks && !bs; i++)
            if (strcmp(im->banks[i].name, im->bank) == 0)
                bs = &im->banks[i];
        if (!bs)
            return CORDON_EINTERNAL;
        if (!bs->pdq.loaded) {
            /* Once per bank and import: what the bank holds already. */
            bs->pdq.loaded = 1;
            if (bs->state == 1 &&
                (rc = hdb_item_list(im->db, bs->name, 0, 0, 0, fp_load_item,
                                    &bs->pdq, NULL)))
                return rc;
        }
        if ((rc = fp_add(&bs->pdq, &im->sig.pdq)) < 0)
            return rc;
        if (rc == 0) {
            im->res->duplicates++;
            return CORDON_OK;
        }
    }
    if (!im->batch && (rc = hdb_batch_begin(im->db, &im->batch)))
        return rc;
    hdb_item_spec_t spec;
    memset(&spec, 0, sizeof spec);
    spec.bank = im->bank;
    spec.labels = im->label_ptrs;
    spec.nlabels = im->nlabels;
    spec.prov = im->p->prov;
    spec.signals = &im->sig;
    spec.nsignals = 1;
    rc = hdb_batch_add(im->batch, &spec,
                       im->p->keep_pdq_duplicates ? 0 : HDB_ADD_DEDUP_VPDQ);
    if (rc)
        return rc;
    size_t per = im->p->batch_items ? im->p->batch_items : DEFAULT_BATCH;
    if (hdb_batch_count(im->batch) >= per)
        return flush_batch(im);
    return CORDON_OK;
}

/* One pass over the input. Errors of a line are reported and counted; only
 * failures that are not the input's fault stop the pass. */
static int run_pass(imp_t *im, const char *text, size_t len)
{
    im->cur = text;
    im->end = text + len;
    im->line = 1;
    im->header_seen = 0;
    for (int c = 0; c < NCOLS; c++)
        im->col[c] = c;
    for (;;) {
        int rc;
        if (im->p->format == HDB_FMT_TE_CSV) {
            rc = csv_record(im);
            if (rc == 0)
                break;
            if (rc == 1)
                rc = csv_convert(im);
            else if (rc == CORDON_EPARSE)
                im->res->records++;
        } else {
            rc = local_next(im);
            if (rc == 2)
                break;
        }
        if (rc == 1)
            continue;
        if (rc == CORDON_EPARSE) {
            report(im, im->rec_line, rc, im->msg);
            continue;
        }
        if (rc)
            return rc;
        if (im->writing && (rc = queue_item(im)))
            return rc;
    }
    /* A final line without '\n' is a line too. */
    im->res->lines = im->line - (len && text[len - 1] == '\n' ? 1 : 0);
    return CORDON_OK;
}

int hdb_import(hdb_t *db, const hdb_import_params_t *params, const char *text,
               size_t len, hdb_import_result_t *res)
{
    hdb_import_result_t dummy;
    imp_t *im;
    int rc;

    if (!res)
        res = &dummy;
    memset(res, 0, sizeof *res);
    if (!db || !params || (len && !text) ||
        (params->format != HDB_FMT_TE_CSV && params->format != HDB_FMT_LOCAL) ||
        (params->bank && !hdb__valid_name(params->bank)) ||
        !hdb__valid_labels(params->labels, params->nlabels) ||
        (params->default_type &&
         ((unsigned)params->default_type > HDB_SIG_MAX ||
          params->format != HDB_FMT_LOCAL)) ||
        !hdb__valid_text(params->prov.added_by, HDB_MAX_TEXT) ||
        !hdb__valid_text(params->prov.source_name, HDB_MAX_TEXT))
        return CORDON_EINVAL;
    if (db->readonly)
        return CORDON_EPERM;
    if (params->format == HDB_FMT_LOCAL && !params->bank)
        return CORDON_EINVAL;
    if (!(im = calloc(1, sizeof *im)))
        return CORDON_ENOMEM;
    im->db = db;
    im->p = params;
    im->res = res;
    im->max_errors =
        params->max_errors ? params->max_errors : DEFAULT_MAX_ERRORS;

    if (params->format == HDB_FMT_LOCAL && !params->create_banks) {
        hdb_bank_t *bk = NULL;
        rc = hdb_bank_get(db, params->bank, &bk);
        hdb_free(bk);
        if (rc)
            goto fail;
    }
    if (!params->skip_bad_lines) {
        /* Strict: a dry pass first, so that a bad line anywhere means
         * nothing is written. */
        if ((rc = run_pass(im, text, len)))
            goto fail;
        if (res->bad) {
            rc = CORDON_EPARSE;
            goto fail;
        }
        memset(res, 0, sizeof *res);
    }
    im->writing = 1;
    if ((rc = run_pass(im, text, len)))
        goto fail;
    if ((rc = flush_batch(im)))
        goto fail;
    rc = res->bad ? (params->skip_bad_lines ? CORDON_OK : CORDON_EPARSE)
                  : CORDON_OK;
fail:
    hdb_batch_abort(im->batch);
    hdb__buf_free(&im->field_buf);
    free(im->frames);
    for (size_t i = 0; i < im->nbanks; i++)
        free(im->banks[i].pdq.k);
    free(im->banks);
    free(im);
    return rc;
}

int hdb_import_file(hdb_t *db, const hdb_import_params_t *params,
                    const char *path, hdb_import_result_t *res)
{
    struct stat st;
    int fd, rc;
    if (!path)
        return CORDON_EINVAL;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return errno == ENOENT   ? CORDON_ENOTFOUND
               : errno == EACCES ? CORDON_EPERM
                                 : CORDON_EIO;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return CORDON_EIO;
    }
    if (S_ISREG(st.st_mode)) {
        size_t len = (size_t)st.st_size;
        void *map = NULL;
        if (len) {
            map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
            if (map == MAP_FAILED) {
                close(fd);
                return CORDON_EIO;
            }
        }
        close(fd);
        rc = hdb_import(db, params, map ? map : "", len, res);
        if (map)
            munmap(map, len);
        return rc;
    }
    /* A pipe or a device: read it whole (the strict policy needs two passes).
     */
    hdb__buf_t b = {0};
    for (;;) {
        if (hdb__buf_reserve(&b, 1 << 16)) {
            close(fd);
            hdb__buf_free(&b);
            return CORDON_ENOMEM;
        }
        ssize_t r = read(fd, b.p + b.len, b.cap - b.len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            close(fd);
            hdb__buf_free(&b);
            return CORDON_EIO;
        }
        if (r == 0)
            break;
        b.len += (size_t)r;
    }
    close(fd);
    rc = hdb_import(db, params, b.p ? (const char *)b.p : "", b.len, res);
    hdb__buf_free(&b);
    return rc;
}

/* ---------------------------------------------------------------- */
/* Export                                                             */

typedef struct {
    const hdb_export_params_t *p;
    hdb_write_cb write;
    void *ctx;
    hdb_export_result_t *res;
    hdb__buf_t line;
    hdb__buf_t sig;
} exp_t;

static const char *export_type_name(const exp_t *ex, hdb_sigtype_t t)
{
    if (ex->p->pytx_names && t == HDB_SIG_MD5)
        return "video_md5";
    if (ex->p->pytx_names && t == HDB_SIG_SHA256)
        return "video_sha256";
    return hdb_sigtype_name(t);
}

static void csv_field(hdb__buf_t *b, const char *s, size_t n)
{
    int quote = n && (s[0] == ' ' || s[n - 1] == ' ');
    for (size_t i = 0; i < n && !quote; i++)
        if (s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r')
            quote = 1;
    if (!quote) {
        hdb__buf_put(b, s, n);
        return;
    }
    hdb__buf_u8(b, '"');
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"')
            hdb__buf_u8(b, '"');
        hdb__buf_u8(b, (uint8_t)s[i]);
    }
    hdb__buf_u8(b, '"');
}

static int format_signal(exp_t *ex, const hdb_signal_t *s)
{
    size_t need;
    ex->sig.len = 0;
    int rc = hdb_signal_format(s, 0, (char *)ex->sig.p, ex->sig.cap, &need);
    if (rc == CORDON_ESCRATCH) {
        if (hdb__buf_reserve(&ex->sig, need + 1))
            return CORDON_ENOMEM;
        rc = hdb_signal_format(s, 0, (char *)ex->sig.p, ex->sig.cap, &need);
    }
    ex->sig.len = need;
    return rc;
}

static int export_item(exp_t *ex, const hdb_item_t *it)
{
    int rows = 0, rc;
    for (size_t i = 0; i < it->nsignals; i++) {
        const hdb_signal_t *s = &it->signals[i];
        if (ex->p->types && !(ex->p->types & (1u << s->type)))
            continue;
        if ((rc = format_signal(ex, s)))
            return rc;
        hdb__buf_t *b = &ex->line;
        const char *tn = export_type_name(ex, s->type);
        b->len = 0;
        if (ex->p->format == HDB_FMT_LOCAL) {
            hdb__buf_put(b, tn, strlen(tn));
            hdb__buf_u8(b, ' ');
            hdb__buf_put(b, ex->sig.p, ex->sig.len);
        } else {
            const char *category = NULL;
            csv_field(b, tn, strlen(tn));
            hdb__buf_u8(b, ',');
            csv_field(b, (const char *)ex->sig.p, ex->sig.len);
            hdb__buf_u8(b, ',');
            csv_field(b, it->bank, strlen(it->bank));
            hdb__buf_u8(b, ',');
            for (size_t l = 0; l < it->nlabels && !category; l++)
                if (!strncmp(it->labels[l], "category:", 9))
                    category = it->labels[l];
            if (category)
                csv_field(b, category + 9, strlen(category + 9));
            hdb__buf_u8(b, ',');
            /* Labels hold no blanks, commas are quoted by the field. */
            hdb__buf_t tags = {0};
            for (size_t l = 0; l < it->nlabels; l++) {
                const char *lab = it->labels[l];
                if (lab == category)
                    continue;
                if (tags.len)
                    hdb__buf_u8(&tags, ' ');
                if (!strncmp(lab, "tag:", 4))
                    lab += 4;
                hdb__buf_put(&tags, lab, strlen(lab));
            }
            if (tags.oom)
                b->oom = 1;
            csv_field(b, (const char *)tags.p, tags.len);
            hdb__buf_free(&tags);
        }
        hdb__buf_u8(b, '\n');
        if (b->oom)
            return CORDON_ENOMEM;
        if ((rc = ex->write(ex->ctx, (const char *)b->p, b->len)))
            return rc;
        ex->res->rows++;
        rows++;
    }
    if (rows)
        ex->res->items++;
    return CORDON_OK;
}

static int export_change(void *ctx, const hdb_change_t *ch)
{
    exp_t *ex = ctx;
    ex->res->last_seq = ch->seq;
    if (!ch->item || ch->item->deleted)
        return 0;
    if (ex->p->bank && strcmp(ex->p->bank, ch->item->bank) != 0)
        return 0;
    return export_item(ex, ch->item);
}

int hdb_export(hdb_t *db, const hdb_export_params_t *params, hdb_write_cb write,
               void *ctx, hdb_export_result_t *res)
{
    hdb_export_result_t dummy;
    exp_t ex;
    int rc;

    if (!res)
        res = &dummy;
    memset(res, 0, sizeof *res);
    if (!db || !params || !write ||
        (params->format != HDB_FMT_TE_CSV && params->format != HDB_FMT_LOCAL))
        return CORDON_EINVAL;
    if (params->bank) {
        hdb_bank_t *bk = NULL;
        rc = hdb_bank_get(db, params->bank, &bk);
        hdb_free(bk);
        if (rc)
            return rc;
    }
    memset(&ex, 0, sizeof ex);
    ex.p = params;
    ex.write = write;
    ex.ctx = ctx;
    ex.res = res;
    res->last_seq = params->since_seq;
    if (params->format == HDB_FMT_TE_CSV && !params->no_header) {
        static const char hdr[] =
            "signal_type,signal_str,collab,category,tags\n";
        if ((rc = write(ctx, hdr, sizeof hdr - 1)))
            return rc;
    }
    /* The log holds the latest change of every item, so reading it from
     * since_seq visits each live item changed since then exactly once, all
     * from one snapshot. */
    rc = hdb_changes_since(db, params->since_seq, 0, export_change, &ex, NULL);
    hdb__buf_free(&ex.line);
    hdb__buf_free(&ex.sig);
    return rc;
}

static int file_write(void *ctx, const char *buf, size_t len)
{
    return fwrite(buf, 1, len, (FILE *)ctx) == len ? 0 : CORDON_EIO;
}

int hdb_export_file(hdb_t *db, const hdb_export_params_t *params, FILE *f,
                    hdb_export_result_t *res)
{
    if (!f)
        return CORDON_EINVAL;
    int rc = hdb_export(db, params, file_write, f, res);
    if (rc == CORDON_OK && fflush(f) != 0)
        rc = CORDON_EIO;
    return rc;
}
