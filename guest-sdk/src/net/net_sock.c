/* net_sock.c: AF_INET sockets (SOCK_STREAM = TCP, SOCK_DGRAM = UDP) over
 * the SDK's stack, for the socket system calls (sys_socket.c hands every
 * call on an AF_INET fd here) and the fd operations (read, write, poll,
 * close ...).
 *
 * Addresses, lengths, iovecs and option values from the application are
 * checked (user_range_ok) and copied with Linux's EFAULT/EINVAL rules.
 * Blocking calls wait in net_dev_wait (spin, then sleep until an interrupt
 * or the stack's next timer), bounded by SO_RCVTIMEO/SO_SNDTIMEO; O_NONBLOCK
 * and MSG_DONTWAIT make them return EAGAIN (EINPROGRESS for connect). Every
 * call ends with net_dev_flush(): what it queued reaches the device with
 * one notification.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>

#include <ember/net.h>

#include "net/net_dev.h"
#include "net/net_dhcp.h"
#include "net/net_sock.h"
#include "posix/sys_fd.h"
#include "sdk.h"

#define NO_DEADLINE UINT64_MAX

struct nsock {
    int type; /* SOCK_STREAM, SOCK_DGRAM */
    struct tcp_pcb *t;
    struct udp_pcb *u;
    bool nonblock;
    bool reuse, keepalive, nodelay, broadcast;
    bool linger0;
    uint64_t rcvtimeo_ns, sndtimeo_ns; /* 0: forever */
    uint32_t rcvbuf, sndbuf;
    uint32_t bind_addr; /* TCP: bound before the pcb listens or connects */
    uint16_t bind_port;
};

static const struct fd_ops inet_ops;

bool net_sock_is(int fd)
{
    struct fd_entry *e = fd_get(fd);
    return e && e->ops == &inet_ops;
}

static struct nsock *sock_of(int fd, long *err)
{
    struct fd_entry *e = fd_get(fd);
    if (!e) {
        *err = -EBADF;
        return NULL;
    }
    if (e->ops != &inet_ops) {
        *err = -ENOTSOCK;
        return NULL;
    }
    struct nsock *s = e->priv;
    s->nonblock = (e->flags & O_NONBLOCK) != 0;
    return s;
}

static struct nsock *nsock_new(int type)
{
    struct nsock *s = net_zalloc(sizeof(*s));
    if (!s)
        return NULL;
    s->type = type;
    struct net_stack *ns = net_dev_stack();
    if (type == SOCK_STREAM) {
        if (!(s->t = tcp_new(ns))) {
            net_free(s, sizeof(*s));
            return NULL;
        }
    } else if (!(s->u = udp_new(ns))) {
        net_free(s, sizeof(*s));
        return NULL;
    }
    return s;
}

static long new_fd(struct nsock *s, int flags)
{
    return fd_alloc_flags(&inet_ops, s, O_RDWR | (flags & SOCK_NONBLOCK ? O_NONBLOCK : 0),
                          flags & SOCK_CLOEXEC ? FD_CLOEXEC : 0);
}

static void nsock_close(struct nsock *s)
{
    if (s->t)
        tcp_close(s->t, s->linger0);
    if (s->u)
        udp_close(s->u);
    net_free(s, sizeof(*s));
}

/* The first lease is waited for at most this long; after it the client
 * goes on trying in the background (its timers run whenever the guest
 * waits). 30 s covers a DISCOVER and three retransmissions (RFC 2131 §4.1:
 * 4, 8, 16 s). */
#define DHCP_WAIT_NS (30ull * 1000000000ull)

static bool dhcp_ready(void *a)
{
    (void)a;
    return net_dhcp_bound(net_dev_stack());
}

/* The device, and when ip= gave no address a DHCP lease: the first
 * socket (or the first read of /etc/resolv.conf) waits for it, as Linux's
 * ip=dhcp holds the boot until the interface is configured. */
static int net_up(void)
{
    static bool dhcp_tried;
    int r = net_dev_start();
    if (r || dhcp_tried)
        return r;
    dhcp_tried = true;
    const struct net_config *c = net_dev_config();
    if (!c->dhcp)
        return 0;
    if (net_dhcp_start(net_dev_stack(), c->hostname) != 0) {
        ember_console_puts("ember: net: no memory for the DHCP client\n");
        return 0;
    }
    net_dev_flush();
    if (!net_dev_wait(dhcp_ready, NULL, ember_monotonic_ns() + DHCP_WAIT_NS))
        ember_console_puts("ember: net: no DHCP lease yet; going on without an address\n");
    return 0;
}

