/* net_dev.c: the virtio-net driver (virtio 1.2 §5.1) under the SDK's
 * network stack, and the guest's platform hooks for it (clock, random).
 *
 * Set up on the first AF_INET socket, never at boot, so a function that
 * does not use the network pays nothing for it. Features asked for:
 * VERSION_1, MAC, MTU, STATUS, CSUM and HOST_TSO4 (the device checksums
 * and segments what we send: TCP goes out in 64 KiB segments), GUEST_CSUM
 * and GUEST_TSO4 with MRG_RXBUF (the device may hand us 64 KiB segments
 * spread over several 4 KiB buffers, §5.1.6.3.2), EVENT_IDX.
 *
 * Every packet starts with a 12-byte struct virtio_net_hdr (§5.1.6: with
 * VERSION_1 num_buffers is always there). Buffers are allocated once:
 *  - RX: RX_BUFS buffers of RX_BUF bytes, or 64 KiB buffers when the device
 *    does GUEST_TSO4: without MRG_RXBUF as §5.1.6.3.1 requires (32), with
 *    it in a guest of 128 MiB or more (64: a segment in one buffer). A packet
 *    in one buffer is handed to the stack in place; one spread over
 *    num_buffers buffers is gathered into a linear scratch buffer first.
 *    Buffers go straight back on the queue. Lengths are checked against
 *    what was posted; a bad num_buffers or length drops the packet.
 *  - TX: slots holding header and frame in one descriptor; the stack's
 *    pieces are copied in, so a send returns at once. Free slots are a
 *    stack.
 * Notifications are batched: frames are queued without a QueueNotify, and
 * net_dev_flush() (at the end of every socket call and of every RX pass)
 * notifies once, only if the device asked (EVENT_IDX). A kick costs ~30 us
 * on kvm_pvm; one per 64 KiB segment train instead of one per frame is
 * most of the throughput.
 */
#include <errno.h>
#include <sys/mman.h>

#include "drivers/virtio.h"
#include "net/net_dev.h"
#include "sdk.h"

/* Feature bits (virtio 1.2 §5.1.3). */
#define VIRTIO_NET_F_CSUM       0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MTU        3
#define VIRTIO_NET_F_MAC        5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_HOST_TSO4  11
#define VIRTIO_NET_F_MRG_RXBUF  15
#define VIRTIO_NET_F_STATUS     16

/* struct virtio_net_hdr (§5.1.6). */
struct vnet_hdr {
    uint8_t flags;
    uint8_t gso_type;
    uint16_t hdr_len;
    uint16_t gso_size;
    uint16_t csum_start;
    uint16_t csum_offset;
    uint16_t num_buffers;
} __attribute__((packed));
_Static_assert(sizeof(struct vnet_hdr) == 12, "virtio_net_hdr v1 is 12 bytes");

#define VNET_F_NEEDS_CSUM 1u
#define VNET_F_DATA_VALID 2u
#define VNET_GSO_NONE     0u
#define VNET_GSO_TCPV4    1u
#define VNET_S_LINK_UP    1u
#define CFG_MAC           0u
#define CFG_STATUS        6u
#define CFG_MTU           10u
#define MMIO_STATUS       0x070u

#define Q_RX            0u
#define Q_TX            1u
#define RX_BUFS         256u
#define RX_BUF          4096u
#define RX_BUFS_BIG     32u
#define RX_BUFS_BIG_MRG 64u            /* 64 frames in flight, small or large */
#define RX_BIG_MIN_RAM  (128ull << 20) /* the default VM size */
#define RX_BUF_BIG      (65562u + 6u)  /* §5.1.6.3.1, rounded to 8 */
#define TX_SLOTS        64u
#define TX_SLOT_SMALL   2048u
#define TX_SLOT_BIG     (65536u + 4096u)
#define HDR             ((uint32_t)sizeof(struct vnet_hdr))
#define SCRATCH         (65536u + 4096u)
#define RX_BATCH        256u /* packets per poll at most, so a flood cannot pin us */

