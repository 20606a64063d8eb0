/* api_log.h: ember's human-readable log, one line per event.
 *
 * Line format (Firecracker's):
 *   2024-05-16T09:25:33.123456789 [instance-id:thread:LEVEL:file:line] message
 * where ":LEVEL" appears with show_level and ":file:line" with
 * show_log_origin. Lines go to stderr until a log path is configured (the
 * --log-path flag or PUT /logger), then to that file or FIFO. Each line is one
 * write(2), so lines from different threads never interleave, and a full FIFO
 * drops the line (counted in logger.missed_log_count) instead of blocking.
 */
#ifndef EMBER_API_LOG_H
#define EMBER_API_LOG_H

#include "api-socket/api_json.h"
#include "api-socket/api_resources.h"

/* Sets the instance id printed on every line ("anonymous-instance" before). */
void api_log_init(const char *instance_id);
/* Applies a logger configuration: opens its output (closing the previous one),
 * sets level and decorations. Returns 0 or -1 with e set (nothing changed). */
int api_log_configure(const struct api_logger_cfg *cfg, struct api_err *e);
/* Names the calling thread in log lines (also sets the OS thread name). */
void api_log_set_thread_name(const char *name);
bool api_log_enabled(enum api_log_level level);

void api_log_write(enum api_log_level level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define API_LOG(level, ...) api_log_write((level), __FILE__, __LINE__, __VA_ARGS__)
#define API_ERROR(...)      API_LOG(API_LOG_ERROR, __VA_ARGS__)
#define API_WARN(...)       API_LOG(API_LOG_WARNING, __VA_ARGS__)
#define API_INFO(...)       API_LOG(API_LOG_INFO, __VA_ARGS__)
#define API_DEBUG(...)      API_LOG(API_LOG_DEBUG, __VA_ARGS__)

#endif
