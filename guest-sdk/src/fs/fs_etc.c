/* fs_etc.c: the files the SDK synthesizes in /etc where the root image has
 * none: today /etc/resolv.conf, the DNS servers of the network interface
 * (ip='s DNS fields, or the DHCP lease's: ember_net_resolv_conf()), which
 * musl's resolver reads before every getaddrinfo() by name.
 *
 * The image wins: fs_vfs.c falls back to these nodes only when a lookup in
 * the image found nothing ("/etc" itself when the image has no /etc, and
 * "resolv.conf" in the image's /etc when it lacks one), and only in a VM
 * with a network device. Read-only (EROFS to writes); the text is made at
 * each read, so a renewed lease's servers show at the next open.
 *
 * A lookup never starts the network: only reading the file (or its size)
 * does, and that waits for a DHCP lease when ip= gave no address. So a
 * program probing /etc/localtime in a VM with a network device does not
 * bring the interface up.
 */
#include <errno.h>
#include <sys/stat.h>

#include <ember/net.h>

#include "drivers/virtio.h"
#include "fs/fs_vfs.h"
#include "sdk.h"

#define RESOLV_MAX 128u /* two "nameserver A.B.C.D\n" lines fit */

static bool is_resolv(const char *name, size_t len)
{
    static const char n[] = "resolv.conf";
    if (len != sizeof(n) - 1)
        return false;
    for (size_t i = 0; i < len; i++)
        if (name[i] != n[i])
            return false;
    return true;
}

/* The VM has a virtio-net device (found in the device list, not set up). */
static bool present(void)
{
    static int has = -1;
    if (has < 0) {
        struct ember_device e;
        has = vdev_find(VIRTIO_ID_NET, 0, &e) == 0;
    }
    return has == 1;
}

int fs_etc_fallback(bool root, bool image_etc, const char *name, size_t len, uint64_t *out)
{
    if (root && len == 3 && name[0] == 'e' && name[1] == 't' && name[2] == 'c' && present()) {
        *out = FS_ETC_DIR;
        return 0;
    }
    if (image_etc && is_resolv(name, len) && present()) {
        *out = FS_ETC_RESOLV;
        return 0;
    }
    return -ENOENT;
}

static int etc_lookup(uint64_t dir, const char *name, size_t len, uint64_t *out)
{
    if (dir != FS_ETC_DIR)
        return -ENOTDIR;
    if (is_resolv(name, len)) {
        *out = FS_ETC_RESOLV;
        return 0;
    }
    return -ENOENT;
}

static size_t resolv_text(char *buf)
{
    size_t n = ember_net_resolv_conf(buf, RESOLV_MAX);
    return n < RESOLV_MAX - 1 ? n : RESOLV_MAX - 1;
}

static int etc_stat(uint64_t id, struct stat *st)
{
    st->st_ino = id + 1;
    st->st_mtim.tv_sec = st->st_atim.tv_sec = st->st_ctim.tv_sec =
        (time_t)(ember_bi.realtime_ns / 1000000000u);
    if (id == FS_ETC_DIR) {
        st->st_mode = S_IFDIR | 0555;
        st->st_nlink = 2;
        return 0;
    }
    char buf[RESOLV_MAX];
    st->st_mode = S_IFREG | 0444;
    st->st_size = (off_t)resolv_text(buf);
    return 0;
}

static long etc_pread(uint64_t id, void *buf, size_t len, uint64_t off)
{
    if (id == FS_ETC_DIR)
        return -EISDIR;
    char text[RESOLV_MAX];
    size_t n = resolv_text(text);
    if (off >= n)
        return 0;
    size_t k = n - (size_t)off < len ? n - (size_t)off : len;
    sdk_memcpy(buf, text + off, k);
    return (long)k;
}

static int etc_readdir(uint64_t dir, uint64_t *cookie, vfs_emit_fn emit, void *arg)
{
    static const char *const names[] = {".", "..", "resolv.conf"};
    static const size_t lens[] = {1, 2, 11};
    if (dir != FS_ETC_DIR)
        return -ENOTDIR;
    for (; *cookie < 3; (*cookie)++) {
        uint64_t ino = *cookie == 2 ? FS_ETC_RESOLV + 1 : FS_ETC_DIR + 1;
        if (emit(arg, names[*cookie], lens[*cookie], ino, *cookie == 2 ? 8 : 4, *cookie + 1))
            return 0;
    }
    return 0;
}

const struct vfs_fs fs_etc = {
    .name = "etc",
    .dev = 6,
    .lookup = etc_lookup,
    .stat = etc_stat,
    .pread = etc_pread,
    .readdir = etc_readdir,
};
