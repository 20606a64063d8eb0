/* api_output.h: opening the file or named pipe that logs or metrics go to.
 *
 * Firecracker's rule: the path is a regular file (appended to) or a FIFO.
 * Outputs are non-blocking so that a FIFO nobody reads cannot stall the API
 * or a vCPU thread: a line that does not fit is dropped and counted.
 */
#ifndef EMBER_API_OUTPUT_H
#define EMBER_API_OUTPUT_H

#include <stddef.h>

#include "api-socket/api_json.h"

/* Returns an fd (O_CLOEXEC, O_NONBLOCK) or -1 with "what path: reason" in e.
 * A missing path is created as a regular file (mode 0600). */
int api_output_open(const char *what, const char *path, struct api_err *e);
/* Writes one whole line with one write(2); returns 0, or -1 if it was
 * dropped (pipe full, reader gone, disk full). */
int api_output_write(int fd, const char *buf, size_t len);

#endif
