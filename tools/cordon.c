/* cordon.c - the command-line entry point: dispatches to subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cordon.h"

int cmd_hash(int argc, char **argv);

static const cli_command_t commands[] = {
    {"hash", cmd_hash, "hash images: PDQ, quality, MD5, SHA-256"},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: cordon [--version] [--help] <command> [<args>]\n\n"
               "Perceptual-hash media matching.\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nRun 'cordon <command> --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_ERR;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
        strcmp(cmd, "help") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("cordon %s (simd: %s)\n", cordon_version(),
               cordon_cpu_path_name());
        return CLI_OK;
    }
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "cordon: unknown command '%s'\n", cmd);
    usage(stderr);
    return CLI_ERR;
}