static long sys_socket_inner(int type, int protocol)
{
    int kind = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC | 0xf))
        return -EINVAL;
    if (kind == SOCK_STREAM) {
        if (protocol && protocol != IPPROTO_TCP)
            return -EPROTONOSUPPORT;
    } else if (kind == SOCK_DGRAM) {
        if (protocol && protocol != IPPROTO_UDP)
            return -EPROTONOSUPPORT;
    } else {
        return kind == SOCK_RAW ? -EPERM : -ESOCKTNOSUPPORT;
    }
    int r = net_up();
    if (r)
        return r == -ENODEV ? -EAFNOSUPPORT : r; /* no network device: no AF_INET */
    struct nsock *s = nsock_new(kind);
    if (!s)
        return -ENOMEM;
    long fd = new_fd(s, type);
    if (fd < 0)
        nsock_close(s);
    return fd;
}

/* ---- addresses ---------------------------------------------------------------------- */

static long addr_in(uintptr_t p, uint64_t len, uint32_t *addr, uint16_t *port, bool unspec_ok)
{
    struct sockaddr_in a;
    if (len > 128)
        return -EINVAL;
    if (len >= sizeof(sa_family_t) && !user_range_ok(p, len))
        return -EFAULT;
    if (len >= sizeof(sa_family_t) && unspec_ok && *(const sa_family_t *)p == AF_UNSPEC) {
        *addr = 0;
        *port = 0;
        return 1; /* connect(AF_UNSPEC): dissolve the association */
    }
    if (len < sizeof(a))
        return -EINVAL;
    sdk_memcpy(&a, (const void *)p, sizeof(a));
    if (a.sin_family != AF_INET)
        return -EAFNOSUPPORT;
    *addr = a.sin_addr.s_addr;
    *port = a.sin_port;
    return 0;
}

static long addr_out(uintptr_t p, uintptr_t lenp, uint32_t addr, uint16_t port)
{
    struct sockaddr_in a;
    if (!p)
        return 0;
    if (!user_range_ok(lenp, sizeof(socklen_t)))
        return -EFAULT;
    int len = *(const int *)lenp;
    if (len < 0)
        return -EINVAL;
    sdk_memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = addr;
    a.sin_port = port;
    uint32_t n = (uint32_t)len < sizeof(a) ? (uint32_t)len : sizeof(a);
    if (n && !user_range_ok(p, n))
        return -EFAULT;
    sdk_memcpy((void *)p, &a, n);
    *(socklen_t *)lenp = sizeof(a);
    return 0;
}

static long iov_check(const struct iovec *iov, uint64_t n)
{
    if (n > UIO_MAXIOV)
        return -EINVAL;
    if (n && !user_range_ok((uintptr_t)iov, n * sizeof(*iov)))
        return -EFAULT;
    for (uint64_t i = 0; i < n; i++)
        if (iov[i].iov_len && !user_range_ok((uintptr_t)iov[i].iov_base, iov[i].iov_len))
            return -EFAULT;
    return 0;
}

static uint64_t deadline(uint64_t timeo_ns)
{
    return timeo_ns ? ember_monotonic_ns() + timeo_ns : NO_DEADLINE;
}

/* ---- waiting ---------------------------------------------------------------------------- */

struct want {
    struct nsock *s;
    unsigned events;
};

static unsigned sock_events(struct nsock *s)
{
    if (s->t)
        return tcp_poll(s->t);
    unsigned ev = POLLOUT;
    if (udp_readable(s->u))
        ev |= POLLIN;
    if (s->u->err)
        ev |= POLLERR;
    return ev;
}

static bool want_ready(void *a)
{
    struct want *w = a;
    return (sock_events(w->s) & (w->events | POLLERR | POLLHUP)) != 0;
}

static bool wait_for(struct nsock *s, unsigned events, uint64_t dl)
{
    struct want w = {s, events};
    net_dev_flush();
    return net_dev_wait(want_ready, &w, dl);
}

/* ---- the calls ----------------------------------------------------------------------------- */

static long do_bind(struct nsock *s, uint32_t addr, uint16_t port)
{
    struct net_stack *ns = net_dev_stack();
    if (addr && !net_ip_is_local(ns, addr) && !(s->u && addr == 0xffffffffu))
        return -EADDRNOTAVAIL;
    if (s->u) {
        s->u->reuse = s->reuse;
        return udp_bind(s->u, addr, port);
    }
    s->t->reuse = s->reuse;
    return tcp_bind(s->t, addr, port);
}

struct conn_wait {
    struct tcp_pcb *t;
};

static bool connected(void *a)
{
    struct conn_wait *c = a;
    return c->t->state != TCPS_SYN_SENT && c->t->state != TCPS_SYN_RCVD;
}

static void apply_opts(struct nsock *s)
{
    struct tcp_pcb *t = s->t;
    if (!t)
        return;
    t->nodelay = s->nodelay;
    t->reuse = s->reuse;
    if (s->rcvbuf)
        tcp_set_bufsize(t, true, s->rcvbuf);
    if (s->sndbuf)
        tcp_set_bufsize(t, false, s->sndbuf);
}

