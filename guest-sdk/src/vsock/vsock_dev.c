/* vsock_dev.c: the virtio-vsock driver (virtio 1.2 §5.10) under the SDK's
 * AF_VSOCK sockets (see vsock_dev.h).
 *
 * Set up on the first socket() (never at boot): find the device, negotiate
 * VERSION_1 and EVENT_IDX, three queues, the guest CID from config space.
 *
 * Buffers (allocated once, 1 MiB for RX and 2 MiB for TX of the guest's
 * heap, pages touched only as packets use them):
 *  - RX: RX_BUFS (16) chains of two descriptors: the 44-byte header, in an
 *    array of headers in the driver's own (write-hot) bss, then an
 *    RX_PAYLOAD-byte (64 KiB) payload buffer (the device fills the chain as one
 *    buffer, header first, §2.7.4 and §5.10.6.1). A control packet (REQUEST,
 *    RESPONSE, CREDIT_*, SHUTDOWN, RST) then writes only the header array,
 *    which the serve loop writes anyway: after a snapshot restore, four
 *    packets into one-descriptor buffers 16 KiB apart were four guest pages
 *    copied per VM. A packet is handed to vsock_sock_rx(), which copies the
 *    payload into the socket's ring, and the chain goes straight back on
 *    the queue.
 *  - TX: TX_SLOTS slots of TX_SLOT_SIZE bytes, header and payload copied
 *    into one descriptor, so a write() returns as soon as its data is on the
 *    queue, and the slot is reused once the device has taken it. Free slots
 *    are a stack: a request/response loop keeps using the same warm slot.
 *  - EVENT: a few 8-byte buffers for struct virtio_vsock_event (§5.10.6.7).
 *
 * Interrupts stay suppressed (vq_intr_off) while the guest runs or spins;
 * vsock_dev_wait turns them on only right before it sleeps, and off again
 * after. A warm request/response therefore costs no interrupt at all, and a
 * response costs one QueueNotify (an ioeventfd under ember), skipped when
 * the device has not asked for one yet (EVENT_IDX avail_event).
 */
#include <errno.h>
#include <sys/mman.h>

#include "drivers/virtio.h"
#include "sdk.h"
#include "vsock/vsock_dev.h"

#define Q_RX                  0u
#define Q_TX                  1u
#define Q_EVENT               2u
#define RX_BUFS               16u
#define RX_DESCS              (2u * RX_BUFS) /* two per chain */
#define RX_PAYLOAD            65536u
#define TX_SLOTS              32u
#define TX_SLOT_SIZE          65536u
#define EVENT_BUFS            4u
#define HDR                   ((uint32_t)sizeof(struct vsock_hdr))
#define CFG_GUEST_CID         0u /* virtio 1.2 §5.10.4: le64 guest_cid */
#define EVENT_TRANSPORT_RESET 0u
#define MMIO_STATUS           0x070u /* virtio 1.2 §4.2.2: Status */

_Static_assert(HDR + VSOCK_TX_PAYLOAD_MAX <= TX_SLOT_SIZE, "a TX slot holds a packet");

static int state; /* 0 not tried, 1 up, < 0 the error */
static bool irq_routed;
static struct vdev dev;
static struct vring_q vq[3];
static uint64_t cid;
static uint8_t *rx_arena, *tx_arena;
static struct vsock_hdr rx_hdr[RX_BUFS]; /* chain i: rx_hdr[i], then its payload buffer */
static uint32_t event_bufs[EVENT_BUFS][2];
static uint8_t tx_free[TX_SLOTS]; /* stack of free slot numbers */
static unsigned ntx_free;

static void *pages(size_t len)
{
    long p = ember_sys_mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p < 0 ? NULL : (void *)p;
}

/* Tokens are header addresses (never NULL). */
static void rx_give(struct vsock_hdr *h)
{
    struct vbuf b[2] = {{h, HDR}, {rx_arena + (size_t)(h - rx_hdr) * RX_PAYLOAD, RX_PAYLOAD}};
    vq_add(&vq[Q_RX], NULL, 0, b, 2, h);
}