static int state; /* 0 not tried, 1 up, < 0 the error */
static bool irq_routed;
static struct vdev dev;
static struct vring_q vq[2];
static uint8_t *rx_arena, *tx_arena, *scratch;
static uint32_t rx_buf, rx_bufs, tx_slot, tx_slots;
static uint16_t tx_free[TX_SLOTS];
static unsigned ntx_free;
static bool mrg;
static unsigned rx_unkicked; /* buffers given back since the last RX notification */
static struct net_if nif;
static struct net_stack stack;
static struct net_config config;

/* ---- platform hooks of net_stack.h ----------------------------------------------- */

uint64_t net_now_ns(void)
{
    return ember_monotonic_ns();
}

uint32_t net_random32(void)
{
    uint32_t v;
    ember_random_fill(&v, sizeof(v));
    return v;
}

/* ---- device ------------------------------------------------------------------------ */

static void *pages(size_t len)
{
    long p = ember_sys_mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p < 0 ? NULL : (void *)p;
}

static void rx_give(uint8_t *buf)
{
    struct vbuf b = {buf, rx_buf};
    vq_add(&vq[Q_RX], NULL, 0, &b, 1, buf);
    rx_unkicked++;
}

static void tx_reclaim(void)
{
    void *tok;
    while ((tok = vq_get_used(&vq[Q_TX], NULL)) != NULL)
        tx_free[ntx_free++] = (uint16_t)(((uint8_t *)tok - tx_arena) / tx_slot);
}

static unsigned dev_tx_room(struct net_if *n)
{
    (void)n;
    if (ntx_free == 0 || vq_has_used(&vq[Q_TX]))
        tx_reclaim();
    return ntx_free;
}

static int dev_tx(struct net_if *n, const struct net_frame *f)
{
    (void)n;
    if (f->len + HDR > tx_slot)
        return -EMSGSIZE;
    if (ntx_free == 0) {
        tx_reclaim();
        if (ntx_free == 0)
            return -EAGAIN;
    }
    uint8_t *slot = tx_arena + (size_t)tx_free[--ntx_free] * tx_slot;
    struct vnet_hdr h = {0};
    if (f->flags & NET_TX_F_CSUM) {
        h.flags = VNET_F_NEEDS_CSUM;
        h.csum_start = f->csum_start;
        h.csum_offset = f->csum_offset;
    }
    if (f->gso_type == NET_GSO_TCPV4) {
        h.gso_type = VNET_GSO_TCPV4;
        h.gso_size = f->gso_size;
        h.hdr_len = f->hdr_len;
    }
    sdk_memcpy(slot, &h, HDR);
    uint32_t off = HDR;
    for (unsigned i = 0; i < f->nseg; i++) {
        sdk_memcpy(slot + off, f->seg[i].p, f->seg[i].len);
        off += f->seg[i].len;
    }
    struct vbuf b = {slot, off};
    vq_add(&vq[Q_TX], &b, 1, NULL, 0, slot); /* one descriptor per slot: cannot fail */
    return 0;
}

