/* snapshot_cli.h: `ember snapshot`, a running VM's snapshot through its API
 * socket (see snapshot_cli.c). */
#ifndef EMBER_CMD_SNAPSHOT_CLI_H
#define EMBER_CMD_SNAPSHOT_CLI_H

/* argv[0] is "snapshot". Returns the process exit status. */
int ember_snapshot_main(int argc, char **argv);

#endif
