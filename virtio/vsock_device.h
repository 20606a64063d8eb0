/* vsock_device.h: virtio-vsock (virtio 1.2 §5.10) bridged to host Unix sockets the
 * way Firecracker does it ("hybrid vsock").
 *
 * Host-initiated: the device listens on uds_path; a host process connects,
 * writes `CONNECT <port>\n`, the device sends REQUEST to the guest and, once
 * the guest answers RESPONSE, writes `OK <hostport>\n` back (hostport is the
 * source port the guest sees). A guest RST, or no answer within the connect
 * timeout, closes the host socket instead.
 * Guest-initiated: a REQUEST to CID 2 port P is connected to the Unix socket
 * `<uds_path>_<P>`; nothing listening there means RST.
 *
 * Streams only (no SEQPACKET), credit-based flow control both ways: data the
 * guest sends is written straight to the host socket, and what the socket
 * cannot take yet is held in a per-connection buffer no larger than the
 * credit we gave (a guest that sends beyond its credit is reset). The
 * credit of all connections together never exceeds the per-VM budget
 * (buffer_bytes): the guest slows down instead of the host filling up.
 * Host data is read straight into the guest's RX buffers, only while the
 * guest has RX buffers and credit for that connection. A broken descriptor
 * chain puts the device into NEEDS_RESET; a bad packet costs only its
 * connection (RST).
 */
#ifndef EMBER_VIRTIO_VSOCK_H
#define EMBER_VIRTIO_VSOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/guest_mem.h"
#include "virtio/mmio.h"

#define VSOCK_HOST_CID 2u
/* Firecracker's figures: connect/shutdown timeouts, per-connection buffer,
 * connections per VM. */
#define VSOCK_CONNECT_TIMEOUT_MS_DEFAULT  2000u
#define VSOCK_SHUTDOWN_TIMEOUT_MS_DEFAULT 2000u
#define VSOCK_BUF_ALLOC_DEFAULT           (256u * 1024u)
#define VSOCK_MAX_CONNS_DEFAULT           1023u
/* Guest data the device may hold for host sockets that do not take it, all
 * connections together (an ember extension: Firecracker has no such bound,
 * its guests can make it hold buf_alloc per connection). Enforced through
 * the credit the device gives (see vsock_conn.c). */
#define VSOCK_BUFFER_BYTES_DEFAULT (4u << 20)
#define VSOCK_BUFFER_BYTES_MIN     4096u
#define VSOCK_BUFFER_BYTES_MAX     (1ull << 32)
/* Largest payload in one packet either way (Linux uses 64 KiB too). */
#define VSOCK_PKT_PAYLOAD_MAX (64u * 1024u)

struct vsock_config {
    uint64_t guest_cid; /* >= 3 */
    char *uds_path;     /* owned; <uds_path>_<port> must fit sun_path */
    /* 0 means the default for each of these. */
    uint32_t max_conns;
    uint32_t buf_alloc;
    uint32_t connect_timeout_ms;
    uint32_t shutdown_timeout_ms;
    uint64_t buffer_bytes; /* the per-VM budget, VSOCK_BUFFER_BYTES_MIN..._MAX */
};

struct vsock_stats {
    uint64_t rx_packets, rx_bytes;    /* to the guest (RX queue); bytes: payload */
    uint64_t tx_packets, tx_bytes;    /* from the guest (TX queue) */
    uint64_t conns_host, conns_guest; /* connections established, by initiator */
    uint64_t conns_refused;           /* guest REQUEST with no host listener, or guest RST */
    uint64_t conns_over_limit;        /* turned away at the connection limit */
    uint64_t conns_timed_out;         /* connect or shutdown timeout */
    uint64_t resets_sent, resets_received;
    uint64_t malformed;         /* bad packets (RST) */
    uint64_t credit_violations; /* guest sent beyond its credit (RST) */
    uint64_t rst_dropped;       /* RSTs not sent: the guest gave no RX buffers */
    uint64_t conns_active;      /* right now */
    uint64_t tx_buffered_bytes; /* right now: guest data waiting for host sockets */
    uint64_t tx_buffered_peak;  /* the most tx_buffered_bytes has been */
    uint64_t tx_granted_bytes;  /* right now: what the guest may make us hold (<= budget) */
    uint64_t credit_limited;    /* credit grants cut short by the budget */
};

struct vsock;
struct uv_loop_s;

/* Creates the device and starts listening on uds_path (which must not exist
 * yet). Errors name the socket and the reason. */
struct vsock *vsock_create(const struct vsock_config *cfg, const struct guest_mem *mem,
                           uint64_t base, uint32_t gsi, char *err, size_t errlen);
/* Starts serving on the main loop: queue notifications, the listening
 * socket, connection sockets and timers. */
int vsock_attach(struct vsock *v, struct uv_loop_s *loop);
/* Closes every socket and removes uds_path. If it was attached, the loop's
 * handles must be closed first (uv_walk + uv_close, then uv_run, as
 * cmd/main.c does when the VM ends). */
void vsock_destroy(struct vsock *v);
struct virtio_mmio *vsock_transport(struct vsock *v);
/* After a snapshot restore: the host side's connections are gone, so the
 * device tells the driver with a VIRTIO_VSOCK_EVENT_TRANSPORT_RESET on the
 * event queue (virtio 1.2 §5.10.6.6, as Firecracker does): the driver drops
 * its connections and keeps its listeners. */
void vsock_transport_reset(struct vsock *v);
const struct vsock_config *vsock_get_config(const struct vsock *v);
/* A snapshot of the counters (takes the device lock). */
void vsock_get_stats(struct vsock *v, struct vsock_stats *out);

#endif
