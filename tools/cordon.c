/* cordon.c - the command-line entry point: dispatches to subcommands. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cordon.h"

int cmd_hash(int argc, char **argv);
int cmd_bank(int argc, char **argv);
int cmd_add(int argc, char **argv);
int cmd_add_hash(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_disable(int argc, char **argv);
int cmd_enable(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_match(int argc, char **argv);
int cmd_key(int argc, char **argv);
int cmd_sync(int argc, char **argv);
int cmd_serve(int argc, char **argv);

static const cli_command_t commands[] = {
    {"hash", cmd_hash, "hash images and videos: PDQ (vPDQ), quality, MD5, SHA-256"},
    {"bank", cmd_bank, "create, list, enable, disable or remove banks"},
    {"add", cmd_add, "hash media files and store them in a bank"},
    {"add-hash", cmd_add_hash, "store a hash received from a partner"},
    {"match", cmd_match, "check media against the hash database"},
    {"ls", cmd_ls, "list items"},
    {"show", cmd_show, "print every field of items"},
    {"rm", cmd_rm, "delete items (leaves tombstones)"},
    {"disable", cmd_disable, "disable items, indefinitely or until a time"},
    {"enable", cmd_enable, "enable disabled items again"},
    {"stats", cmd_stats, "database counts and size"},
    {"import", cmd_import, "import a hash list (te-csv, local)"},
    {"export", cmd_export, "export hashes (te-csv, local)"},
    {"key", cmd_key, "create, list or revoke API keys of the server"},
    {"sync", cmd_sync, "pull a peer Cordon's changes into the database"},
    {"serve", cmd_serve, "HTTP service: upload-time checks, HMA API, feed"},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
    fprintf(f,
            "usage: cordon [--version] [--help] [--db PATH] <command> "
            "[<args>]\n\n"
            "Perceptual-hash media matching.\n\n"
            "--db PATH before the command sets the database of the commands\n"
            "that use one (as $CORDON_DB does; default ./cordon.db).\n\n"
            "commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nRun 'cordon <command> --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    /* A leading --db is passed on through the environment, where every
     * database command (match too) already looks. */
    if (argc >= 3 && strcmp(argv[1], "--db") == 0) {
        if (!*argv[2] || setenv("CORDON_DB", argv[2], 1) != 0) {
            fprintf(stderr, "cordon: bad --db '%s'\n", argv[2]);
            return CLI_ERR;
        }
        argc -= 2;
        argv += 2;
    }
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
