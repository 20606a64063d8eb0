/* net_tap.c: opening a tap with virtio-net headers and setting its offloads
 * (see net_tap.h). */
#include "virtio/net_tap.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/if_tun.h>
#include <linux/virtio_net.h>

_Static_assert(sizeof(struct virtio_net_hdr_v1) == NET_TAP_VNET_HDR, "virtio 1.2 §5.1.6");

static uint32_t read_mtu(const char *ifname)
{
    struct ifreq ifr;
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    uint32_t mtu = 1500;

    if (s < 0)
        return mtu;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
    if (ioctl(s, SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu >= 68 && ifr.ifr_mtu <= 65535)
        mtu = (uint32_t)ifr.ifr_mtu;
    close(s);
    return mtu;
}

int net_tap_open(const char *ifname, uint32_t *mtu, char *err, size_t errlen)
{
    struct ifreq ifr;
    int hdr = NET_TAP_VNET_HDR, fd;

    if (!ifname[0] || strlen(ifname) >= IFNAMSIZ) {
        snprintf(err, errlen, "tap \"%s\": name must be 1 to %d characters", ifname, IFNAMSIZ - 1);
        return -1;
    }
    fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "tap %s: /dev/net/tun: %s", ifname, strerror(errno));
        return -1;
    }
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
        snprintf(err, errlen, "tap %s: TUNSETIFF: %s", ifname, strerror(errno));
        close(fd);
        return -1;
    }
    /* virtio 1.2 §5.1.6: with VERSION_1 the header always has num_buffers. */
    if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) != 0) {
        snprintf(err, errlen, "tap %s: TUNSETVNETHDRSZ: %s", ifname, strerror(errno));
        close(fd);
        return -1;
    }
    /* Until the guest has negotiated, it gets only complete, checksummed
     * frames. */
    if (net_tap_set_offload(fd, 0) != 0) {
        snprintf(err, errlen, "tap %s: TUNSETOFFLOAD: %s", ifname, strerror(errno));
        close(fd);
        return -1;
    }
    *mtu = read_mtu(ifname);
    return fd;
}

int net_tap_set_offload(int fd, uint64_t f)
{
    unsigned flags = 0;

    /* TUN_F_* describe what the reader of the tap (the guest) accepts. The
     * kernel wants CSUM for any TSO (a segment's checksum is partial). */
    if (f & (1ull << VIRTIO_NET_F_GUEST_CSUM)) {
        flags |= TUN_F_CSUM;
        if (f & (1ull << VIRTIO_NET_F_GUEST_TSO4))
            flags |= TUN_F_TSO4;
        if (f & (1ull << VIRTIO_NET_F_GUEST_TSO6))
            flags |= TUN_F_TSO6;
        if ((f & (1ull << VIRTIO_NET_F_GUEST_ECN)) && (flags & (TUN_F_TSO4 | TUN_F_TSO6)))
            flags |= TUN_F_TSO_ECN;
    }
    return ioctl(fd, TUNSETOFFLOAD, flags) == 0 ? 0 : -errno;
}
