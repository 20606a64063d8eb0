/* test_net.c: the virtio-net device with real guests behind a real tap.
 *
 * Every test makes its own network namespace (ember-<pid>-<n>) with a tap
 * in it (10.77.0.1/24 on the host side, the guest is 10.77.0.2), enters it,
 * runs ember and the host's tools there, and deletes it at the end, which
 * removes the tap too. Without root, /dev/net/tun or `ip` the tests skip
 * loudly. The guests are raw-MMIO drivers (tests/guests/net_raw.h). */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/integration/proc.h"

#define CAP_S    60
#define GUEST_IP "10.77.0.2"
#define HOST_IP  "10.77.0.1"
#define MAC      "06:00:0a:4d:00:02"

extern char **environ;

static const char *ip_bin, *ping_bin;
static char ns[64], tap[16];

static const char *find_bin(const char *a, const char *b)
{
    return access(a, X_OK) == 0 ? a : access(b, X_OK) == 0 ? b : NULL;
}

static int sh(char *const argv[])
{
    struct spawn_result r;
    int st;

    if (spawn_run(argv, CAP_S, &r) != 0)
        return -1;
    st = r.status;
    if (st != 0)
        fprintf(stderr, "%s: %s%s", argv[0], r.out, r.err);
    spawn_free(&r);
    return st;
}

/* Skips loudly unless KVM, root, /dev/net/tun and ip(8) are there; then
 * makes the namespace and the tap, and enters the namespace. */
static void net_setup(void)
{
    static int seq;
    const char *why = spawn_kvm_unusable();

    if (why) {
        fprintf(stderr, "SKIPPED: net test needs KVM: %s\n", why);
        cr_skip_test("needs KVM: %s", why);
    }
    ip_bin = find_bin("/usr/sbin/ip", "/sbin/ip");
    ping_bin = find_bin("/usr/bin/ping", "/bin/ping");
    if (geteuid() != 0 || access("/dev/net/tun", R_OK | W_OK) != 0 || !ip_bin) {
        fprintf(stderr, "SKIPPED: net test needs root, /dev/net/tun and ip(8)\n");
        cr_skip_test("needs root, /dev/net/tun and ip(8)");
    }
    snprintf(ns, sizeof(ns), "ember-%d-%d", getpid(), seq);
    snprintf(tap, sizeof(tap), "et%d_%d", getpid(), seq++);
    cr_assert_eq(sh((char *[]){(char *)ip_bin, "netns", "add", ns, NULL}), 0);
    char path[128];
    snprintf(path, sizeof(path), "/run/netns/%s", ns);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert(fd >= 0 && setns(fd, CLONE_NEWNET) == 0, "entering %s: %s", ns, strerror(errno));
    close(fd);
    cr_assert_eq(sh((char *[]){(char *)ip_bin, "link", "set", "lo", "up", NULL}), 0);
    cr_assert_eq(sh((char *[]){(char *)ip_bin, "tuntap", "add", "dev", tap, "mode", "tap", NULL}),
                 0);
    cr_assert_eq(sh((char *[]){(char *)ip_bin, "addr", "add", HOST_IP "/24", "dev", tap, NULL}), 0);
    cr_assert_eq(sh((char *[]){(char *)ip_bin, "link", "set", tap, "up", NULL}), 0);
}

static void net_teardown(void)
{
    if (ns[0] && ip_bin)
        sh((char *[]){(char *)ip_bin, "netns", "del", ns, NULL});
    ns[0] = '\0';
}

struct vm {
    pid_t pid;
    char out[128], err[128];
};

