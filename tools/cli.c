#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cordon_error.h"

void cli_error(const char *where, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "cordon: ");
    if (where)
        fprintf(stderr, "%s: ", where);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_read_file(const char *path, uint64_t max_bytes, uint8_t **buf,
                  size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f)
        return CORDON_EIO;
    size_t cap = 0, n = 0;
    uint8_t *b = NULL;
    struct stat st;
    /* Size the buffer from fstat when we can, so a regular file is read
     * with one allocation and a too-large one is refused before reading. */
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode)) {
        if (max_bytes && (uint64_t)st.st_size > max_bytes) {
            if (f != stdin)
                fclose(f);
            return CORDON_ELIMIT_BYTES;
        }
        cap = (size_t)st.st_size + 1;
    }
    if (cap < 4096)
        cap = 4096;
    int rc = CORDON_OK;
    b = malloc(cap);
    if (!b) {
        rc = CORDON_ENOMEM;
        goto fail;
    }
    for (;;) {
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (max_bytes && n > max_bytes) {
            rc = CORDON_ELIMIT_BYTES;
            goto fail;
        }
        if (r == 0) {
            if (ferror(f)) {
                rc = CORDON_EIO;
                goto fail;
            }
            break;
        }
        if (n == cap) {
            size_t ncap = cap * 2;
            uint8_t *nb = realloc(b, ncap);
            if (!nb) {
                rc = CORDON_ENOMEM;
                goto fail;
            }
            b = nb;
            cap = ncap;
        }
    }
    if (f != stdin)
        fclose(f);
    *buf = b;
    *len = n;
    return CORDON_OK;
fail:
    free(b);
    if (f != stdin) {
        int e = errno;
        fclose(f);
        errno = e;
    }
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int walk_dir(const char *dir, int recursive,
                    int (*fn)(const char *, void *), void *ctx)
{
    DIR *d = opendir(dir);
    if (!d) {
        cli_error(dir, "%s", strerror(errno));
        return 1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int bad = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn) {
                bad++;
                break;
            }
            names = nn;
        }
        names[n] = strdup(e->d_name);
        if (names[n])
            n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(dir) + strlen(names[i]) + 2;
        char *p = malloc(len);
        if (!p) {
            bad++;
            continue;
        }
        snprintf(p, len, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/",
                 names[i]);
        struct stat st;
        if (stat(p, &st) != 0) {
            cli_error(p, "%s", strerror(errno));
            bad++;
        } else if (S_ISDIR(st.st_mode)) {
            if (recursive)
                bad += walk_dir(p, recursive, fn, ctx);
        } else if (S_ISREG(st.st_mode)) {
            fn(p, ctx);
        }
        free(p);
        free(names[i]);
    }
    free(names);
    return bad;
}

int cli_walk(char **inputs, int n, int recursive,
             int (*fn)(const char *path, void *ctx), void *ctx)
{
    int bad = 0;
    for (int i = 0; i < n; i++) {
        struct stat st;
        if (strcmp(inputs[i], "-") == 0) {
            fn(inputs[i], ctx);
            continue;
        }
        if (stat(inputs[i], &st) != 0) {
            cli_error(inputs[i], "%s", strerror(errno));
            bad++;
        } else if (S_ISDIR(st.st_mode)) {
            /* A directory named on the command line is always entered;
             * -r decides whether its subdirectories are too. */
            bad += walk_dir(inputs[i], recursive, fn, ctx);
        } else {
            fn(inputs[i], ctx);
        }
    }
    return bad;
}

int cli_progress_enabled(void)
{
    return isatty(STDERR_FILENO);
}
