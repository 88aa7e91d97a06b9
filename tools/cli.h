/* cli.h - shared plumbing of the cordon command line (not a public API). */
#ifndef CORDON_CLI_H
#define CORDON_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit statuses (DESIGN 6.12). */
#define CLI_OK 0
#define CLI_NOMATCH 1
#define CLI_ERR 2

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
    const char *summary;
} cli_command_t;

/* Prints "cordon: <where>: <message>" to stderr. */
void cli_error(const char *where, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Reads a whole file ("-" is stdin) into a malloc'd buffer, refusing more
 * than max_bytes (0 = no limit). Returns 0, or a negative cordon error code
 * (CORDON_EIO with errno set, CORDON_ELIMIT_BYTES, CORDON_ENOMEM). */
int cli_read_file(const char *path, uint64_t max_bytes, uint8_t **buf,
                  size_t *len);

/* Calls fn(path, ctx) for each regular file named by the inputs: files as
 * given, directories walked (recursively when recursive is set, in sorted
 * order, skipping dot files). Returns the number of inputs that could not
 * be read; those are reported on stderr. */
int cli_walk(char **inputs, int n, int recursive,
             int (*fn)(const char *path, void *ctx), void *ctx);

/* Parses a non-negative decimal integer; 0 on success, -1 otherwise. */
int cli_parse_u64(const char *s, uint64_t *out);

/* True when stderr is a terminal: progress output goes there only then. */
int cli_progress_enabled(void);

#endif