static long do_connect(struct nsock *s, uint32_t addr, uint16_t port, bool unspec)
{
    if (s->u) {
        if (unspec)
            return udp_connect(s->u, 0, 0);
        return udp_connect(s->u, addr == 0 ? net_htonl(0x7f000001) : addr, port);
    }
    if (unspec)
        return -EINVAL;
    struct tcp_pcb *t = s->t;
    if (t->state == TCPS_SYN_SENT)
        return s->nonblock ? -EALREADY : -EALREADY;
    if (t->state != TCPS_CLOSED || t->rport) {
        if (t->state == TCPS_CLOSED && t->err) {
            int e = t->err;
            t->err = 0;
            return -e;
        }
        return t->state == TCPS_LISTEN ? -EINVAL : -EISCONN;
    }
    apply_opts(s);
    long r = tcp_connect(t, addr == 0 ? net_htonl(0x7f000001) : addr, port);
    if (r)
        return r;
    if (s->keepalive)
        t->keepalive = true;
    if (s->nonblock) {
        net_dev_flush();
        return -EINPROGRESS;
    }
    struct conn_wait c = {t};
    net_dev_flush();
    if (!net_dev_wait(connected, &c, deadline(s->sndtimeo_ns)))
        return -EINPROGRESS; /* Linux: the timeout leaves the connect going */
    if (t->state == TCPS_CLOSED) {
        int e = t->err ? t->err : ECONNREFUSED;
        t->err = 0;
        return -e;
    }
    if (s->keepalive)
        tcp_set_keepalive(t, true);
    return 0;
}

static long do_listen(struct nsock *s, int backlog)
{
    if (!s->t)
        return -EOPNOTSUPP;
    if (s->t->state != TCPS_CLOSED && s->t->state != TCPS_LISTEN)
        return -EINVAL;
    apply_opts(s);
    s->t->keepalive = s->keepalive;
    return tcp_listen(s->t, backlog);
}

static long do_accept(struct nsock *s, uintptr_t addr, uintptr_t lenp, int flags)
{
    if (!s->t)
        return -EOPNOTSUPP;
    if (s->t->state != TCPS_LISTEN)
        return -EINVAL;
    if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC))
        return -EINVAL;
    if (addr && !user_range_ok(lenp, sizeof(socklen_t)))
        return -EFAULT;
    struct tcp_pcb *c;
    uint64_t dl = deadline(s->rcvtimeo_ns);
    while (!(c = tcp_accept(s->t))) {
        if (s->nonblock)
            return -EAGAIN;
        if (!wait_for(s, POLLIN, dl))
            return -EAGAIN;
    }
    struct nsock *n = net_zalloc(sizeof(*n));
    if (!n) {
        tcp_close(c, true);
        return -ENOMEM;
    }
    n->type = SOCK_STREAM;
    n->t = c;
    n->nodelay = s->nodelay;
    n->keepalive = s->keepalive;
    n->rcvtimeo_ns = s->rcvtimeo_ns;
    n->sndtimeo_ns = s->sndtimeo_ns;
    long fd = new_fd(n, flags);
    if (fd < 0) {
        nsock_close(n);
        return fd;
    }
    long r = addr_out(addr, lenp, c->raddr, c->rport);
    if (r)
        return r; /* Linux too keeps the new fd then */
    return fd;
}

static long do_send(struct nsock *s, const struct iovec *iov, uint64_t n, int flags, uint32_t addr,
                    uint16_t port, bool has_addr)
{
    bool nb = s->nonblock || (flags & MSG_DONTWAIT);
    if (s->u) {
        if (s->u->err) {
            int e = s->u->err;
            s->u->err = 0;
            return -e;
        }
        s->u->broadcast = s->broadcast;
        if (has_addr && addr == 0)
            addr = net_htonl(0x7f000001); /* INADDR_ANY as a destination: this host */
        long r = udp_sendto(s->u, has_addr ? addr : 0, port, iov, (int)n);
        net_dev_flush();
        return r;
    }
    if (has_addr && s->t->state != TCPS_CLOSED)
        return -EISCONN;
    uint64_t total = 0;
    for (uint64_t i = 0; i < n; i++)
        total += iov[i].iov_len;
    uint64_t done = 0;
    uint64_t dl = deadline(s->sndtimeo_ns);
    struct iovec cur[UIO_MAXIOV > 64 ? 64 : UIO_MAXIOV];
    while (done < total || total == 0) {
        /* The iovec from `done` on (in chunks of 64 entries). */
        uint64_t skip = done;
        unsigned k = 0, i = 0;
        for (; i < n && skip >= iov[i].iov_len; i++)
            skip -= iov[i].iov_len;
        for (; i < n && k < 64; i++, k++) {
            cur[k].iov_base = (uint8_t *)iov[i].iov_base + skip;
            cur[k].iov_len = iov[i].iov_len - skip;
            skip = 0;
        }
        long r = tcp_send(s->t, cur, (int)k, (flags & MSG_MORE) != 0);
        if (r > 0) {
            done += (uint64_t)r;
            continue;
        }
        if (total == 0)
            return r == -EAGAIN ? 0 : r;
        if (r != -EAGAIN)
            return done ? (long)done : r;
        if (nb)
            return done ? (long)done : -EAGAIN;
        if (!wait_for(s, POLLOUT, dl))
            return done ? (long)done : -EAGAIN;
    }
    net_dev_flush();
    return (long)done;
}