static void event_give(uint32_t *buf)
{
    struct vbuf b = {buf, 8};
    vq_add(&vq[Q_EVENT], NULL, 0, &b, 1, buf);
}

static int start(void)
{
    struct ember_device info;
    int r = vdev_find(VIRTIO_ID_VSOCK, 0, &info);

    if (r)
        return r;
    if ((r = vdev_init(&dev, &info, VIRTIO_ID_VSOCK, 1ull << VIRTIO_F_EVENT_IDX)) != 0)
        return r;
    rx_arena = pages((size_t)RX_BUFS * RX_PAYLOAD);
    tx_arena = pages((size_t)TX_SLOTS * TX_SLOT_SIZE);
    if (!rx_arena || !tx_arena)
        return -ENOMEM;
    if ((r = vdev_queue_setup(&dev, Q_RX, &vq[Q_RX], RX_DESCS)) != 0 ||
        (r = vdev_queue_setup(&dev, Q_TX, &vq[Q_TX], TX_SLOTS)) != 0 ||
        (r = vdev_queue_setup(&dev, Q_EVENT, &vq[Q_EVENT], EVENT_BUFS)) != 0)
        return r;
    for (unsigned i = 0; i < 3; i++)
        vq_intr_off(&vq[i]);
    /* The queue may be smaller than asked for: fill what there is. */
    for (unsigned i = 0; i < RX_BUFS && vq[Q_RX].num_free >= 2; i++)
        rx_give(&rx_hdr[i]);
    for (unsigned i = 0; i < EVENT_BUFS && vq[Q_EVENT].num_free; i++)
        event_give(event_bufs[i]);
    ntx_free = 0;
    for (unsigned i = TX_SLOTS; i-- > 0;)
        if (i < vq[Q_TX].size)
            tx_free[ntx_free++] = (uint8_t)i;
    /* The low half of the le64 guest_cid: CIDs are 32-bit in the socket API
     * (svm_cid), and one register read instead of four (generation, two
     * halves, generation) saves ~0.2 ms on kvm_pvm. */
    cid = vdev_cfg32(&dev, CFG_GUEST_CID);
    /* DRIVER_OK without vdev_driver_ok(): the interrupt is routed only
     * before the first sleep (irq_route), not here. A function that answers
     * its first request within the spin never pays for IDT, local APIC and
     * IOAPIC set-up (~0.4 ms of a cold start on kvm_pvm). Until then the
     * IOAPIC pin stays masked and the device's edges are simply not
     * delivered; every waiter tests the rings again after arming. */
    dev.regs[MMIO_STATUS / 4] =
        VIRTIO_S_ACK | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK | VIRTIO_S_DRIVER_OK;
    vq_kick(&dev, &vq[Q_RX]);
    vq_kick(&dev, &vq[Q_EVENT]);
    return 0;
}

int vsock_dev_start(void)
{
    if (state == 0) {
        int r = start();
        state = r ? r : 1;
        if (r && r != -ENODEV)
            vdev_reset(&dev);
    }
    return state == 1 ? 0 : state;
}

uint64_t vsock_dev_cid(void)
{
    return cid;
}

static void tx_reclaim(void)
{
    void *tok;
    while ((tok = vq_get_used(&vq[Q_TX], NULL)) != NULL)
        tx_free[ntx_free++] = (uint8_t)(((uint8_t *)tok - tx_arena) / TX_SLOT_SIZE);
}

unsigned vsock_dev_tx_room(void)
{
    if (state != 1)
        return 0;
    if (ntx_free == 0 || vq_has_used(&vq[Q_TX]))
        tx_reclaim();
    return ntx_free;
}