static void vm_start(struct vm *vm, const char *netspec, char *const guest_argv[])
{
    posix_spawn_file_actions_t fa;
    char *argv[16] = {EMBER_BIN, "run", "--net", (char *)netspec};
    int n = 4;

    snprintf(vm->out, sizeof(vm->out), "/tmp/ember-net-%d-%s.out", getpid(), tap);
    snprintf(vm->err, sizeof(vm->err), "/tmp/ember-net-%d-%s.err", getpid(), tap);
    for (int i = 0; guest_argv[i] && n < 15; i++)
        argv[n++] = guest_argv[i];
    argv[n] = NULL;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, vm->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, vm->err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_eq(posix_spawn(&vm->pid, EMBER_BIN, &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
}

/* Waits (capped) until the guest's output holds token. */
static void vm_wait_output(struct vm *vm, const char *token)
{
    for (int i = 0; i < CAP_S * 100; i++) {
        char *out = proc_slurp(vm->out);
        bool hit = strstr(out, token) != NULL;
        free(out);
        if (hit)
            return;
        int st;
        if (waitpid(vm->pid, &st, WNOHANG) == vm->pid) {
            char *e = proc_slurp(vm->err), *o = proc_slurp(vm->out);
            cr_assert_fail("ember ended (status 0x%x) before \"%s\": %s%s", st, token, o, e);
        }
        usleep(10000);
    }
    cr_assert_fail("no \"%s\" from the guest", token);
}

static int vm_wait(struct vm *vm, int cap_s)
{
    return proc_wait(vm->pid, cap_s);
}

static void vm_cleanup(struct vm *vm)
{
    unlink(vm->out);
    unlink(vm->err);
}

/* One UDP datagram to the guest's echo port; the answer into ans (capped
 * wait, a few tries: the first may wait for ARP). Returns its length. */
static ssize_t udp_echo_tries(const void *msg, size_t len, void *ans, size_t cap, int tries)
{
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(7)};
    struct timeval tv = {2, 0};
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    ssize_t n = -1;

    inet_pton(AF_INET, GUEST_IP, &to.sin_addr);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    for (int i = 0; i < tries && n < 0; i++) {
        sendto(fd, msg, len, 0, (struct sockaddr *)&to, sizeof(to));
        n = recv(fd, ans, cap, 0);
    }
    close(fd);
    return n;
}

static ssize_t udp_echo(const void *msg, size_t len, void *ans, size_t cap)
{
    return udp_echo_tries(msg, len, ans, cap, 5);
}

static int ping(const char *size, const char *count)
{
    if (!ping_bin) {
        fprintf(stderr, "SKIPPED: no ping(8)\n");
        cr_skip_test("no ping(8)");
    }
    return sh((char *[]){(char *)ping_bin, "-n", "-q", "-c", (char *)count, "-i", "0.2", "-W", "3",
                         "-s", (char *)size, GUEST_IP, NULL});
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

/* Echoes sizes up to max bytes and compares every byte. */
static void udp_roundtrips(size_t max)
{
    static uint8_t msg[2048], ans[2048];
    const size_t sizes[] = {1, 18, 100, 512, 1000, 1012, 1013, 1200, 1400, 1472};

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t n = sizes[i];
        if (n > max)
            break;
        fill(msg, n, (uint32_t)n);
        ssize_t got = udp_echo(msg, n, ans, sizeof(ans));
        cr_assert_eq(got, (ssize_t)n, "UDP echo of %zu bytes: got %zd", n, got);
        cr_assert_eq(memcmp(msg, ans, n), 0, "UDP echo of %zu bytes differs", n);
    }
}

static void quit(struct vm *vm, const char *counts)
{
    char ans[16] = {0};

    cr_assert_eq(udp_echo("quit", 4, ans, sizeof(ans)), 3);
    cr_assert_str_eq(ans, "bye");
    int st = vm_wait(vm, CAP_S);
    char *out = proc_slurp(vm->out), *err = proc_slurp(vm->err);
    cr_expect_eq(st, 0, "status %d: %s%s", st, out, err);
    if (counts)
        cr_expect(strstr(out, counts) != NULL, "want \"%s\" in: %s", counts, out);
    free(out);
    free(err);
}

TestSuite(net, .init = net_setup, .fini = net_teardown);

/* The host's ping across the tap: ARP, then ICMP echo, small and large. */
Test(net, ping_and_udp_echo)
{
    struct vm vm;
    char spec[64];

    snprintf(spec, sizeof(spec), "%s,mac=" MAC, tap);
    vm_start(&vm, spec, (char *[]){GUEST_DIR "/net_echo_raw", GUEST_IP, NULL});
    vm_wait_output(&vm, "net-echo: up, mac " MAC);
    cr_expect_eq(ping("56", "3"), 0, "ping");
    cr_expect_eq(ping("1400", "2"), 0, "ping -s 1400");
    udp_roundtrips(1472);
    quit(&vm, "icmp 5 udp");
    vm_cleanup(&vm);
}

/* MRG_RXBUF with 1 KiB receive buffers: a frame over 1012 bytes arrives in
 * several buffers, and the guest puts them back together by num_buffers. */
Test(net, merged_receive_buffers)
{
    struct vm vm;
    char spec[64];

    snprintf(spec, sizeof(spec), "%s,mac=" MAC ",id=eth0", tap);
    vm_start(&vm, spec, (char *[]){GUEST_DIR "/net_echo_raw", GUEST_IP, "mrg", NULL});
    vm_wait_output(&vm, "net-echo: up");
    udp_roundtrips(1472);
    cr_expect_eq(ping("1400", "2"), 0, "ping -s 1400");
    quit(&vm, "icmp 2 udp");
    vm_cleanup(&vm);
}

/* The guest leaves UDP checksums to the device (CSUM, NEEDS_CSUM): the
 * host's socket gets the datagrams intact. */
Test(net, transmit_checksum_offload)
{
    struct vm vm;
    char spec[64];

    snprintf(spec, sizeof(spec), "%s,mac=" MAC, tap);
    vm_start(&vm, spec, (char *[]){GUEST_DIR "/net_echo_raw", GUEST_IP, "csum", NULL});
    vm_wait_output(&vm, "net-echo: up");
    udp_roundtrips(1472);
    quit(&vm, NULL);
    vm_cleanup(&vm);
}

/* The guest takes partial checksums (GUEST_CSUM): the device gives the tap
 * that offload (TUNSETOFFLOAD), so the host's UDP datagrams come with their
 * checksum left to the guest (NEEDS_CSUM), and no datagram is lost. */
Test(net, receive_checksum_offload)
{
    struct vm vm;
    char spec[64];

    snprintf(spec, sizeof(spec), "%s,mac=" MAC, tap);
    vm_start(&vm, spec, (char *[]){GUEST_DIR "/net_echo_raw", GUEST_IP, "gcsum", NULL});
    vm_wait_output(&vm, "net-echo: up");
    udp_roundtrips(1472);
    quit(&vm, NULL);
    char *out = proc_slurp(vm.out);
    const char *p = strstr(out, " partial ");
    cr_assert(p, "%s", out);
    cr_expect(strtoul(p + 9, NULL, 10) >= 10, "frames with NEEDS_CSUM: %s", out);
    free(out);
    vm_cleanup(&vm);
}

/* Receive buffers too small for a frame, without MRG_RXBUF: the frame is
 * dropped, the buffers stay usable for frames that fit. */
Test(net, frames_larger_than_buffers_are_dropped)
{
    struct vm vm;
    char spec[64];
    static uint8_t msg[1400], ans[2048];

    snprintf(spec, sizeof(spec), "%s,mac=" MAC, tap);
    vm_start(&vm, spec, (char *[]){GUEST_DIR "/net_echo_raw", GUEST_IP, "small", NULL});
    vm_wait_output(&vm, "net-echo: up");
    udp_roundtrips(200);
    fill(msg, sizeof(msg), 7);
    cr_expect_eq(udp_echo_tries(msg, sizeof(msg), ans, sizeof(ans), 1), -1,
                 "a 1400-byte datagram came back");
    udp_roundtrips(200);
    quit(&vm, NULL);
    vm_cleanup(&vm);
}

/* The tap disappears under a running guest: one log line, the monitor
 * goes on. */
Test(net, tap_goes_away)
{
    struct vm vm;
    char spec[64];

    snprintf(spec, sizeof(spec), "%s,mac=" MAC, tap);
    vm_start(&vm, spec, (char *[]){GUEST_DIR "/net_echo_raw", GUEST_IP, NULL});
    vm_wait_output(&vm, "net-echo: up");
    cr_assert_eq(ping("56", "1"), 0);
    cr_assert_eq(sh((char *[]){(char *)ip_bin, "link", "del", tap, NULL}), 0);
    char want[128];
    snprintf(want, sizeof(want), "ember: virtio-net \"net0\": tap %s: read: ", tap);
    bool seen = false;
    for (int i = 0; i < CAP_S * 100 && !seen; i++) {
        char *err = proc_slurp(vm.err);
        seen = strstr(err, want) && strstr(err, "; link down, frames dropped\n");
        free(err);
        if (!seen)
            usleep(10000);
    }
    cr_expect(seen, "no \"%s...\" line", want);
    cr_expect_eq(waitpid(vm.pid, NULL, WNOHANG), 0, "ember ended when the tap went away");
    kill(vm.pid, SIGKILL);
    waitpid(vm.pid, NULL, 0);
    vm_cleanup(&vm);
}

static volatile int sending;

/* Broadcasts to the tap's subnet, so that the device has frames to put in
 * the guest's (broken) receive queue. */
static void *broadcaster(void *arg)
{
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9)};
    int fd = socket(AF_INET, SOCK_DGRAM, 0), one = 1;

    (void)arg;
    setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one));
    inet_pton(AF_INET, "10.77.0.255", &to.sin_addr);
    while (sending) {
        sendto(fd, "x", 1, 0, (struct sockaddr *)&to, sizeof(to));
        usleep(20000);
    }
    close(fd);
    return NULL;
}