static long do_recv(struct nsock *s, const struct iovec *iov, uint64_t n, int flags, uint32_t *addr,
                    uint16_t *port, uint32_t *msg_flags)
{
    bool nb = s->nonblock || (flags & MSG_DONTWAIT);
    bool peek = (flags & MSG_PEEK) != 0;
    uint64_t dl = deadline(s->rcvtimeo_ns);
    net_dev_poll();
    if (s->u) {
        for (;;) {
            uint32_t full;
            long r = udp_recvfrom(s->u, iov, (int)n, peek, addr, port, &full);
            if (r >= 0) {
                if ((uint32_t)r < full && msg_flags)
                    *msg_flags |= MSG_TRUNC;
                net_dev_flush();
                return (flags & MSG_TRUNC) ? (long)full : r;
            }
            if (s->u->err) {
                int e = s->u->err;
                s->u->err = 0;
                return -e;
            }
            if (nb || !wait_for(s, POLLIN, dl))
                return -EAGAIN;
        }
    }
    uint64_t total = 0;
    for (uint64_t i = 0; i < n; i++)
        total += iov[i].iov_len;
    uint64_t done = 0;
    struct iovec cur[64];
    for (;;) {
        uint64_t skip = done;
        unsigned k = 0, i = 0;
        for (; i < n && skip >= iov[i].iov_len; i++)
            skip -= iov[i].iov_len;
        for (; i < n && k < 64; i++, k++) {
            cur[k].iov_base = (uint8_t *)iov[i].iov_base + skip;
            cur[k].iov_len = iov[i].iov_len - skip;
            skip = 0;
        }
        long r = tcp_recv(s->t, cur, (int)k, peek);
        if (r > 0) {
            done += (uint64_t)r;
            if (!(flags & MSG_WAITALL) || peek || done >= total)
                break;
            continue;
        }
        if (r == 0 || r != -EAGAIN) {
            if (done)
                break;
            net_dev_flush();
            return r;
        }
        if (nb || !wait_for(s, POLLIN, dl)) {
            if (done)
                break;
            net_dev_flush();
            return -EAGAIN;
        }
    }
    net_dev_flush();
    if (addr) {
        *addr = 0;
        *port = 0;
    }
    return (long)done;
}

static long do_shutdown(struct nsock *s, int how)
{
    if (how < SHUT_RD || how > SHUT_RDWR)
        return -EINVAL;
    if (s->u)
        return s->u->raddr ? 0 : -ENOTCONN;
    if (s->t->state == TCPS_CLOSED || s->t->state == TCPS_SYN_SENT)
        return -ENOTCONN;
    long r = tcp_shutdown(s->t, how != SHUT_WR, how != SHUT_RD);
    net_dev_flush();
    return r;
}

static long do_name(struct nsock *s, uintptr_t addr, uintptr_t lenp, bool peer)
{
    uint32_t a;
    uint16_t p;
    if (s->t) {
        if (peer && (s->t->state == TCPS_CLOSED || s->t->state == TCPS_LISTEN ||
                     s->t->state == TCPS_SYN_SENT))
            return -ENOTCONN;
        a = peer ? s->t->raddr : s->t->laddr;
        p = peer ? s->t->rport : s->t->lport;
    } else {
        if (peer && !s->u->raddr)
            return -ENOTCONN;
        a = peer ? s->u->raddr : s->u->laddr;
        p = peer ? s->u->rport : s->u->lport;
    }
    if (!addr)
        return -EFAULT;
    return addr_out(addr, lenp, a, p);
}

/* ---- options ------------------------------------------------------------------------------------
 */