static int start(void)
{
    struct ember_device info;
    int r = vdev_find(VIRTIO_ID_NET, 0, &info);

    if (r)
        return r;
    uint64_t want = 1ull << VIRTIO_NET_F_CSUM | 1ull << VIRTIO_NET_F_GUEST_CSUM |
                    1ull << VIRTIO_NET_F_MTU | 1ull << VIRTIO_NET_F_MAC |
                    1ull << VIRTIO_NET_F_GUEST_TSO4 | 1ull << VIRTIO_NET_F_HOST_TSO4 |
                    1ull << VIRTIO_NET_F_MRG_RXBUF | 1ull << VIRTIO_NET_F_STATUS |
                    1ull << VIRTIO_F_EVENT_IDX;
    if ((r = vdev_init(&dev, &info, VIRTIO_ID_NET, want)) != 0)
        return r;
    mrg = vdev_has(&dev, VIRTIO_NET_F_MRG_RXBUF);
    /* 64 KiB buffers: required for GUEST_TSO4 without MRG_RXBUF; with it,
     * chosen when the guest has RAM to spare (4 MiB of buffers), so that a
     * 64 KiB segment lands in one buffer and goes to the stack in place
     * instead of being gathered from 17 (one copy less per segment, one
     * descriptor instead of 17 for the device). */
    bool gso_rx = vdev_has(&dev, VIRTIO_NET_F_GUEST_TSO4);
    bool big_rx = gso_rx && (!mrg || ember_boot_info()->mem_size >= RX_BIG_MIN_RAM);
    rx_buf = big_rx ? RX_BUF_BIG : RX_BUF;
    rx_bufs = big_rx ? (mrg ? RX_BUFS_BIG_MRG : RX_BUFS_BIG) : RX_BUFS;
    bool tso = vdev_has(&dev, VIRTIO_NET_F_HOST_TSO4) && vdev_has(&dev, VIRTIO_NET_F_CSUM);
    tx_slot = tso ? TX_SLOT_BIG : TX_SLOT_SMALL;
    tx_slots = TX_SLOTS;
    rx_arena = pages((size_t)rx_bufs * rx_buf);
    tx_arena = pages((size_t)tx_slots * tx_slot);
    scratch = pages(SCRATCH);
    if (!rx_arena || !tx_arena || !scratch)
        return -ENOMEM;
    if ((r = vdev_queue_setup(&dev, Q_RX, &vq[Q_RX], (uint16_t)rx_bufs)) != 0 ||
        (r = vdev_queue_setup(&dev, Q_TX, &vq[Q_TX], (uint16_t)tx_slots)) != 0)
        return r;
    vq_intr_off(&vq[Q_RX]);
    vq_intr_off(&vq[Q_TX]);
    for (unsigned i = 0; i < rx_bufs && vq[Q_RX].num_free; i++)
        rx_give(rx_arena + (size_t)i * rx_buf);
    ntx_free = 0;
    for (unsigned i = tx_slots; i-- > 0;)
        if (i < vq[Q_TX].size)
            tx_free[ntx_free++] = (uint16_t)i;

    /* Config space (§5.1.4): the MAC if offered, else a random local one
     * (§5.1.5); the MTU if offered (at least 68, RFC 791), else 1500. */
    if (vdev_has(&dev, VIRTIO_NET_F_MAC)) {
        for (unsigned i = 0; i < 6; i++)
            nif.mac[i] = vdev_cfg8(&dev, CFG_MAC + i);
    } else {
        ember_random_fill(nif.mac, 6);
        nif.mac[0] = (uint8_t)((nif.mac[0] & 0xfe) | 0x02);
    }
    nif.mtu = NET_ETH_MTU;
    if (vdev_has(&dev, VIRTIO_NET_F_MTU)) {
        uint16_t m = vdev_cfg16(&dev, CFG_MTU);
        if (m >= 576 && m <= NET_ETH_MTU)
            nif.mtu = m; /* larger MTUs are not used: frames stay in small slots */
    }
    nif.offload =
        (vdev_has(&dev, VIRTIO_NET_F_CSUM) ? NET_OFF_TX_CSUM : 0) | (tso ? NET_OFF_TSO4 : 0);
    nif.tx = dev_tx;
    nif.tx_room = dev_tx_room;
    /* DRIVER_OK without routing the interrupt yet (as vsock_dev.c: the
     * IOAPIC set-up waits for the first sleep). */
    dev.regs[MMIO_STATUS / 4] =
        VIRTIO_S_ACK | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK | VIRTIO_S_DRIVER_OK;
    vq_kick(&dev, &vq[Q_RX]);
    return 0;
}

/* The network stack's own stack: the system-call path runs on a
 * 1.5 KiB stack (cpu_defs.h BOOT_STACK_SIZE), and a TCP segment's way
 * through the layers needs more. */
#define NET_STACK_SIZE (64u * 1024u)