/* Broken queues: DEVICE_NEEDS_RESET and a log line naming the interface,
 * each time; after a reset the device works. */
Test(net, hostile_guest_needs_reset)
{
    static const struct {
        const char *name, *line;
    } cases[] = {
        {"rx_readable", "queue 0: device-readable buffer in a receive chain"},
        {"rx_tiny", "queue 0: receive buffer smaller than the virtio-net header"},
        {"tx_writable", "queue 1: device-writable buffer in a transmit chain"},
        {"tx_short", "queue 1: transmit chain shorter than the virtio-net header"},
        {"tx_loop", "queue 1: descriptor loop"},
        {"tx_outside", "queue 1: buffer [0x7ff000000000, +0x40) outside guest RAM"},
    };
    struct vm vm;
    pthread_t th;

    sending = 1;
    pthread_create(&th, NULL, broadcaster, NULL);
    vm_start(&vm, tap, (char *[]){GUEST_DIR "/net_hostile", NULL});
    int st = vm_wait(&vm, CAP_S);
    sending = 0;
    pthread_join(th, NULL);
    char *out = proc_slurp(vm.out), *err = proc_slurp(vm.err);
    cr_expect_eq(st, 0, "status %d: %s%s", st, out, err);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char want[160];
        snprintf(want, sizeof(want), "net-hostile: %s: needs reset\n", cases[i].name);
        cr_expect(strstr(out, want) != NULL, "want \"%s\" in: %s", want, out);
        snprintf(want, sizeof(want), "ember: virtio-net \"net0\": %s", cases[i].line);
        cr_expect(strstr(err, want) != NULL, "want \"%s\" in: %s", want, err);
    }
    cr_expect(strstr(out, "net-hostile: rx_huge: delivered ") != NULL, "%s", out);
    cr_expect(strstr(out, "net-hostile: done\n") != NULL, "%s", out);
    free(out);
    free(err);
    vm_cleanup(&vm);
}