static long set_opt(struct nsock *s, int level, int name, const uint8_t *v, uint32_t len)
{
    int iv = 0;
    if (len >= sizeof(int))
        sdk_memcpy(&iv, v, sizeof(int));
    if (level == SOL_SOCKET) {
        switch (name) {
        case SO_RCVTIMEO:
        case SO_SNDTIMEO: {
            struct timeval tv;
            if (len < sizeof(tv))
                return -EINVAL;
            sdk_memcpy(&tv, v, sizeof(tv));
            if (tv.tv_usec < 0 || tv.tv_usec >= 1000000)
                return -EDOM;
            uint64_t ns = tv.tv_sec < 0 ? 0
                                        : (uint64_t)tv.tv_sec * 1000000000ull +
                                              (uint64_t)tv.tv_usec * 1000ull;
            if (name == SO_RCVTIMEO)
                s->rcvtimeo_ns = ns;
            else
                s->sndtimeo_ns = ns;
            return 0;
        }
        case SO_LINGER: {
            struct linger l;
            if (len < sizeof(l))
                return -EINVAL;
            sdk_memcpy(&l, v, sizeof(l));
            s->linger0 = l.l_onoff && l.l_linger == 0;
            return 0;
        }
        default:
            break;
        }
        if (len < sizeof(int))
            return -EINVAL;
        switch (name) {
        case SO_REUSEADDR:
        case SO_REUSEPORT:
            s->reuse = iv != 0;
            if (s->u)
                s->u->reuse = s->reuse;
            return 0;
        case SO_KEEPALIVE:
            s->keepalive = iv != 0;
            if (s->t)
                tcp_set_keepalive(s->t, s->keepalive);
            return 0;
        case SO_BROADCAST:
            s->broadcast = iv != 0;
            return 0;
        case SO_RCVBUF:
        case SO_SNDBUF:
            if (iv < 0)
                iv = 0;
            /* Linux doubles the value asked for (socket(7)). */
            if (name == SO_RCVBUF) {
                s->rcvbuf = (uint32_t)iv > (1u << 30) ? (1u << 30) : (uint32_t)iv * 2;
                if (s->u)
                    s->u->rcvbuf = s->rcvbuf < 2048 ? 2048 : s->rcvbuf;
                else
                    tcp_set_bufsize(s->t, true, s->rcvbuf);
            } else {
                s->sndbuf = (uint32_t)iv > (1u << 30) ? (1u << 30) : (uint32_t)iv * 2;
                if (s->t)
                    tcp_set_bufsize(s->t, false, s->sndbuf);
            }
            return 0;
        case SO_OOBINLINE:
        case SO_PRIORITY:
        case SO_DONTROUTE:
        case SO_RCVLOWAT:
            return 0; /* accepted, without effect */
        default:
            return -ENOPROTOOPT;
        }
    }
    if (level == IPPROTO_TCP) {
        if (!s->t)
            return -ENOPROTOOPT;
        if (len < sizeof(int))
            return -EINVAL;
        switch (name) {
        case TCP_NODELAY:
            s->nodelay = iv != 0;
            s->t->nodelay = s->nodelay;
            if (s->nodelay) {
                tcp_output(s->t);
                net_dev_flush();
            }
            return 0;
        case TCP_KEEPIDLE:
        case TCP_KEEPINTVL:
            if (iv < 1 || iv > 32767)
                return -EINVAL;
            if (name == TCP_KEEPIDLE)
                s->t->keep_idle_s = (uint32_t)iv;
            else
                s->t->keep_intvl_s = (uint32_t)iv;
            if (s->t->keepalive)
                tcp_set_keepalive(s->t, true);
            return 0;
        case TCP_KEEPCNT:
            if (iv < 1 || iv > 127)
                return -EINVAL;
            s->t->keep_cnt = (uint32_t)iv;
            return 0;
        case TCP_QUICKACK:
        case TCP_CORK:
        case TCP_MAXSEG:
            return 0;
        default:
            return -ENOPROTOOPT;
        }
    }
    if (level == IPPROTO_IP) {
        switch (name) {
        case IP_TOS:
        case IP_TTL:
        case IP_RECVERR:
            return 0;
        default:
            return -ENOPROTOOPT;
        }
    }
    return -ENOPROTOOPT;
}

static long get_opt(struct nsock *s, int level, int name, uint8_t *v, uint32_t *len)
{
    int iv;
    if (level == SOL_SOCKET) {
        switch (name) {
        case SO_RCVTIMEO:
        case SO_SNDTIMEO: {
            uint64_t ns = name == SO_RCVTIMEO ? s->rcvtimeo_ns : s->sndtimeo_ns;
            struct timeval tv = {(time_t)(ns / 1000000000ull),
                                 (suseconds_t)(ns % 1000000000ull / 1000)};
            if (*len > sizeof(tv))
                *len = sizeof(tv);
            sdk_memcpy(v, &tv, *len);
            return 0;
        }
        case SO_LINGER: {
            struct linger l = {s->linger0, 0};
            if (*len > sizeof(l))
                *len = sizeof(l);
            sdk_memcpy(v, &l, *len);
            return 0;
        }
        case SO_TYPE:
            iv = s->type;
            break;
        case SO_DOMAIN:
            iv = AF_INET;
            break;
        case SO_PROTOCOL:
            iv = s->t ? IPPROTO_TCP : IPPROTO_UDP;
            break;
        case SO_ERROR:
            if (s->t) {
                iv = s->t->err;
                s->t->err = 0;
            } else {
                iv = s->u->err;
                s->u->err = 0;
            }
            break;
        case SO_REUSEADDR:
        case SO_REUSEPORT:
            iv = s->reuse;
            break;
        case SO_KEEPALIVE:
            iv = s->keepalive;
            break;
        case SO_BROADCAST:
            iv = s->broadcast;
            break;
        case SO_ACCEPTCONN:
            iv = s->t && s->t->state == TCPS_LISTEN;
            break;
        case SO_RCVBUF:
            iv = (int)(s->t ? (s->t->rbuf ? s->t->rcap : s->t->rcvbuf) : s->u->rcvbuf);
            break;
        case SO_SNDBUF:
            iv = (int)(s->t ? (s->t->sbuf ? s->t->scap : s->t->sndbuf) : 212992u);
            break;
        default:
            return -ENOPROTOOPT;
        }
    } else if (level == IPPROTO_TCP && s->t) {
        switch (name) {
        case TCP_NODELAY:
            iv = s->nodelay;
            break;
        case TCP_MAXSEG:
            iv = s->t->mss;
            break;
        case TCP_KEEPIDLE:
            iv = (int)s->t->keep_idle_s;
            break;
        case TCP_KEEPINTVL:
            iv = (int)s->t->keep_intvl_s;
            break;
        case TCP_KEEPCNT:
            iv = (int)s->t->keep_cnt;
            break;
        default:
            return -ENOPROTOOPT;
        }
    } else {
        return -ENOPROTOOPT;
    }
    if (*len > sizeof(iv))
        *len = sizeof(iv);
    sdk_memcpy(v, &iv, *len);
    return 0;
}