int vsock_dev_send(struct vsock_hdr *h, void (*copy)(void *dst, void *arg, uint32_t n), void *arg)
{
    /* Reclaim what the device is done with before taking a slot: the warm
     * slot on top of the stack is then reused (a cold one is one more page
     * written, one more copied page in a VM restored from a snapshot). */
    if (ntx_free == 0 || vq_has_used(&vq[Q_TX])) {
        tx_reclaim();
        if (ntx_free == 0)
            return -EAGAIN;
    }
    uint8_t *slot = tx_arena + (size_t)tx_free[--ntx_free] * TX_SLOT_SIZE;
    h->src_cid = cid;
    h->type = VSOCK_TYPE_STREAM;
    sdk_memcpy(slot, h, HDR);
    if (h->len)
        copy(slot + HDR, arg, h->len);
    struct vbuf b = {slot, HDR + h->len};
    vq_add(&vq[Q_TX], &b, 1, NULL, 0, slot); /* cannot fail: one descriptor per slot */
    vq_kick(&dev, &vq[Q_TX]);
    return 0;
}

static void rx_process(void)
{
    void *tok;
    uint32_t len;
    bool gave = false;

    while ((tok = vq_get_used(&vq[Q_RX], &len)) != NULL) {
        struct vsock_hdr *hp = tok, h;
        if (len >= HDR && len <= HDR + RX_PAYLOAD) {
            sdk_memcpy(&h, hp, HDR);
            /* The payload is what the header says, if the device wrote
             * that much; anything else is dropped. */
            if (h.len <= len - HDR)
                vsock_sock_rx(&h, rx_arena + (size_t)(hp - rx_hdr) * RX_PAYLOAD);
        }
        rx_give(hp);
        gave = true;
    }
    if (gave)
        vq_kick(&dev, &vq[Q_RX]);
}

static void event_process(void)
{
    void *tok;
    uint32_t len;

    while ((tok = vq_get_used(&vq[Q_EVENT], &len)) != NULL) {
        uint32_t *ev = tok;
        if (len >= 4 && ev[0] == EVENT_TRANSPORT_RESET) {
            /* §5.10.6.7: connections are gone; the CID may have changed.
             * After an ember restore the restore page has it (abi.h). */
            uint64_t restored = ember_restore_vsock_cid();
            cid = restored ? restored : vdev_cfg32(&dev, CFG_GUEST_CID);
            vsock_sock_transport_reset();
        }
        event_give(ev);
        vq_kick(&dev, &vq[Q_EVENT]);
    }
}

void vsock_dev_poll(void)
{
    if (state != 1)
        return;
    vdev_irq_take(&dev);
    /* Events first: a transport reset (after a snapshot restore) predates
     * every packet the device put on RX after it, and must not drop a
     * connection those packets just opened. */
    if (vq_has_used(&vq[Q_EVENT]))
        event_process();
    if (vq_has_used(&vq[Q_RX]))
        rx_process();
}

static void irq_route(void)
{
    /* If this fails (no page for the IDT), waits end on their timeouts
     * only: the device still works, polled. */
    if (!irq_routed && ember_irq_attach(dev.gsi) == 0)
        irq_routed = true;
}

static void arm(void *arg)
{
    (void)arg;
    irq_route();
    vq_intr_on(&vq[Q_RX]);
    vq_intr_on(&vq[Q_TX]);
    vq_intr_on(&vq[Q_EVENT]);
}

bool vsock_dev_wait(bool (*ready)(void *), void *arg, uint64_t deadline_ns)
{
    uint64_t now = ember_monotonic_ns();

    if (deadline_ns <= now)
        return ready(arg);
    uint64_t timeout = deadline_ns == UINT64_MAX ? EMBER_WAIT_FOREVER : deadline_ns - now;
    ember_wait_armed(ready, state == 1 ? arm : NULL, arg, timeout);
    if (state == 1 && vq[Q_RX].intr_on)
        for (unsigned i = 0; i < 3; i++)
            vq_intr_off(&vq[i]);
    return ready(arg);
}

void vsock_dev_route_irq(void)
{
    if (state == 1)
        irq_route();
}

void vsock_dev_arm(bool on)
{
    if (state != 1)
        return;
    if (on)
        irq_route();
    for (unsigned i = 0; i < 3; i++) {
        if (on)
            vq_intr_on(&vq[i]);
        else if (vq[i].intr_on)
            vq_intr_off(&vq[i]);
    }
}
