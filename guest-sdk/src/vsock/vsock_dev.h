/* vsock_dev.h: the virtio-vsock driver (virtio 1.2 §5.10) below the SDK's
 * AF_VSOCK sockets (vsock_sock.c). Not a public header.
 *
 * The device is probed and set up on first use (the first socket), never at
 * boot. It owns three queues: RX (buffers the device fills with packets for
 * the guest), TX (packets to the host) and EVENT (transport resets).
 * Packets are a 44-byte little-endian header and up to `len` payload bytes
 * (§5.10.6); x86 is little-endian, so the header is used as is.
 */
#ifndef EMBER_VSOCK_DEV_H
#define EMBER_VSOCK_DEV_H

#include <stdbool.h>
#include <stdint.h>

/* virtio 1.2 §5.10.6: struct virtio_vsock_hdr. */
struct vsock_hdr {
    uint64_t src_cid;
    uint64_t dst_cid;
    uint32_t src_port;
    uint32_t dst_port;
    uint32_t len;
    uint16_t type;
    uint16_t op;
    uint32_t flags;
    uint32_t buf_alloc;
    uint32_t fwd_cnt;
} __attribute__((packed));

_Static_assert(sizeof(struct vsock_hdr) == 44, "virtio_vsock_hdr is 44 bytes");

#define VSOCK_TYPE_STREAM 1u

/* Operations (§5.10.6). */
enum {
    VSOCK_OP_INVALID = 0,
    VSOCK_OP_REQUEST = 1,
    VSOCK_OP_RESPONSE = 2,
    VSOCK_OP_RST = 3,
    VSOCK_OP_SHUTDOWN = 4,
    VSOCK_OP_RW = 5,
    VSOCK_OP_CREDIT_UPDATE = 6,
    VSOCK_OP_CREDIT_REQUEST = 7,
};

/* SHUTDOWN flags (§5.10.6.5). */
#define VSOCK_SHUTDOWN_RCV  1u
#define VSOCK_SHUTDOWN_SEND 2u

/* Largest payload the driver puts in one TX packet: a 64 KiB TX slot holds
 * header and payload in one buffer (the host takes up to 64 KiB of
 * payload). Big slots mean few packets, and few QueueNotify exits, for a
 * big write: 16 per MiB. */
#define VSOCK_TX_PAYLOAD_MAX (65536u - 64u)

/* Probes and sets up the device on first call. 0, -ENODEV (no vsock
 * device) or -ENOMEM; the result is remembered. */
int vsock_dev_start(void);
/* The guest's CID (config space), valid after vsock_dev_start() == 0. */
uint64_t vsock_dev_cid(void);

/* Sends one packet: h (every field but src_cid/dst_cid/type, which are
 * filled here) followed by len bytes gathered by copy(dst, arg, len) into the
 * TX slot. 0, or -EAGAIN when no TX slot is free (vsock_dev_tx_room() says
 * when one is). The device is notified before the call returns. */
int vsock_dev_send(struct vsock_hdr *h, void (*copy)(void *dst, void *arg, uint32_t n), void *arg);
/* Free TX slots right now (after reclaiming what the device has used). */
unsigned vsock_dev_tx_room(void);

/* Processes what the device has done: RX packets go to vsock_sock_rx() (the
 * payload pointer is valid during the call only), used TX slots are
 * reclaimed, a transport-reset event calls vsock_sock_transport_reset(). RX
 * buffers are given back and the device notified if it waits for them.
 * Cheap when nothing is new (a few loads). */
void vsock_dev_poll(void);

/* Waits until ready(arg) is true or the monotonic clock reaches deadline_ns
 * (UINT64_MAX: no deadline), polling the device in between: spins first,
 * then sleeps until the device interrupts. Returns ready(arg). */
bool vsock_dev_wait(bool (*ready)(void *), void *arg, uint64_t deadline_ns);

/* Device interrupts on (before poll() sleeps) or off again. */
void vsock_dev_arm(bool on);

/* Implemented by vsock_sock.c. */
void vsock_sock_rx(const struct vsock_hdr *h, const uint8_t *payload);
void vsock_sock_transport_reset(void);

#endif