/* ---- system-call entry -------------------------------------------------------------------------
 */

static long sys_msg(struct nsock *s, struct msghdr *m, int flags, bool send)
{
    if (!user_range_ok((uintptr_t)m, sizeof(*m)))
        return -EFAULT;
    struct msghdr k = *m;
    if (k.msg_iovlen > UIO_MAXIOV)
        return -EMSGSIZE;
    long r = iov_check(k.msg_iov, k.msg_iovlen);
    if (r)
        return r;
    if (send) {
        uint32_t a = 0;
        uint16_t p = 0;
        bool has = k.msg_name && k.msg_namelen;
        if (has && (r = addr_in((uintptr_t)k.msg_name, k.msg_namelen, &a, &p, false)) != 0)
            return r;
        return do_send(s, k.msg_iov, k.msg_iovlen, flags, a, p, has);
    }
    uint32_t a = 0, mflags = 0;
    uint16_t p = 0;
    r = do_recv(s, k.msg_iov, k.msg_iovlen, flags, &a, &p, &mflags);
    if (r < 0)
        return r;
    if (k.msg_name && s->u) {
        socklen_t nl = k.msg_namelen;
        long e = addr_out((uintptr_t)k.msg_name, (uintptr_t)&nl, a, p);
        if (e)
            return e;
        m->msg_namelen = nl;
    } else {
        m->msg_namelen = 0;
    }
    m->msg_controllen = 0;
    m->msg_flags = (int)mflags;
    return r;
}

static long socketcall_inner(struct ember_syscall_frame *f)
{
    uint64_t a1 = f->rsi, a2 = f->rdx, a3 = f->r10, a4 = f->r8, a5 = f->r9;
    long err;
    struct nsock *s = sock_of((int)f->rdi, &err);
    uint32_t addr;
    uint16_t port;
    long r;

    if (!s)
        return err;
    net_dev_poll();
    switch (f->nr) {
    case SYS_bind:
        if ((r = addr_in(a1, a2, &addr, &port, false)) != 0)
            return r;
        return do_bind(s, addr, port);
    case SYS_connect:
        if ((r = addr_in(a1, a2, &addr, &port, true)) < 0)
            return r;
        return do_connect(s, addr, port, r == 1);
    case SYS_listen:
        return do_listen(s, (int)a1);
    case SYS_accept:
        return do_accept(s, a1, a2, 0);
    case SYS_accept4:
        return do_accept(s, a1, a2, (int)a3);
    case SYS_sendto: {
        struct iovec iov = {(void *)a1, a2};
        if ((r = iov_check(&iov, 1)) != 0)
            return r;
        bool has = a4 && a5;
        addr = 0;
        port = 0;
        if (has && (r = addr_in(a4, a5, &addr, &port, false)) != 0)
            return r;
        return do_send(s, &iov, 1, (int)a3, addr, port, has);
    }
    case SYS_recvfrom: {
        struct iovec iov = {(void *)a1, a2};
        if ((r = iov_check(&iov, 1)) != 0)
            return r;
        if (a4 && !user_range_ok(a5, sizeof(socklen_t)))
            return -EFAULT;
        r = do_recv(s, &iov, 1, (int)a3, &addr, &port, NULL);
        if (r >= 0 && a4) {
            if (s->u) {
                long e = addr_out(a4, a5, addr, port);
                if (e)
                    return e;
            } else {
                *(socklen_t *)a5 = 0;
            }
        }
        return r;
    }
    case SYS_sendmsg:
        return sys_msg(s, (struct msghdr *)a1, (int)a2, true);
    case SYS_recvmsg:
        return sys_msg(s, (struct msghdr *)a1, (int)a2, false);
    case SYS_shutdown:
        return do_shutdown(s, (int)a1);
    case SYS_getsockname:
        return do_name(s, a1, a2, false);
    case SYS_getpeername:
        return do_name(s, a1, a2, true);
    case SYS_setsockopt: {
        uint8_t buf[64];
        if ((int)a4 < 0)
            return -EINVAL;
        uint64_t len = a4 > sizeof(buf) ? sizeof(buf) : a4;
        if (len && !user_range_ok(a3, len))
            return -EFAULT;
        sdk_memcpy(buf, (const void *)a3, len);
        return set_opt(s, (int)a1, (int)a2, buf, (uint32_t)len);
    }
    case SYS_getsockopt: {
        uint8_t buf[64];
        if (!user_range_ok(a4, sizeof(socklen_t)))
            return -EFAULT;
        int len = *(const int *)a4;
        if (len < 0)
            return -EINVAL;
        uint32_t n = (uint32_t)len > sizeof(buf) ? sizeof(buf) : (uint32_t)len;
        if ((r = get_opt(s, (int)a1, (int)a2, buf, &n)) != 0)
            return r;
        if (n && !user_range_ok(a3, n))
            return -EFAULT;
        sdk_memcpy((void *)a3, buf, n);
        *(socklen_t *)a4 = n;
        return 0;
    }
    default:
        return -ENOSYS;
    }
}

