/* main.c: the `ember` command. `ember run ...` boots a guest from the quick
 * command line; the Firecracker-style front (--api-sock, --config-file) is in
 * api-socket/. Both build the VM through vm_config and vm_create(). */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "exit_codes.h"
#include "vm.h"

static int cmd_run(int argc, char **argv)
{
    struct vm_config cfg;
    struct vm *vm = NULL;
    char err[512];
    int rc;

    if (cli_parse_run(argc, argv, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "ember: %s\n", err);
        cli_usage(stderr);
        vm_config_release(&cfg);
        return EMBER_EXIT_ARG_PARSING;
    }
    rc = vm_create(&cfg, &vm, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "ember: %s\n", err);
        vm_config_release(&cfg);
        return rc;
    }
    vm_config_release(&cfg);
    rc = vm_run(vm);
    vm_destroy(vm);
    return rc;
}

int main(int argc, char **argv)
{
    /* A closed console must not kill the monitor: writes just fail. */
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 2 && strcmp(argv[1], "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        cli_usage(stdout);
        return EMBER_EXIT_OK;
    }
    cli_usage(stderr);
    return EMBER_EXIT_ARG_PARSING;
}