/* Command-line errors name what was wrong. */
Test(net, cli_errors)
{
    static const struct {
        const char *spec, *msg;
    } cases[] = {
        {"tap0,mac=zz", "ember: --net: \"zz\" is not a MAC address such as 06:00:AC:10:00:02\n"},
        {"tap0,foo", "ember: --net: unknown option \"foo\"\n"},
        {"tap0,mtu=20", "ember: --net: mtu \"20\" out of range (68 to 65535)\n"},
        {"tap_name_far_too_long", "ember: --net needs a tap name of 1 to 15 characters\n"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct spawn_result r;
        cr_assert_eq(spawn_run((char *[]){EMBER_BIN, "run", "--net", (char *)cases[i].spec,
                                          GUEST_DIR "/net_hostile", NULL},
                               CAP_S, &r),
                     0);
        cr_expect_eq(r.status, 153, "%s: status %d", cases[i].spec, r.status);
        cr_expect(strncmp(r.err, cases[i].msg, strlen(cases[i].msg)) == 0, "%s: %s", cases[i].spec,
                  r.err);
        spawn_free(&r);
    }
    /* Not a tap: the error names the interface and the device. */
    struct spawn_result r;
    cr_assert_eq(spawn_run((char *[]){EMBER_BIN, "run", "--net", "lo,id=wan",
                                      GUEST_DIR "/net_hostile", NULL},
                           CAP_S, &r),
                 0);
    cr_expect(strstr(r.err, "ember: network interface \"wan\": tap lo: TUNSETIFF: Invalid "
                            "argument\n") != NULL,
              "%s", r.err);
    spawn_free(&r);
}

/* ---- the metadata service (MMDS), through the config file ---- */

static char *write_tmp(const char *what, const char *text)
{
    static int n;
    char *path = NULL;

    if (asprintf(&path, "/tmp/ember-net-%d-%s-%d.json", getpid(), what, n++) < 0)
        return NULL;
    FILE *f = fopen(path, "w");
    cr_assert(f, "%s", path);
    fputs(text, f);
    fclose(f);
    return path;
}

static const char metadata[] =
    "{\"latest\": {\"meta-data\": {\"ami-id\": \"ami-12345678\", \"reservation-id\": "
    "\"r-fea54097\", \"network\": {\"mac\": \"06:00:0a:4d:00:02\"}}, \"user-data\": \"x\"}, "
    "\"age\": 43}";

/* Boots net_mmds_raw with the requests (a JSON array's inside, already
 * quoted for the guest's command line) through a config file with
 * mmds-config (a JSON object's inside) and --metadata; returns the guest's
 * output. */
static const char *mmds_extra = ""; /* more of the config file ("metrics": ...) */

static char *mmds_run(const char *mmds_cfg, const char *mmds_ip, const char *requests, int *status)
{
    char cfg[4096];
    struct spawn_result r;

    snprintf(cfg, sizeof(cfg),
             "{\"boot-source\": {\"kernel_image_path\": \"%s\", \"boot_args\": \"" GUEST_IP
             " %s %s\"}, \"network-interfaces\": [{\"iface_id\": \"eth0\", \"host_dev_name\": "
             "\"%s\", \"guest_mac\": \"" MAC "\"}], \"mmds-config\": {%s}%s}",
             GUEST_DIR "/net_mmds_raw", mmds_ip, requests, tap, mmds_cfg, mmds_extra);
    char *cfg_path = write_tmp("cfg", cfg), *md_path = write_tmp("md", metadata);
    cr_assert_eq(spawn_run((char *[]){EMBER_BIN, "--config-file", cfg_path, "--no-api",
                                      "--metadata", md_path, NULL},
                           CAP_S, &r),
                 0);
    unlink(cfg_path);
    unlink(md_path);
    free(cfg_path);
    free(md_path);
    *status = r.status;
    char *out = r.out;
    if (r.status != 0)
        fprintf(stderr, "ember: %s\n", r.err);
    r.out = NULL;
    spawn_free(&r);
    return out;
}

static void want(const char *out, const char *text)
{
    cr_expect(strstr(out, text) != NULL, "want \"%s\" in:\n%s", text, out);
}

Test(net, mmds_v1_answers)
{
    int st;
    char *out = mmds_run("\"network_interfaces\": [\"eth0\"]", "169.254.169.254",
                         "'GET /' 'GET /latest/meta-data' 'GET /latest/meta-data/ami-id' "
                         "'GET /latest//meta-data/network/|Accept: application/json' "
                         "'GET /age|Accept: application/json' 'GET /age' 'GET /nothing/here' "
                         "'DELETE /latest' 'GET /latest/meta-data/ami-id|X-metadata-token: bad'",
                         &st);

    cr_expect_eq(st, 0, "%s", out);
    want(out, "mmds[0] status: HTTP/1.1 200 OK\nmmds[0] body: age\nlatest/\nmmds[0] end\n");
    want(out, "mmds[1] status: HTTP/1.1 200 OK\nmmds[1] body: ami-id\nnetwork/\nreservation-id\n"
              "mmds[1] end\n");
    want(out, "mmds[2] body: ami-12345678\nmmds[2] end\n");
    want(out, "mmds[3] status: HTTP/1.1 200 OK\nmmds[3] body: {\"mac\":\"06:00:0a:4d:00:02\"}\n");
    want(out, "mmds[4] body: 43\n");
    want(out, "mmds[5] status: HTTP/1.1 501 Not Implemented\nmmds[5] body: Cannot retrieve value. "
              "The value has an unsupported type.\n");
    want(out, "mmds[6] status: HTTP/1.1 404 Not Found\nmmds[6] body: Resource not found: "
              "/nothing/here.\n");
    want(out, "mmds[7] status: HTTP/1.1 405 Method Not Allowed\nmmds[7] body: Not allowed HTTP "
              "method.\n");
    /* V1 does not look at tokens. */
    want(out, "mmds[8] status: HTTP/1.1 200 OK\nmmds[8] body: ami-12345678\n");
    free(out);
}

Test(net, mmds_v2_tokens)
{
    int st;
    char *out = mmds_run(
        "\"version\": \"V2\", \"network_interfaces\": [\"eth0\"], "
        "\"ipv4_address\": \"169.254.170.2\"",
        "169.254.170.2",
        "'GET /latest/meta-data/ami-id' 'PUT /latest/api/token' "
        "'PUT /latest/api/token|X-metadata-token-ttl-seconds: 0' "
        "'PUT /latest/api/token|X-metadata-token-ttl-seconds: 21601' "
        "'PUT /latest/other|X-metadata-token-ttl-seconds: 60' "
        "'PUT /latest/api/token|X-metadata-token-ttl-seconds: 60|X-Forwarded-For: 1.2.3.4' "
        "'GET /latest/meta-data/ami-id|X-metadata-token: 0123' "
        "'PUT /latest/api/token|X-metadata-token-ttl-seconds: 21600' "
        "'GET /latest/meta-data/reservation-id|X-metadata-token: {token}' "
        "'PUT /latest/api/token|X-aws-ec2-metadata-token-ttl-seconds: 1' "
        "'GET /latest/user-data|X-aws-ec2-metadata-token: {token}'",
        &st);

    cr_expect_eq(st, 0, "%s", out);
    want(out, "mmds[0] status: HTTP/1.1 401 Unauthorized\nmmds[0] body: No MMDS token provided. "
              "Use `X-metadata-token` header to specify the session token.\n");
    want(out, "mmds[1] status: HTTP/1.1 400 Bad Request\nmmds[1] body: Token time to live value "
              "not found. Use `X-metadata-token-ttl-seconds` header to specify the token's "
              "lifetime.\n");
    want(out, "mmds[2] body: Invalid time to live value provided for token: 0. Please provide a "
              "value between 1 and 21600.\n");
    want(out, "mmds[3] body: Invalid time to live value provided for token: 21601. Please "
              "provide a value between 1 and 21600.\n");
    want(out, "mmds[4] status: HTTP/1.1 404 Not Found\nmmds[4] body: Resource not found: "
              "/latest/other.\n");
    want(out, "mmds[5] status: HTTP/1.1 400 Bad Request\nmmds[5] body: Invalid header. Reason: "
              "Unsupported header name. Key: X-Forwarded-For\n");
    want(out, "mmds[6] status: HTTP/1.1 401 Unauthorized\nmmds[6] body: MMDS token not valid.\n");
    want(out, "mmds[7] status: HTTP/1.1 200 OK\n");
    want(out, "mmds[8] status: HTTP/1.1 200 OK\nmmds[8] body: r-fea54097\n");
    want(out, "mmds[10] status: HTTP/1.1 200 OK\nmmds[10] body: x\n");
    /* A token is 64 hex digits. */
    const char *tok = strstr(out, "mmds[7] body: ");
    cr_assert(tok);
    tok += strlen("mmds[7] body: ");
    size_t n = strspn(tok, "0123456789abcdef");
    cr_expect_eq(n, 64, "token: %.80s", tok);
    cr_expect_eq(tok[n], '\n');
    free(out);
}

/* Frames to other addresses go to the tap as before: an ARP request for
 * an address nobody has goes unanswered. */
Test(net, mmds_answers_only_its_address)
{
    int st;
    /* An address nobody has: no ARP answer, the guest says so. */
    char *out = mmds_run("\"network_interfaces\": [\"eth0\"]", "169.254.1.1", "'GET /'", &st);
    want(out, "net-mmds: no ARP answer for the MMDS address\n");
    free(out);
}

/* ---- the API: limiters after boot, metrics ---- */

#include <sys/un.h>

/* One HTTP request on the API socket; returns the status, the body in
 * resp. */
static int api_call(const char *sock, const char *method, const char *path, const char *body,
                    char *resp, size_t cap)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct timeval tv = {10, 0};
    char req[2048];
    int fd = socket(AF_UNIX, SOCK_STREAM, 0), status = -1;
    size_t got = 0;

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     method, path, strlen(body), body);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    for (;;) {
        ssize_t r = read(fd, resp + got, cap - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    resp[got] = '\0';
    close(fd);
    sscanf(resp, "HTTP/1.1 %d", &status);
    char *b = strstr(resp, "\r\n\r\n");
    if (b)
        memmove(resp, b + 4, strlen(b + 4) + 1);
    return status;
}

/* The sum over the metrics lines of group.key. */
static uint64_t metric_sum(const char *text, const char *group, const char *key)
{
    char g[96], k[96];
    uint64_t sum = 0;

    snprintf(g, sizeof(g), "\"%s\":{", group);
    snprintf(k, sizeof(k), "\"%s\":", key);
    for (const char *p = strstr(text, g); p; p = strstr(p + 1, g)) {
        const char *end = p + strlen(g), *at = strstr(p, k);
        for (int depth = 1; *end && depth; end++) /* the group's own closing brace */
            depth += *end == '{' ? 1 : *end == '}' ? -1 : 0;
        if (at && end && at < end)
            sum += strtoull(at + strlen(k), NULL, 10);
    }
    return sum;
}

/* A guest floods transmit after PATCH gave its interface an operations
 * limiter: every datagram arrives, none is lost, and the limiter counted
 * the throttling (net_eth0 and the sum, net). */
Test(net, tx_flood_rate_limited_after_patch)
{
    char cfg[2048], sock[128], metrics[128], resp[4096];
    struct vm vm;
    posix_spawn_file_actions_t fa;

    snprintf(sock, sizeof(sock), "/tmp/ember-net-%d.sock", getpid());
    snprintf(metrics, sizeof(metrics), "/tmp/ember-net-%d.metrics", getpid());
    unlink(sock);
    unlink(metrics);
    snprintf(cfg, sizeof(cfg),
             "{\"boot-source\": {\"kernel_image_path\": \"%s\", \"boot_args\": \"" GUEST_IP
             "\"}, \"network-interfaces\": [{\"iface_id\": \"eth0\", \"host_dev_name\": \"%s\", "
             "\"guest_mac\": \"" MAC "\"}], \"metrics\": {\"metrics_path\": \"%s\"}}",
             GUEST_DIR "/net_echo_raw", tap, metrics);
    char *cfg_path = write_tmp("flood", cfg);
    snprintf(vm.out, sizeof(vm.out), "/tmp/ember-net-%d-flood.out", getpid());
    snprintf(vm.err, sizeof(vm.err), "/tmp/ember-net-%d-flood.err", getpid());
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, vm.out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, vm.err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_eq(
        posix_spawn(&vm.pid, EMBER_BIN, &fa, NULL,
                    (char *[]){EMBER_BIN, "--api-sock", sock, "--config-file", cfg_path, NULL},
                    environ),
        0);
    posix_spawn_file_actions_destroy(&fa);
    vm_wait_output(&vm, "net-echo: up");

    /* Errors first: an interface that does not exist, a bad limiter. */
    cr_expect_eq(api_call(sock, "PATCH", "/network-interfaces/eth9",
                          "{\"iface_id\":\"eth9\",\"tx_rate_limiter\":{}}", resp, sizeof(resp)),
                 400);
    cr_expect(strstr(resp, "network interface \\\"eth9\\\" does not exist") != NULL, "%s", resp);
    cr_expect_eq(api_call(sock, "PATCH", "/network-interfaces/eth0",
                          "{\"iface_id\":\"eth0\",\"host_dev_name\":\"x\"}", resp, sizeof(resp)),
                 400);
    cr_expect_eq(api_call(sock, "PATCH", "/network-interfaces/eth0",
                          "{\"iface_id\":\"eth0\",\"tx_rate_limiter\":{\"ops\":{\"size\":50,"
                          "\"refill_time\":500}}}",
                          resp, sizeof(resp)),
                 204, "%s", resp);

    enum { N = 300 };
    struct sockaddr_in me = {.sin_family = AF_INET, .sin_port = htons(9)},
                       to = {.sin_family = AF_INET, .sin_port = htons(7)};
    struct timeval tv = {5, 0};
    int fd = socket(AF_INET, SOCK_DGRAM, 0), big = 4 << 20;
    inet_pton(AF_INET, HOST_IP, &me.sin_addr);
    inet_pton(AF_INET, GUEST_IP, &to.sin_addr);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    cr_assert_eq(bind(fd, (struct sockaddr *)&me, sizeof(me)), 0);
    char msg[32];
    snprintf(msg, sizeof(msg), "flood %d", N);
    sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&to, sizeof(to));
    static bool seen[N];
    int got = 0;
    for (;;) {
        char buf[128] = {0};
        ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
        if (n <= 0)
            break;
        unsigned i;
        if (sscanf(buf, "flood %u", &i) == 1 && i < N && !seen[i]) {
            seen[i] = true;
            if (++got == N)
                break;
        }
    }
    close(fd);
    cr_expect_eq(got, N, "%d of %d datagrams arrived", got, N);
    quit(&vm, NULL);
    char *m = proc_slurp(metrics);
    cr_expect(metric_sum(m, "net_eth0", "tx_rate_limiter_throttled") > 0, "%s", m);
    cr_expect(metric_sum(m, "net_eth0", "tx_packets_count") >= N + 1, "%s", m);
    cr_expect_eq(metric_sum(m, "net", "tx_packets_count"),
                 metric_sum(m, "net_eth0", "tx_packets_count"));
    cr_expect(metric_sum(m, "net_eth0", "rx_packets_count") >= 3, "%s", m);
    free(m);
    unlink(metrics);
    unlink(sock);
    unlink(cfg_path);
    free(cfg_path);
    vm_cleanup(&vm);
}