/* ---- fd operations
 * ---------------------------------------------------------------------------------- */

static struct nsock *entry_sock(struct fd_entry *e)
{
    struct nsock *s = e->priv;
    s->nonblock = (e->flags & O_NONBLOCK) != 0;
    return s;
}

static long op_read(struct fd_entry *e, void *buf, size_t len)
{
    struct iovec iov = {buf, len};
    return do_recv(entry_sock(e), &iov, 1, 0, NULL, NULL, NULL);
}

static long op_write(struct fd_entry *e, const void *buf, size_t len)
{
    struct iovec iov = {(void *)buf, len};
    return do_send(entry_sock(e), &iov, 1, 0, 0, 0, false);
}

static long op_readv(struct fd_entry *e, const struct iovec *iov, int cnt)
{
    return do_recv(entry_sock(e), iov, (uint64_t)cnt, 0, NULL, NULL, NULL);
}

static long op_writev(struct fd_entry *e, const struct iovec *iov, int cnt)
{
    return do_send(entry_sock(e), iov, (uint64_t)cnt, 0, 0, 0, false);
}

static long op_fstat(struct fd_entry *e, struct stat *st)
{
    (void)e;
    sdk_memset(st, 0, sizeof(*st));
    st->st_mode = S_IFSOCK | 0777;
    st->st_nlink = 1;
    st->st_blksize = 4096;
    return 0;
}

static long op_ioctl(struct fd_entry *e, unsigned long req, uintptr_t arg)
{
    struct nsock *s = entry_sock(e);
    if (!user_range_ok(arg, sizeof(int)))
        return -EFAULT;
    switch (req) {
    case FIONBIO:
        e->flags = *(const int *)arg ? e->flags | O_NONBLOCK : e->flags & ~O_NONBLOCK;
        return 0;
    case FIONREAD:
        net_dev_poll();
        *(int *)arg = (int)(s->t ? tcp_inq(s->t) : udp_next_len(s->u));
        return 0;
    case TIOCOUTQ:
        *(int *)arg = (int)(s->t ? tcp_outq(s->t) : 0);
        return 0;
    default:
        return -ENOTTY;
    }
}

static int op_poll_ready(struct fd_entry *e)
{
    net_dev_poll();
    return (int)sock_events(e->priv);
}

static long op_shutdown(struct fd_entry *e, int how)
{
    return do_shutdown(entry_sock(e), how);
}

static void op_poll_arm(struct fd_entry *e, int on)
{
    (void)e;
    if (on)
        net_dev_flush();
    net_dev_arm(on != 0);
}

static long op_close(struct fd_entry *e)
{
    nsock_close(e->priv);
    net_dev_flush();
    return 0;
}

/* ---- entries, each on the stack's own stack (net_call) ------------------------------- */

struct call {
    struct fd_entry *e;
    const void *p;
    uint64_t n;
    int i;
    struct ember_syscall_frame *f;
};

static long c_socket(void *a)
{
    struct call *c = a;
    return sys_socket_inner(c->i, (int)c->n);
}

long net_sys_socket(int type, int protocol)
{
    struct call c = {.i = type, .n = (uint64_t)protocol};
    return net_call(c_socket, &c);
}

static long c_socketcall(void *a)
{
    return socketcall_inner(((struct call *)a)->f);
}

long net_sys_socketcall(struct ember_syscall_frame *f)
{
    struct call c = {.f = f};
    return net_call(c_socketcall, &c);
}

