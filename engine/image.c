#include <stdlib.h>
#include <string.h>

#include "cordon_error.h"
#include "cordon_image.h"

int cordon_hash_image(const uint8_t *buf, size_t len,
                      const cordon_decode_opts_t *opts,
                      cordon_image_hashes_t *out)
{
    cordon_image_t img;
    void *scratch = NULL;
    cordon_pdq_result_t res;
    int rc;

    if (!out)
        return CORDON_EINVAL;
    memset(out, 0, sizeof *out);
    if ((rc = cordon_decode_image(buf, len, opts, &img)) != CORDON_OK)
        return rc;
    size_t need = cordon_pdq_scratch_size(img.width, img.height);
    scratch = malloc(need);
    if (!scratch) {
        rc = CORDON_ENOMEM;
        goto fail;
    }
    cordon_plane_t plane = cordon_image_plane(&img);
    if ((rc = cordon_pdq_compute(&plane, scratch, need, &res)) != CORDON_OK)
        goto fail;
    if ((rc = cordon_digest(buf, len, out->md5, out->sha256)) != CORDON_OK)
        goto fail;
    out->pdq = res.hash;
    out->quality = res.quality;
    cordon_pdq_dihedral(&res.dct, out->dihedral);
    out->width = img.src_width;
    out->height = img.src_height;
    out->format = img.format;
fail:
    free(scratch);
    cordon_image_free(&img);
    return rc;
}
