#include <stdlib.h>
#include <string.h>

#include "cordon_error.h"
#include "cordon_image.h"

struct cordon_hasher {
    cordon_decoder_t *dec;
    void *scratch;
    size_t scap;
};

int cordon_hasher_create(cordon_hasher_t **out)
{
    if (!out)
        return CORDON_EINVAL;
    cordon_hasher_t *h = calloc(1, sizeof *h);
    if (!h)
        return CORDON_ENOMEM;
    int rc = cordon_decoder_create(&h->dec);
    if (rc != CORDON_OK) {
        free(h);
        return rc;
    }
    *out = h;
    return CORDON_OK;
}

void cordon_hasher_free(cordon_hasher_t *h)
{
    if (!h)
        return;
    cordon_decoder_free(h->dec);
    free(h->scratch);
    free(h);
}

int cordon_hasher_pdq_ex(cordon_hasher_t *h, const cordon_plane_t *plane,
                         const cordon_pdq_opts_t *opts,
                         cordon_pdq_result_t *out)
{
    size_t need = cordon_pdq_scratch_size_ex(plane->width, plane->height, opts);
    if (need == 0)
        return CORDON_EINVAL;
    if (need > h->scap) {
        free(h->scratch);
        h->scap = 0;
        if (!(h->scratch = malloc(need)))
            return CORDON_ENOMEM;
        h->scap = need;
    }
    return cordon_pdq_compute_ex(plane, opts, h->scratch, h->scap, out);
}

int cordon_hasher_pdq(cordon_hasher_t *h, const cordon_plane_t *plane,
                      cordon_pdq_result_t *out)
{
    return cordon_hasher_pdq_ex(h, plane, NULL, out);
}

int cordon_hasher_image(cordon_hasher_t *h, const uint8_t *buf, size_t len,
                        const cordon_decode_opts_t *opts,
                        cordon_image_hashes_t *out)
{
    cordon_image_t img;
    cordon_pdq_result_t res;
    int rc;

    if (!h || !out)
        return CORDON_EINVAL;
    memset(out, 0, sizeof *out);
    if ((rc = cordon_decoder_decode(h->dec, buf, len, opts, &img)) != CORDON_OK)
        return rc;
    cordon_plane_t plane = cordon_image_plane(&img);
    cordon_pdq_opts_t popts;
    cordon_image_pdq_opts(&img, &popts);
    if ((rc = cordon_hasher_pdq_ex(h, &plane, &popts, &res)) != CORDON_OK)
        return rc;
    if ((rc = cordon_digest(buf, len, out->md5, out->sha256)) != CORDON_OK)
        return rc;
    out->pdq = res.hash;
    out->quality = res.quality;
    cordon_pdq_dihedral(&res.dct, out->dihedral);
    out->width = img.src_width;
    out->height = img.src_height;
    out->format = img.format;
    return CORDON_OK;
}

int cordon_hash_image(const uint8_t *buf, size_t len,
                      const cordon_decode_opts_t *opts,
                      cordon_image_hashes_t *out)
{
    cordon_hasher_t *h;
    int rc = cordon_hasher_create(&h);
    if (rc != CORDON_OK)
        return rc;
    rc = cordon_hasher_image(h, buf, len, opts, out);
    cordon_hasher_free(h);
    return rc;
}