/* The "mmds" group's field in the metrics file's last line. */
static unsigned long long mmds_metric(const char *text, const char *field)
{
    const char *line = text, *nl;
    while ((nl = strchr(line, '\n')) && nl[1])
        line = nl + 1;
    const char *g = strstr(line, "\"mmds\":");
    cr_assert_not_null(g, "no mmds group in: %s", line);
    char key[64];
    snprintf(key, sizeof(key), "\"%s\":", field);
    const char *k = strstr(g, key);
    cr_assert_not_null(k, "no mmds.%s in: %s", field, g);
    return strtoull(k + strlen(key), NULL, 10);
}

Test(net, mmds_metrics_count_the_guests_requests)
{
    char path[128], extra[256];
    snprintf(path, sizeof(path), "/tmp/ember-test-net-mmds-metrics-%d.json", (int)getpid());
    unlink(path);
    snprintf(extra, sizeof(extra), ", \"metrics\": {\"metrics_path\": \"%s\"}", path);
    mmds_extra = extra;
    int st;
    char *out =
        mmds_run("\"network_interfaces\": [\"eth0\"], \"version\": \"V2\"", "169.254.169.254",
                 "'GET /latest/meta-data/ami-id' "
                 "'GET /latest/meta-data/ami-id|X-metadata-token: bad' "
                 "'GET /latest/meta-data/ami-id|X-metadata-token: bad'",
                 &st);
    mmds_extra = "";
    cr_expect_eq(st, 0, "%s", out);
    want(out, "mmds[0] status: HTTP/1.1 401 Unauthorized\n");
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "no metrics file %s", path);
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    unlink(path);
    /* Counters are per flush: the last line (at exit) has what the guest
     * did unless a 60 s flush came between; sum every line to be sure. */
    unsigned long long sum[6] = {0};
    const char *fields[6] = {"rx_no_token", "rx_invalid_token", "connections_created",
                             "tx_count",    "rx_accepted",      "tx_frames"};
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        for (int i = 0; i < 6; i++)
            sum[i] += mmds_metric(l, fields[i]);
    cr_expect_eq(sum[0], 1u, "mmds.rx_no_token");
    cr_expect_eq(sum[1], 2u, "mmds.rx_invalid_token");
    cr_expect_geq(sum[2], 1u, "mmds.connections_created");
    cr_expect_eq(sum[3], 3u, "mmds.tx_count: three responses");
    cr_expect_gt(sum[4], 3u, "mmds.rx_accepted");
    cr_expect_gt(sum[5], 3u, "mmds.tx_frames");
    free(out);
}

