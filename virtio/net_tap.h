/* net_tap.h: the host side of virtio-net, a Linux tap device.
 *
 * The tap is opened with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR: every frame read
 * or written carries the 12-byte struct virtio_net_hdr_v1 (TUNSETVNETHDRSZ),
 * the same header the guest puts in front of its frames (virtio 1.2 §5.1.6),
 * so checksum and segmentation offloads pass through unchanged: a guest that
 * hands over one 64 KiB TCP segment has it cut up by the host kernel, and the
 * host kernel hands the guest 64 KiB segments when the guest said it can take
 * them (TUNSETOFFLOAD). The descriptor is non-blocking; the device reads and
 * writes it on the main loop.
 */
#ifndef EMBER_VIRTIO_NET_TAP_H
#define EMBER_VIRTIO_NET_TAP_H

#include <stddef.h>
#include <stdint.h>

/* Size of the header before every frame (struct virtio_net_hdr_v1). */
#define NET_TAP_VNET_HDR 12u

/* Opens the existing or new tap `ifname` (at most IFNAMSIZ - 1 bytes), with
 * no offloads enabled yet. Returns the descriptor, or -1 with err naming
 * the device and the reason. *mtu gets the interface's MTU (1500 if it
 * cannot be read). */
int net_tap_open(const char *ifname, uint32_t *mtu, char *err, size_t errlen);
/* Tells the tap what the guest accepts on receive, from the negotiated
 * virtio-net feature bits (GUEST_CSUM, GUEST_TSO4/6, GUEST_ECN). Returns 0
 * or -errno. */
int net_tap_set_offload(int fd, uint64_t guest_features);

#endif
