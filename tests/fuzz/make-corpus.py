#!/usr/bin/env python3
"""make-corpus.py: writes the seed corpora of the fuzz targets in tests/fuzz
(corpus/<target>/*.bin), one seed per request type and per rule each target
checks. Run from anywhere; the files are committed, so only a change of an
input format needs a run. Formats: the top comment of fuzz_<target>.c."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name + ".bin"), "wb") as f:
        f.write(data)


# ---- vsock: records of fuzz_vsock.c ---------------------------------------
REQUEST, RESPONSE, RST, SHUTDOWN, RW, CREDIT_UPDATE, CREDIT_REQUEST = range(1, 8)
GUEST, HOST = 3, 2


def hdr(op, src_port=1000, dst_port=5000, length=0, flags=0, buf_alloc=65536, fwd_cnt=0,
        src_cid=GUEST, dst_cid=HOST, typ=1):
    return struct.pack("<QQIIIHHIII", src_cid, dst_cid, src_port, dst_port, length, typ, op,
                       flags, buf_alloc, fwd_cnt)


def tx(pkt, split=False):
    return bytes([0, 2 if split else 0]) + struct.pack("<H", len(pkt)) + pkt


def rw(n, **kw):
    return tx(hdr(RW, length=n, **kw) + b"d" * n, split=n > 0)


def rx(count, size16):
    return bytes([3, count, size16])


def reg(index, value):
    return bytes([4, index]) + struct.pack("<I", value)


RESET, PEERS_GONE = bytes([5]), bytes([6, 1])


def host_writes(n32):
    return bytes([6, n32 << 1])


REG_STATUS, REG_QUEUE_SEL, REG_QUEUE_NUM, REG_QUEUE_READY = 0, 1, 2, 3
connect = tx(hdr(REQUEST))

write("vsock", "request", connect)
write("vsock", "request-refused", tx(hdr(REQUEST, dst_port=6000)))
write("vsock", "response-unknown", tx(hdr(RESPONSE)))
write("vsock", "rw", connect + rw(1000))
write("vsock", "rw-past-credit", connect + b"".join(rw(4000) for _ in range(70)))
write("vsock", "rw-many-connections",
      b"".join(tx(hdr(REQUEST, src_port=2000 + i)) + tx(hdr(RW, src_port=2000 + i, length=4000)
               + b"m" * 4000, split=True) for i in range(12)))
write("vsock", "shutdown", connect + rw(100) + tx(hdr(SHUTDOWN, flags=3)))
write("vsock", "shutdown-send-then-rw", connect + tx(hdr(SHUTDOWN, flags=2)) + rw(10))
write("vsock", "rst", connect + tx(hdr(RST)))
write("vsock", "credit-update", connect + tx(hdr(CREDIT_UPDATE, buf_alloc=1 << 20)))
write("vsock", "credit-request", connect + tx(hdr(CREDIT_REQUEST)) + rx(4, 8))
write("vsock", "peer-gone", connect + rw(10) + PEERS_GONE + rw(10))
write("vsock", "reset-mid-stream", connect + rw(500) + RESET + rw(500))
write("vsock", "malformed",
      tx(hdr(RW)[:20]) + tx(hdr(REQUEST, typ=2)) + tx(hdr(RW, length=4096)) +
      tx(hdr(42)) + tx(hdr(REQUEST, src_cid=1234)) + tx(hdr(0)))
write("vsock", "rx-too-small", connect + rx(1, 0))
write("vsock", "host-data", connect + tx(hdr(CREDIT_UPDATE)) + host_writes(10) + rx(8, 255) +
      host_writes(127) + rx(8, 255) + PEERS_GONE + rx(2, 8))
# Issue 10: DRIVER_OK dropped, RX disabled and shrunk, an RST owed.
write("vsock", "queue-pulled",
      connect + rw(10) + reg(REG_STATUS, 11) + reg(REG_QUEUE_SEL, 0) + reg(REG_QUEUE_READY, 0) +
      reg(REG_QUEUE_NUM, 0) + tx(hdr(REQUEST, dst_port=6000)))
write("vsock", "template-ops", b"".join(bytes([7 + 8 * op, 0x11, 10, 0, 0, 16, 0])
                                         for op in range(8)))

# ---- virtqueue: fuzz_virtqueue.c -------------------------------------------
# data[0] queue size exponent, [1] desc page (<<8), [2] avail (|0x8000),
# [3] used (|0xc000), [4] flags (1 EVENT_IDX, 2 INDIRECT); guest RAM from 8.
# ---- mmds: records of fuzz_mmds.c -------------------------------------------
def mmds_raw(frame):
    return bytes([0]) + struct.pack("<H", len(frame)) + frame


def mmds_tcp(port, flags, payload=b"", dseq=0, dack=0):
    return bytes([1, port, flags, dseq & 0xff, dack & 0xff, len(payload)]) + payload


def mmds_drain(k=40):
    return bytes([2, k])


MMDS_ARP = (b"\xff" * 6 + bytes([6, 0, 0, 0, 0, 2]) + b"\x08\x06" +
            struct.pack(">HHBBH", 1, 0x0800, 6, 4, 1) + bytes([6, 0, 0, 0, 0, 2, 10, 0, 0, 2]) +
            b"\x00" * 6 + bytes([169, 254, 169, 254]))
SYN, ACK, PSH_ACK, FIN_ACK, RST_ = 0x02, 0x10, 0x18, 0x11, 0x04


def mmds_session(port, request):
    return (mmds_tcp(port, SYN) + mmds_drain() + mmds_tcp(port, ACK) +
            mmds_tcp(port, PSH_ACK, request) + mmds_drain() + mmds_tcp(port, ACK) +
            mmds_tcp(port, FIN_ACK) + mmds_drain())


write("mmds", "arp", mmds_raw(MMDS_ARP) + mmds_drain())
write("mmds", "get", mmds_session(0, b"GET /latest/meta-data HTTP/1.1\r\n\r\n"))
write("mmds", "get-json", mmds_session(1, b"GET /latest/ HTTP/1.1\r\nAccept: application/json\r\n"
                                          b"Connection: close\r\n\r\n"))
write("mmds", "v2-token", bytes([3]) + mmds_session(
    2, b"PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 60\r\n\r\n"
       b"GET /x HTTP/1.1\r\nX-metadata-token: 00\r\n\r\n"))
write("mmds", "pipelined", mmds_session(3, b"GET / HTTP/1.1\r\n\r\n" * 6))
write("mmds", "bad-http", mmds_session(0, b"GE\x00T / HTTP/9\r\n\r\n"))
write("mmds", "rst-and-repeats", mmds_tcp(0, SYN) + mmds_tcp(0, SYN) + mmds_drain() +
      mmds_tcp(0, PSH_ACK, b"GET", dseq=-3) + mmds_tcp(0, ACK, dack=-5) + mmds_tcp(0, RST_))
write("mmds", "not-port-80", mmds_raw(MMDS_ARP[:12] + b"\x08\x00" + b"\x45" + b"\x00" * 19) +
      mmds_drain())
# An answer never acknowledged: the retransmission timer fires (drain
# counts of 128 and more), backs off and gives up.
write("mmds", "timers", mmds_tcp(0, SYN) + mmds_drain(129) + mmds_tcp(0, ACK) +
      mmds_tcp(0, PSH_ACK, b"GET /latest/meta-data HTTP/1.1\r\n\r\n") + mmds_drain(1) +
      mmds_drain(129) + mmds_drain(131) + mmds_drain(255) + mmds_drain(255))


def vq_image(size_exp, desc_hi, avail_hi, used_hi, flags, descs, avail, extra=()):
    ram = bytearray(0x10000)
    desc = desc_hi << 8
    for i, (addr, ln, fl, nxt) in enumerate(descs):
        struct.pack_into("<QIHH", ram, desc + 16 * i, addr, ln, fl, nxt)
    a = (avail_hi << 8) | 0x8000
    struct.pack_into("<HH", ram, a, 0, len(avail))
    for i, h in enumerate(avail):
        struct.pack_into("<H", ram, a + 4 + 2 * i, h)
    for off, blob in extra:
        ram[off:off + len(blob)] = blob
    end = max([desc + 16 * len(descs), a + 4 + 2 * len(avail) + 2] +
              [off + len(b) for off, b in extra])
    return bytes([size_exp, desc_hi, avail_hi, used_hi, flags, 0, 0, 0]) + bytes(ram[:end])


NEXT, WRITE, INDIRECT = 1, 2, 4
write("virtqueue", "readable-writable",
      vq_image(3, 0x10, 0x00, 0x00, 0, [(0x4000, 16, NEXT, 1), (0x4100, 512, WRITE, 0)], [0]))
write("virtqueue", "indirect",
      vq_image(3, 0x10, 0x00, 0x00, 2, [(0x5000, 48, INDIRECT, 0)], [0],
               extra=[(0x5000, struct.pack("<QIHH", 0x4000, 16, NEXT, 1) +
                       struct.pack("<QIHH", 0x4100, 64, NEXT | WRITE, 2) +
                       struct.pack("<QIHH", 0x4200, 1, WRITE, 0))]))
write("virtqueue", "event-idx",
      vq_image(2, 0x10, 0x00, 0x00, 1, [(0x4000, 8, 0, 0)] * 4, [0, 1, 2, 3]))
write("virtqueue", "loop",
      vq_image(3, 0x10, 0x00, 0x00, 0, [(0x4000, 8, NEXT, 1), (0x4000, 8, NEXT, 0)], [0]))
write("virtqueue", "wrong-direction",
      vq_image(3, 0x10, 0x00, 0x00, 0, [(0x4000, 8, NEXT | WRITE, 1), (0x4000, 8, 0, 0)], [0]))

# ---- elf: fuzz_elf.c: a minimal ember guest (what tests/unit/test_boot_elf.c
# builds), with the ember and PVH notes --------------------------------------
def elf():
    img = bytearray(0x3000)
    ehdr = struct.pack("<4sBBBBB7sHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0, b"\0" * 7, 2, 62,
                       1, 0x100000, 64, 0, 0, 64, 56, 3, 0, 0, 0)
    img[0:64] = ehdr
    notes = struct.pack("<III", 6, 8, 0x454d4201) + b"EMBER\0\0\0" + struct.pack("<II", 1, 0)
    notes += struct.pack("<III", 4, 4, 18) + b"Xen\0" + struct.pack("<I", 0x100010)
    img[0x200:0x200 + len(notes)] = notes
    ph = [(1, 5, 0x1000, 0x100000, 0x100000, 0x100, 0x100, 0x1000),
          (1, 6, 0x2000, 0x101000, 0x101000, 0x10, 0x2000, 0x1000),
          (4, 4, 0x200, 0, 0, len(notes), len(notes), 4)]
    for i, p in enumerate(ph):
        img[64 + 56 * i:64 + 56 * (i + 1)] = struct.pack("<IIQQQQQQ", *p)
    img[0x1000:0x1100] = b"\x90" * 0x100
    return bytes(img)


write("elf", "minimal", elf())


# ---- dhcp: fuzz_dhcp.c: a mode byte, then a BOOTREPLY ------------------------
def bootreply(msg_type, opts=b"", file=b"", sname=b"", yiaddr=bytes([10, 9, 0, 77])):
    b = bytearray(240)
    b[0:3] = bytes([2, 1, 6])
    b[4:8] = struct.pack(">I", 0x1234)
    b[16:20] = yiaddr
    b[28:34] = bytes([2, 0, 0, 0, 0, 9])
    b[44:44 + len(sname)] = sname
    b[108:108 + len(file)] = file
    b[236:240] = bytes([99, 130, 83, 99])
    o = bytes([53, 1, msg_type, 54, 4, 10, 9, 0, 1]) + opts
    return bytes(b) + o + b"\xff"


DHCP_FULL = (bytes([1, 4, 255, 255, 255, 0, 3, 8, 10, 9, 0, 1, 10, 9, 0, 2,
                    6, 8, 10, 9, 0, 53, 10, 9, 0, 54]) + bytes([51, 4]) + struct.pack(">I", 3600) +
             bytes([58, 4]) + struct.pack(">I", 60) + bytes([59, 4]) + struct.pack(">I", 90))
write("dhcp", "parse-offer", b"\x00" + bootreply(2, DHCP_FULL))
write("dhcp", "offer-then-ack", b"\x01" + bootreply(2, DHCP_FULL))
write("dhcp", "lease-times", b"\x02" + bootreply(2, DHCP_FULL))
write("dhcp", "nak", b"\x01" + bootreply(6))
write("dhcp", "overload", b"\x01" + bootreply(2, bytes([52, 1, 3]), file=bytes([6, 4, 1, 1, 1, 1, 255]),
                                               sname=bytes([1, 4, 255, 0, 0, 0, 255])))
write("dhcp", "bad-length", b"\x00" + bootreply(2, bytes([51, 200, 0])))


# ---- restore_request: fuzz_restore_request.c: one request, as sent -----------
for name, body in [
        ("full", b'{"vsock_uds_path": "/run/vm7.sock", "console": "/run/vm7.log", "id": "vm7"}'),
        ("empty-object", b'{}'),
        ("vsock-only", b'{"vsock_uds_path":"/tmp/a.sock"}'),
        ("api", b'{"vsock_uds_path":"/tmp/a.sock","api_sock":"/tmp/a.api","id":"fn-7"}'),
        ("unknown-field", b'{"snapshot_path": "/etc"}'),
        ("not-string", b'{"vsock_uds_path": 7, "id": null}'),
        ("bad-id", b'{"id": "a b"}'),
        ("long-id", b'{"id": "' + b"a" * 70 + b'"}'),
        ("long-vsock", b'{"vsock_uds_path": "/' + b"a" * 120 + b'"}'),
        ("duplicate", b'{"id": "x", "id": "y"}'),
        ("escaped-nul", b'{"console": "a\\u0000b"}'),
        ("array", b'[1, "x"]'),
        ("nested", b'{"id": {"id": ["x"]}}')]:
    write("restore_request", name, body)
