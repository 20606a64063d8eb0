/* api_request_log.h: the log lines of each API request, in Firecracker's
 * words (its api_server/parsed_request.rs), which its tooling and tests grep
 * for:
 *
 *   The API server received a Put request on "/machine-config" with body "{\"vcpu_count\": 1}".
 *   The request was executed successfully. Status code: 204 No Content.
 *   Received Error. Status code: 400 Bad Request. Message: <fault_message>
 *
 * The method is written as Firecracker's Rust Debug does ("Get", "Put"),
 * the path and the body as Rust Debug strings (quoted, with \" \\ \n \t \r
 * \0 and \u{..} escapes); a body that is not UTF-8 is "inconvertible to
 * UTF-8"; bodies of /mmds are never logged (they hold guest metadata).
 */
#ifndef EMBER_API_REQUEST_LOG_H
#define EMBER_API_REQUEST_LOG_H

#include <stddef.h>

#include "api-socket/api_router.h"

/* Writes "<Method> request on \"<path>\"[ with body \"...\"]" into buf
 * (always NUL-terminated, cut at len). */
void api_describe_request(const struct api_request *req, char *buf, size_t len);
/* Logs the request (Info) and, after the router, its outcome: Info for 2xx,
 * Error for a failure, with the fault message. */
void api_log_request(const struct api_request *req);
void api_log_response(const struct api_response *resp);

#endif
