/* ember/faas.h: the wire protocol of ember's function runtime, shared by the
 * guest runtime (ember_faas_serve) and the host side (`ember invoke`,
 * monitor/invoke.h).
 *
 * One C99 header, included by both sides; it only ever grows. The transport
 * is one vsock stream: the host reaches it through the VM's Unix socket with
 * Firecracker's handshake (`CONNECT <port>\n`, answered `OK <hostport>\n`),
 * the guest listens on an AF_VSOCK port (EMBER_FAAS_PORT unless told
 * otherwise).
 *
 * Framing. Each message is a fixed 24-byte header, every field little-
 * endian, followed by exactly `length` bytes of body:
 *
 *   offset  size  field
 *        0     4  magic         EMBER_FAAS_MAGIC ("EFN1" in memory order)
 *        4     2  version       EMBER_FAAS_VERSION
 *        6     2  status        request: flags, must be 0
 *                               response: EMBER_FAAS_S_*
 *        8     8  length        body bytes that follow (0 is fine)
 *       16     8  max_response  request: the largest response body the host
 *                               will accept (0: EMBER_FAAS_BODY_MAX_DEFAULT)
 *                               response: 0
 *
 * A connection carries any number of exchanges, strictly in order: the host
 * sends a request, the guest answers with exactly one response. The host may
 * send the next request before reading the previous response (pipelining);
 * responses come back in request order.
 *
 * Limits. The host sets the response limit per request (max_response); the
 * guest sets its own request limit when it starts serving (default
 * EMBER_FAAS_BODY_MAX_DEFAULT, at most EMBER_FAAS_BODY_MAX). Neither side
 * ever trusts a length beyond its limit:
 *  - a request body above the guest's limit is read and discarded, then
 *    answered with EMBER_FAAS_S_TOO_LARGE (the connection stays usable);
 *  - a handler response above max_response is not sent: the guest answers
 *    EMBER_FAAS_S_TOO_LARGE instead;
 *  - a response whose length exceeds max_response is a protocol error on the
 *    host, which closes the connection.
 *
 * Errors. A response with status != EMBER_FAAS_S_OK carries a short UTF-8
 * message as its body (at most EMBER_FAAS_ERROR_MAX bytes, no NUL). A bad
 * magic, version or non-zero request flags is answered EMBER_FAAS_S_PROTOCOL
 * and then the guest closes the connection (the stream can no longer be
 * trusted to be in sync). A connection that ends before a whole response
 * arrived means the function or the VM went away; the host reports it,
 * never waits for more.
 */
#ifndef EMBER_FAAS_H
#define EMBER_FAAS_H

#include <stdint.h>
#include <string.h>

#define EMBER_FAAS_MAGIC   0x314e4645u /* bytes 'E','F','N','1' */
#define EMBER_FAAS_VERSION 1u
#define EMBER_FAAS_HDR_LEN 24u

/* The vsock port a function listens on unless configured otherwise (1024:
 * the first port a Linux guest may bind without privilege, too). */
#define EMBER_FAAS_PORT 1024u

/* Body limits. */
#define EMBER_FAAS_BODY_MAX_DEFAULT (16ull << 20) /* 16 MiB */
#define EMBER_FAAS_BODY_MAX         (1ull << 30)  /* 1 GiB: hard ceiling either way */
#define EMBER_FAAS_ERROR_MAX        1024u

/* Response status. */
enum ember_faas_status {
    EMBER_FAAS_S_OK = 0,        /* body is the handler's response */
    EMBER_FAAS_S_ERROR = 1,     /* the handler reported failure; body: its message */
    EMBER_FAAS_S_TOO_LARGE = 2, /* request or response above a limit */
    EMBER_FAAS_S_PROTOCOL = 3,  /* bad magic, version or flags; the guest closes */
    EMBER_FAAS_S_NO_MEMORY = 4, /* the guest could not hold the request or response */
    EMBER_FAAS_S_INTERNAL = 5,  /* the runtime failed for another reason */
};

/* The header in host order. Encode and decode with the helpers below; never
 * copy this struct onto the wire. */
struct ember_faas_hdr {
    uint32_t magic;
    uint16_t version;
    uint16_t status;
    uint64_t length;
    uint64_t max_response;
};

static inline void ember_faas_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void ember_faas_put32(uint8_t *p, uint32_t v)
{
    ember_faas_put16(p, (uint16_t)v);
    ember_faas_put16(p + 2, (uint16_t)(v >> 16));
}

static inline void ember_faas_put64(uint8_t *p, uint64_t v)
{
    ember_faas_put32(p, (uint32_t)v);
    ember_faas_put32(p + 4, (uint32_t)(v >> 32));
}

static inline uint16_t ember_faas_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t ember_faas_get32(const uint8_t *p)
{
    return ember_faas_get16(p) | ((uint32_t)ember_faas_get16(p + 2) << 16);
}

static inline uint64_t ember_faas_get64(const uint8_t *p)
{
    return ember_faas_get32(p) | ((uint64_t)ember_faas_get32(p + 4) << 32);
}

static inline void ember_faas_encode(uint8_t out[EMBER_FAAS_HDR_LEN],
                                     const struct ember_faas_hdr *h)
{
    ember_faas_put32(out, h->magic);
    ember_faas_put16(out + 4, h->version);
    ember_faas_put16(out + 6, h->status);
    ember_faas_put64(out + 8, h->length);
    ember_faas_put64(out + 16, h->max_response);
}

static inline void ember_faas_decode(struct ember_faas_hdr *h, const uint8_t in[EMBER_FAAS_HDR_LEN])
{
    memset(h, 0, sizeof(*h));
    h->magic = ember_faas_get32(in);
    h->version = ember_faas_get16(in + 4);
    h->status = ember_faas_get16(in + 6);
    h->length = ember_faas_get64(in + 8);
    h->max_response = ember_faas_get64(in + 16);
}

/* A header is well-formed if it has our magic and version. */
static inline int ember_faas_hdr_ok(const struct ember_faas_hdr *h)
{
    return h->magic == EMBER_FAAS_MAGIC && h->version == EMBER_FAAS_VERSION;
}

#endif /* EMBER_FAAS_H */
