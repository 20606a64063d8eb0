/* vsock_sockopt.c: setsockopt, getsockopt and ioctl on the SDK's AF_VSOCK
 * sockets, with Linux's numbers, types and errors (SOL_SOCKET and
 * AF_VSOCK's own level; vsock_sock_priv.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>

#include <ember/vsock.h>

#include "sdk.h"
#include "vsock/vsock_dev.h"
#include "vsock/vsock_sock.h"
#include "vsock/vsock_sock_priv.h"

/* ---- options ------------------------------------------------------------------ */

static long get_int(const void *val, uint32_t len, int *out)
{
    if (len < sizeof(int))
        return -EINVAL;
    *out = *(const int *)val;
    return 0;
}

static long get_timeval_ns(const void *val, uint32_t len, uint64_t *ns)
{
    const struct timeval *tv = val;
    if (len < sizeof(*tv))
        return -EINVAL;
    if (tv->tv_usec < 0 || tv->tv_usec >= 1000000)
        return -EDOM;
    if (tv->tv_sec < 0) {
        *ns = 1; /* Linux: a negative timeout is "do not wait" */
        return 0;
    }
    uint64_t s = (uint64_t)tv->tv_sec;
    *ns =
        s > UINT64_MAX / 1000000000ull - 1 ? 0 : s * 1000000000ull + (uint64_t)tv->tv_usec * 1000u;
    return 0;
}

static void put_timeval(void *val, uint64_t ns)
{
    struct timeval *tv = val;
    tv->tv_sec = (time_t)(ns / 1000000000ull);
    tv->tv_usec = (suseconds_t)(ns % 1000000000ull / 1000u);
}

static void set_buf_alloc(struct vsk *s, uint64_t v)
{
    if (v > VSK_BUF_MAX)
        v = VSK_BUF_MAX;
    if (v > s->buf_max)
        s->buf_max = v;
    if (v < s->buf_min)
        s->buf_min = v;
    /* A ring in use keeps its size; Linux resizes, but a peer already sent
     * against the old figure. */
    if (s->rlen || v == s->buf_alloc)
        return;
    vsk_ring_put(s->rbuf, s->rcap);
    s->rbuf = NULL;
    s->rcap = 0;
    s->buf_alloc = (uint32_t)v;
    if (s->state == VS_CONNECTED)
        vsk_ctl(s, OWE_CREDIT);
}

long vsk_setsockopt(struct vsk *s, int level, int name, const void *val, uint32_t len)
{
    int v = 0;
    long r;

    if (level == SOL_SOCKET) {
        switch (name) {
        case SO_RCVTIMEO_OLD_:
        case SO_RCVTIMEO_NEW_:
            return get_timeval_ns(val, len, &s->rcvtimeo_ns);
        case SO_SNDTIMEO_OLD_:
        case SO_SNDTIMEO_NEW_:
            return get_timeval_ns(val, len, &s->sndtimeo_ns);
        case SO_LINGER: {
            const struct linger *l = val;
            if (len < sizeof(*l))
                return -EINVAL;
            s->opt_linger_on = l->l_onoff;
            s->opt_linger_s = l->l_linger;
            return 0;
        }
        default:
            break;
        }
        if ((r = get_int(val, len, &v)) != 0)
            return r;
        switch (name) {
        case SO_REUSEADDR:
            s->opt_reuseaddr = !!v;
            return 0;
        case SO_REUSEPORT:
            s->opt_reuseport = !!v;
            return 0;
        case SO_KEEPALIVE:
            s->opt_keepalive = !!v;
            return 0;
        case SO_OOBINLINE:
            s->opt_oobinline = !!v;
            return 0;
        case SO_RCVBUF:
        case SO_SNDBUF: {
            /* Linux doubles the value (bookkeeping overhead), minimum 2304. */
            long d = v < 0 ? 0 : (long)v * 2;
            if (d > 0x7fffffffL)
                d = 0x7fffffff;
            if (d < 2304)
                d = 2304;
            *(name == SO_RCVBUF ? &s->opt_rcvbuf : &s->opt_sndbuf) = (int)d;
            return 0;
        }
        case SO_RCVLOWAT:
            s->opt_rcvlowat = v < 1 ? 1 : v;
            return 0;
        case SO_PRIORITY:
            s->opt_priority = v;
            return 0;
        case SO_DEBUG:
        case SO_DONTROUTE:
        case SO_BROADCAST:
        case SO_PASSCRED:
        case SO_TIMESTAMP:
        case SO_SNDLOWAT:
        case SO_BUSY_POLL:
        case SO_MARK:
            return 0; /* accepted, nothing to do */
        default:
            return -ENOPROTOOPT;
        }
    }
    if (level != AF_VSOCK)
        return -ENOPROTOOPT; /* as Linux: vsock has no TCP options */
    switch (name) {
    case SO_VM_SOCKETS_BUFFER_SIZE:
    case SO_VM_SOCKETS_BUFFER_MIN_SIZE:
    case SO_VM_SOCKETS_BUFFER_MAX_SIZE: {
        if (len != sizeof(uint64_t))
            return -EINVAL;
        uint64_t x = *(const uint64_t *)val;
        if (name == SO_VM_SOCKETS_BUFFER_SIZE) {
            set_buf_alloc(s, x);
        } else if (name == SO_VM_SOCKETS_BUFFER_MIN_SIZE) {
            s->buf_min = x;
            if (s->buf_alloc < x)
                set_buf_alloc(s, x);
        } else {
            s->buf_max = x;
            if (s->buf_alloc > x)
                set_buf_alloc(s, x);
        }
        return 0;
    }
    case SO_VM_SOCKETS_CONNECT_TIMEOUT_OLD:
    case SO_VM_SOCKETS_CONNECT_TIMEOUT_NEW: {
        uint64_t ns;
        if ((r = get_timeval_ns(val, len, &ns)) != 0)
            return r;
        if (ns == 0)
            return -ERANGE;
        s->connect_timeout_ns = ns;
        return 0;
    }
    default:
        return -ENOPROTOOPT;
    }
}