long net_call(long (*fn)(void *), void *arg)
{
    static uint8_t *top;
    static bool inside;
    if (inside)
        return fn(arg);
    if (!top) {
        uint8_t *s = pages(NET_STACK_SIZE);
        if (!s)
            return -ENOMEM;
        top = s + NET_STACK_SIZE;
    }
    inside = true;
    long r;
    /* rbx keeps the old stack (callee-saved, so it survives the call); the
     * top is 16-byte aligned, as the ABI wants at a call. */
    __asm__ volatile("mov %%rsp, %%rbx\n\t"
                     "mov %[top], %%rsp\n\t"
                     "call *%[fn]\n\t"
                     "mov %%rbx, %%rsp"
                     : "=a"(r), "+D"(arg)
                     : [top] "r"(top), [fn] "r"(fn)
                     : "rbx", "rcx", "rdx", "rsi", "r8", "r9", "r10", "r11", "memory", "cc");
    inside = false;
    return r;
}

static long poll_call(void *arg)
{
    (void)arg;
    net_dev_poll();
    return 0;
}

static uint64_t timer_hook(void)
{
    if (state != 1)
        return UINT64_MAX;
    net_call(poll_call, NULL);
    return net_next_timer(&stack);
}

static void config_from_cmdline(void)
{
    const struct ember_boot_info *bi = ember_boot_info();
    const char *s = bi->cmdline;
    size_t n = s ? bi->cmdline_len : 0;
    bool found = false;

    for (size_t i = 0; i + 3 <= n; i++) {
        if ((i == 0 || s[i - 1] == ' ') && s[i] == 'i' && s[i + 1] == 'p' && s[i + 2] == '=') {
            char word[256];
            size_t k = 0;
            while (i + k < n && s[i + k] != ' ' && k < sizeof(word) - 1) {
                word[k] = s[i + k];
                k++;
            }
            word[k] = '\0';
            if (net_config_parse_ip(word, &config) == 0)
                found = true;
            else
                ember_console_puts("ember: net: ignoring a malformed ip= argument\n");
            break;
        }
    }
    if (!found)
        config.dhcp = true;
    nif.addr = config.addr;
    nif.netmask = config.netmask;
    nif.gateway = config.gateway;
    nif.dns[0] = config.dns[0];
    nif.dns[1] = config.dns[1];
}

int net_dev_start(void)
{
    if (state == 0) {
        int r = start();
        state = r ? r : 1;
        if (r && r != -ENODEV)
            vdev_reset(&dev);
        if (state == 1) {
            net_stack_init(&stack, &nif);
            config_from_cmdline();
            ember_wait_timer_hook = timer_hook;
        }
    }
    return state == 1 ? 0 : state;
}

struct net_stack *net_dev_stack(void)
{
    return &stack;
}

const struct net_config *net_dev_config(void)
{
    return &config;
}

void net_dev_flush(void)
{
    if (state == 1)
        vq_kick(&dev, &vq[Q_TX]);
}

/* One packet starting in buffer buf of length len (the device's count,
 * header included). */
static void rx_packet(uint8_t *buf, uint32_t len)
{
    if (len < HDR || len > rx_buf) {
        stack.stats.rx_drop_bad++;
        rx_give(buf);
        return;
    }
    struct vnet_hdr h;
    sdk_memcpy(&h, buf, HDR);
    unsigned nbufs = mrg ? h.num_buffers : 1;
    uint8_t *frame = buf + HDR;
    uint32_t flen = len - HDR;
    bool ok = true;
    if (nbufs > 1) {
        /* The rest of the packet is in the next used buffers (§5.1.6.4). */
        if (nbufs > SCRATCH / RX_BUF + 1)
            ok = false;
        if (ok)
            sdk_memcpy(scratch, frame, flen);
        rx_give(buf);
        for (unsigned i = 1; i < nbufs; i++) {
            uint32_t l;
            uint8_t *b = vq_get_used(&vq[Q_RX], &l);
            if (!b) {
                ok = false; /* a device bug: what there is is dropped */
                break;
            }
            if (ok && l <= rx_buf && flen + l <= SCRATCH) {
                sdk_memcpy(scratch + flen, b, l);
                flen += l;
            } else {
                ok = false;
            }
            rx_give(b);
        }
        if (ok)
            net_input(&stack, scratch, flen,
                      (h.flags & (VNET_F_NEEDS_CSUM | VNET_F_DATA_VALID)) ? NET_RX_CSUM_OK : 0);
        else
            stack.stats.rx_drop_bad++;
        return;
    }
    if (nbufs == 0)
        stack.stats.rx_drop_bad++;
    else
        net_input(&stack, frame, flen,
                  (h.flags & (VNET_F_NEEDS_CSUM | VNET_F_DATA_VALID)) ? NET_RX_CSUM_OK : 0);
    rx_give(buf);
}

