/* util.h - shared helpers for the test programs: paths, files, commands. */
#ifndef CORDON_TEST_UTIL_H
#define CORDON_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Directory of the bundled vectors ($CORDON_VECTORS, else tests/vectors). */
const char *tu_vectors(void);
/* The cordon binary under test ($CORDON_BIN, else build/cordon). */
const char *tu_cordon_bin(void);
/* A fresh private temporary directory, removed at exit. */
const char *tu_tmpdir(void);
/* snprintf into a static rotating buffer: for building paths in tests. */
const char *tu_path(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Reads a whole file into a malloc'd buffer; NULL on error. */
uint8_t *tu_read_file(const char *path, size_t *len);
/* Writes bytes to a file; 0 on success. */
int tu_write_file(const char *path, const void *buf, size_t len);

/* Runs a shell command; captures stdout (malloc'd, NUL-terminated) into
 * *out if out is non-NULL. Returns the exit status, or -1 if it died. */
int tu_run(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