long vsk_getsockopt(struct vsk *s, int level, int name, void *val, uint32_t *len)
{
    union {
        int i;
        uint64_t u64;
        struct linger l;
        struct timeval tv;
    } o;
    uint32_t size = sizeof(int);

    sdk_memset(&o, 0, sizeof(o));
    if (level == SOL_SOCKET) {
        switch (name) {
        case SO_TYPE:
            o.i = SOCK_STREAM;
            break;
        case SO_DOMAIN:
            o.i = AF_VSOCK;
            break;
        case SO_PROTOCOL:
            o.i = 0;
            break;
        case SO_ERROR:
            vsk_service();
            o.i = s->err;
            s->err = 0;
            break;
        case SO_ACCEPTCONN:
            o.i = s->state == VS_LISTEN;
            break;
        case SO_REUSEADDR:
            o.i = s->opt_reuseaddr;
            break;
        case SO_REUSEPORT:
            o.i = s->opt_reuseport;
            break;
        case SO_KEEPALIVE:
            o.i = s->opt_keepalive;
            break;
        case SO_OOBINLINE:
            o.i = s->opt_oobinline;
            break;
        case SO_RCVBUF:
            o.i = s->opt_rcvbuf;
            break;
        case SO_SNDBUF:
            o.i = s->opt_sndbuf;
            break;
        case SO_RCVLOWAT:
            o.i = s->opt_rcvlowat;
            break;
        case SO_SNDLOWAT:
            o.i = 1;
            break;
        case SO_PRIORITY:
            o.i = s->opt_priority;
            break;
        case SO_LINGER:
            o.l.l_onoff = s->opt_linger_on;
            o.l.l_linger = s->opt_linger_s;
            size = sizeof(o.l);
            break;
        case SO_RCVTIMEO_OLD_:
        case SO_RCVTIMEO_NEW_:
        case SO_SNDTIMEO_OLD_:
        case SO_SNDTIMEO_NEW_:
            put_timeval(&o.tv, name == SO_RCVTIMEO_OLD_ || name == SO_RCVTIMEO_NEW_
                                   ? s->rcvtimeo_ns
                                   : s->sndtimeo_ns);
            size = sizeof(o.tv);
            break;
        default:
            return -ENOPROTOOPT;
        }
    } else if (level == AF_VSOCK) {
        switch (name) {
        case SO_VM_SOCKETS_BUFFER_SIZE:
            o.u64 = s->buf_alloc;
            break;
        case SO_VM_SOCKETS_BUFFER_MIN_SIZE:
            o.u64 = s->buf_min;
            break;
        case SO_VM_SOCKETS_BUFFER_MAX_SIZE:
            o.u64 = s->buf_max;
            break;
        case SO_VM_SOCKETS_CONNECT_TIMEOUT_OLD:
        case SO_VM_SOCKETS_CONNECT_TIMEOUT_NEW:
            put_timeval(&o.tv, s->connect_timeout_ns);
            size = sizeof(o.tv);
            break;
        default:
            return -ENOPROTOOPT;
        }
        if (size == sizeof(int)) {
            size = sizeof(uint64_t);
            if (*len < size)
                return -EINVAL; /* Linux wants the whole u64 */
        }
    } else {
        return -ENOPROTOOPT;
    }
    if (*len > size)
        *len = size;
    sdk_memcpy(val, &o, *len);
    return 0;
}

long vsk_ioctl(struct vsk *s, unsigned long req, void *arg)
{
    switch (req) {
    case SIOCINQ_:
        vsk_service();
        if (s->state != VS_CONNECTED && s->state != VS_CLOSED)
            return -EINVAL;
        *(int *)arg = (int)s->rlen;
        return 0;
    case SIOCOUTQ_:
        vsk_service();
        if (s->state != VS_CONNECTED && s->state != VS_CLOSED)
            return -EINVAL;
        *(int *)arg = (int)(s->tx_cnt - s->peer_fwd_cnt);
        return 0;
    case FIONBIO:
        s->nonblock = *(const int *)arg != 0;
        return 0;
    case IOCTL_VM_SOCKETS_GET_LOCAL_CID:
        *(unsigned *)arg = (unsigned)vsock_dev_cid();
        return 0;
    default:
        return -ENOTTY;
    }
}
