/* restore_server.h: `ember restore-server`, a process that checks one
 * snapshot once and forks a VM process for each request.
 *
 * Starting a VM by `ember run --restore` pays, per VM, for what does not
 * depend on the VM: exec, the dynamic loader and glibc's start-up, reading,
 * decoding and checking the state file, opening and verifying the memory
 * file (benches/snapshot_results-20261204.md: about a third of a launch's
 * CPU). The server does that once; each request forks a child that is then
 * an ordinary `ember run --restore` process of its own: it creates its own
 * KVM VM (a VM belongs to the mm that created it), restores the prepared
 * state into it, installs its own seccomp filters and serves its devices,
 * with its own vsock socket and console. The server answers the request
 * once the child's VM runs (or with the child's error), reaps its children
 * and stops them all when it is stopped (SIGTERM, SIGINT).
 *
 * The success answer is written by the child itself, on its copy of the
 * connection (inherited, or passed with SCM_RIGHTS to a pool child), as soon
 * as its VM runs: one hop fewer than through the server. Errors, and a
 * child that ended without answering, are answered by the server.
 *
 * --pool N (default 2): N children are forked ahead and build their KVM VM,
 * irqchip and vCPU with the snapshot's CPUID, and the vCPU thread parked
 * with its filter on (vm_shell.h, vm_ahead.h), once the server
 * has been quiet for 5 ms (building one costs as much CPU as it saves, so it
 * belongs in the gaps between requests, not next to a start); a request takes
 * a ready one (its restore then does no KVM creation: ~0.04 ms instead of
 * ~0.4 ms here) or, if none is ready, forks its own. A ready pool child
 * accepts on the listening socket itself (the server accepts only while no
 * pool child is ready), reads and checks the request and tells the server
 * it took a client, passing it a copy of the connection for the error
 * cases: the request makes no hop through the server. A pool child that
 * cannot build its VM turns the pool off, with a log line.
 *
 * The protocol, on the server's Unix socket (mode 0600): one request per
 * connection, a JSON object of at most 4096 bytes ended by a newline or by
 * the end of the client's writes, then one JSON line back:
 *
 *   {"vsock_uds_path": "/run/vm7.sock", "console": "/run/vm7.log", "id": "vm7",
 *    "api_sock": "/run/vm7.api"}
 *   -> {"pid": 4242, "id": "vm7"}   or   {"fault_message": "..."}
 *
 * Every field is optional: vsock_uds_path is the host side of the guest's
 * vsock (default: the snapshot's own), console the file the guest's console
 * and the child's messages are appended to (default: the server's stdout and
 * stderr), id the VM's instance id (1-64 of [A-Za-z0-9-_]), api_sock an API
 * socket for the child: it is then the `ember --api-sock API_SOCK --id ID`
 * process a PUT /snapshot/load with resume_vm would have made (its API,
 * logs and metrics as any, api_main_restored()) instead of an `ember run
 * --restore` one.
 * Requests are untrusted: anything else is refused with a fault_message that
 * names what was wrong, and the server goes on.
 */
#ifndef EMBER_CMD_RESTORE_SERVER_H
#define EMBER_CMD_RESTORE_SERVER_H

/* `ember restore-server ARGS` (argv[0] is "restore-server"). Returns the
 * process's exit status. */
int restore_server_main(int argc, char **argv);

#endif