/* A guest resets its device in the middle of a transmit flood that the
 * interface's limiter holds back (frames still on the ring, the device
 * waiting for its limiter), sets it up again and keeps working: echoes of
 * every size come back intact, and it ends normally. */
Test(net, reset_mid_traffic)
{
    char cfg[2048], metrics[128];
    struct vm vm;
    posix_spawn_file_actions_t fa;

    snprintf(metrics, sizeof(metrics), "/tmp/ember-net-%d-reset.metrics", getpid());
    unlink(metrics);
    snprintf(cfg, sizeof(cfg),
             "{\"boot-source\": {\"kernel_image_path\": \"%s\", \"boot_args\": \"" GUEST_IP
             "\"}, \"network-interfaces\": [{\"iface_id\": \"eth0\", \"host_dev_name\": \"%s\", "
             "\"guest_mac\": \"" MAC "\", \"tx_rate_limiter\": {\"ops\": {\"size\": 20, "
             "\"refill_time\": 200}}}], \"metrics\": {\"metrics_path\": \"%s\"}}",
             GUEST_DIR "/net_echo_raw", tap, metrics);
    char *cfg_path = write_tmp("reset", cfg);
    snprintf(vm.out, sizeof(vm.out), "/tmp/ember-net-%d-reset.out", getpid());
    snprintf(vm.err, sizeof(vm.err), "/tmp/ember-net-%d-reset.err", getpid());
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, vm.out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, vm.err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_eq(posix_spawn(&vm.pid, EMBER_BIN, &fa, NULL,
                             (char *[]){EMBER_BIN, "--no-api", "--config-file", cfg_path, NULL},
                             environ),
                 0);
    posix_spawn_file_actions_destroy(&fa);
    vm_wait_output(&vm, "net-echo: up");

    struct sockaddr_in me = {.sin_family = AF_INET, .sin_port = htons(9)},
                       to = {.sin_family = AF_INET, .sin_port = htons(7)};
    struct timeval tv = {5, 0};
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    inet_pton(AF_INET, HOST_IP, &me.sin_addr);
    inet_pton(AF_INET, GUEST_IP, &to.sin_addr);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    cr_assert_eq(bind(fd, (struct sockaddr *)&me, sizeof(me)), 0);
    sendto(fd, "flood 5000", 10, 0, (struct sockaddr *)&to, sizeof(to));
    int got = 0;
    while (got < 30) {
        char buf[128];
        if (recv(fd, buf, sizeof(buf), 0) <= 0)
            break;
        got++;
    }
    cr_assert_eq(got, 30, "only %d flood datagrams before the reset", got);
    sendto(fd, "reset", 5, 0, (struct sockaddr *)&to, sizeof(to));
    vm_wait_output(&vm, "net-echo: reset");
    close(fd);

    udp_roundtrips(1472);
    quit(&vm, "net-echo: arp");
    char *m = proc_slurp(metrics), *err = proc_slurp(vm.err);
    cr_expect(metric_sum(m, "net_eth0", "tx_rate_limiter_throttled") > 0, "%s", m);
    cr_expect(strstr(err, "NEEDS_RESET") == NULL && strstr(err, "needs reset") == NULL, "%s", err);
    free(m);
    free(err);
    unlink(metrics);
    unlink(cfg_path);
    free(cfg_path);
    vm_cleanup(&vm);
}