static long c_read(void *a)
{
    struct call *c = a;
    return op_read(c->e, (void *)c->p, c->n);
}
static long c_write(void *a)
{
    struct call *c = a;
    return op_write(c->e, c->p, c->n);
}
static long c_readv(void *a)
{
    struct call *c = a;
    return op_readv(c->e, c->p, c->i);
}
static long c_writev(void *a)
{
    struct call *c = a;
    return op_writev(c->e, c->p, c->i);
}
static long c_ioctl(void *a)
{
    struct call *c = a;
    return op_ioctl(c->e, c->n, (uintptr_t)c->p);
}
static long c_poll_ready(void *a)
{
    return op_poll_ready(((struct call *)a)->e);
}
static long c_shutdown(void *a)
{
    struct call *c = a;
    return op_shutdown(c->e, c->i);
}
static long c_poll_arm(void *a)
{
    struct call *c = a;
    op_poll_arm(c->e, c->i);
    return 0;
}
static long c_close(void *a)
{
    return op_close(((struct call *)a)->e);
}

static long e_read(struct fd_entry *e, void *buf, size_t len)
{
    struct call c = {.e = e, .p = buf, .n = len};
    return net_call(c_read, &c);
}
static long e_write(struct fd_entry *e, const void *buf, size_t len)
{
    struct call c = {.e = e, .p = buf, .n = len};
    return net_call(c_write, &c);
}
static long e_readv(struct fd_entry *e, const struct iovec *iov, int cnt)
{
    struct call c = {.e = e, .p = iov, .i = cnt};
    return net_call(c_readv, &c);
}
static long e_writev(struct fd_entry *e, const struct iovec *iov, int cnt)
{
    struct call c = {.e = e, .p = iov, .i = cnt};
    return net_call(c_writev, &c);
}
static long e_ioctl(struct fd_entry *e, unsigned long req, uintptr_t arg)
{
    struct call c = {.e = e, .n = req, .p = (const void *)arg};
    return net_call(c_ioctl, &c);
}
static int e_poll_ready(struct fd_entry *e)
{
    struct call c = {.e = e};
    return (int)net_call(c_poll_ready, &c);
}
static long e_shutdown(struct fd_entry *e, int how)
{
    struct call c = {.e = e, .i = how};
    return net_call(c_shutdown, &c);
}
static void e_poll_arm(struct fd_entry *e, int on)
{
    struct call c = {.e = e, .i = on};
    net_call(c_poll_arm, &c);
}
static long e_close(struct fd_entry *e)
{
    struct call c = {.e = e};
    return net_call(c_close, &c);
}

static const struct fd_ops inet_ops = {
    .kind = "inet",
    .read = e_read,
    .write = e_write,
    .readv = e_readv,
    .writev = e_writev,
    .fstat = op_fstat,
    .ioctl = e_ioctl,
    .poll_ready = e_poll_ready,
    .shutdown = e_shutdown,
    .close = e_close,
    .poll_arm = e_poll_arm,
};

/* ---- <ember/net.h>
 * ------------------------------------------------------------------------------------ */

static size_t resolv_inner(char *buf, size_t len)
{
    if (net_up() != 0) {
        if (len)
            buf[0] = '\0';
        return 0;
    }
    /* The interface's servers: ip='s, or the DHCP lease's. */
    const struct net_if *nif = net_dev_stack()->nif;
    struct net_config c = {.dns = {nif->dns[0], nif->dns[1]}};
    const struct net_dhcp *d = net_dev_stack()->dhcp;
    if (d && net_dhcp_bound(net_dev_stack()))
        sdk_memcpy(c.domain, d->domain, sizeof(c.domain));
    return net_config_resolv_conf(&c, buf, len);
}

static int info_inner(struct ember_net_info *out)
{
    int r = net_up();
    if (r)
        return r;
    struct net_stack *ns = net_dev_stack();
    sdk_memset(out, 0, sizeof(*out));
    sdk_memcpy(out->mac, ns->nif->mac, 6);
    out->mtu = ns->nif->mtu;
    out->addr = ns->nif->addr;
    out->netmask = ns->nif->netmask;
    out->gateway = ns->nif->gateway;
    out->dns[0] = ns->nif->dns[0];
    out->dns[1] = ns->nif->dns[1];
    out->offload = ns->nif->offload;
    out->rx_frames = ns->stats.rx_frames;
    out->tx_frames = ns->stats.tx_frames;
    out->rx_drop = ns->stats.rx_drop_bad + ns->stats.rx_drop_other;
    out->tx_drop = ns->stats.tx_drop;
    out->tcp_rexmt = ns->stats.tcp_rexmt + ns->stats.tcp_fast_rexmt;
    return 0;
}

static long c_resolv(void *a)
{
    struct call *c = a;
    return (long)resolv_inner((char *)c->p, c->n);
}

size_t ember_net_resolv_conf(char *buf, size_t len)
{
    struct call c = {.p = buf, .n = len};
    long r = net_call(c_resolv, &c);
    return r < 0 ? 0 : (size_t)r;
}

static long c_info(void *a)
{
    return info_inner((struct ember_net_info *)((struct call *)a)->p);
}

int ember_net_info(struct ember_net_info *out)
{
    struct call c = {.p = out};
    return (int)net_call(c_info, &c);
}