void net_dev_poll(void)
{
    static bool busy;
    if (state != 1 || busy)
        return;
    busy = true; /* the wait hook may run inside a stack call */
    vdev_irq_take(&dev);
    bool gave = false;
    net_rx_begin(&stack);
    for (unsigned n = 0; n < RX_BATCH && vq_has_used(&vq[Q_RX]); n++) {
        uint32_t len;
        uint8_t *buf = vq_get_used(&vq[Q_RX], &len);
        if (!buf)
            break;
        rx_packet(buf, len);
        gave = true;
    }
    net_rx_end(&stack); /* the ACKs of this pass, one per connection */
    /* Buffers go back at once, but the device hears of them only in
     * batches of a quarter of the ring: it has the rest meanwhile, and a
     * device that ran dry used all of them, so this pass gave back at
     * least that many. One exit per 64 packets instead of one each. */
    if (gave && rx_unkicked >= rx_bufs / 4) {
        vq_kick(&dev, &vq[Q_RX]);
        rx_unkicked = 0;
    }
    if (vq_has_used(&vq[Q_TX])) {
        tx_reclaim();
        net_tcp_resume(&stack);
    }
    if (net_next_timer(&stack) <= ember_monotonic_ns() || net_loopback_pending(&stack))
        net_timers(&stack);
    vq_kick(&dev, &vq[Q_TX]);
    busy = false;
}

static void irq_route(void)
{
    if (!irq_routed && ember_irq_attach(dev.gsi) == 0)
        irq_routed = true;
}

static void arm(void *arg)
{
    (void)arg;
    irq_route();
    vq_intr_on(&vq[Q_RX]);
    vq_intr_on(&vq[Q_TX]);
}

struct wait_ctx {
    bool (*ready)(void *);
    void *arg;
};

static bool wait_ready(void *a)
{
    struct wait_ctx *w = a;
    net_dev_poll();
    return w->ready(w->arg);
}

bool net_dev_wait(bool (*ready)(void *), void *arg, uint64_t deadline_ns)
{
    struct wait_ctx w = {ready, arg};
    net_dev_poll();
    for (;;) {
        if (ready(arg))
            return true;
        uint64_t now = ember_monotonic_ns();
        if (deadline_ns <= now)
            return false;
        uint64_t t = deadline_ns == UINT64_MAX ? EMBER_WAIT_FOREVER : deadline_ns - now;
        ember_wait_armed(wait_ready, state == 1 ? arm : NULL, &w, t);
        if (state == 1 && vq[Q_RX].intr_on) {
            vq_intr_off(&vq[Q_RX]);
            vq_intr_off(&vq[Q_TX]);
        }
        net_dev_poll();
    }
}

void net_dev_arm(bool on)
{
    if (state != 1)
        return;
    if (on) {
        irq_route();
        vq_intr_on(&vq[Q_RX]);
        vq_intr_on(&vq[Q_TX]);
    } else if (vq[Q_RX].intr_on) {
        vq_intr_off(&vq[Q_RX]);
        vq_intr_off(&vq[Q_TX]);
    }
}
