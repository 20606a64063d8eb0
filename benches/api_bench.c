/* api_bench.c: the control plane's numbers (issue 3).
 *
 *   ember-bench-api EMBER HELLO_GUEST [REQUESTS] [STARTS]
 *
 *  - API round trip: one keep-alive connection, REQUESTS (default 10000)
 *    PUT /machine-config and as many GET /, each timed from the first byte
 *    written to the last byte of the answer read; median and p99.
 *  - exec -> socket ready: fork+exec `EMBER --api-sock`, then connect() in a
 *    loop until it succeeds; STARTS runs (default 50).
 *  - InstanceStart -> guest main: PUT /actions InstanceStart on a configured
 *    instance, timed until the guest's first line (printed by hello's main)
 *    arrives on ember's stdout; STARTS / 2 runs (needs /dev/kvm).
 * Targets: API median <= 50 us and p99 <= 200 us; socket ready <= 2 ms.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *ember, *hello;
/* CPUs of the benchmark (client) and of ember (server); -1: not pinned. */
static int client_cpu = -1, server_cpu = -1;
static char sock_path[108];

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, uint64_t *ns, size_t n, double unit, const char *uname)
{
    qsort(ns, n, sizeof(*ns), cmp_u64);
    printf("api_bench: %-34s median %8.1f %s  p99 %8.1f %s  min %8.1f %s  (%zu runs)\n", what,
           (double)ns[n / 2] / unit, uname, (double)ns[(n * 99) / 100] / unit, uname,
           (double)ns[0] / unit, uname, n);
}

static int try_connect(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    return -1;
}

static void pin(int cpu)
{
    cpu_set_t set;

    CPU_ZERO(&set);
    if (cpu < 0) {
        for (int i = 0; i < CPU_SETSIZE; i++)
            CPU_SET(i, &set);
    } else {
        CPU_SET(cpu, &set);
    }
    sched_setaffinity(0, sizeof(set), &set);
}

/* Starts ember on sock_path; stdout to out_fd (or /dev/null). */
static pid_t spawn(int out_fd)
{
    pid_t pid;

    unlink(sock_path);
    pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        pin(server_cpu);
        dup2(out_fd >= 0 ? out_fd : null, 1);
        dup2(null, 2);
        execl(ember, ember, "--api-sock", sock_path, "--level", "Off", (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Waits without spinning (a spinning client steals the CPU ember starts on):
 * inotify reports the socket file when ember binds it, then connect() is
 * retried for the short moment between bind() and listen(). */
static int wait_ready(pid_t pid)
{
    char dir[sizeof(sock_path)], *slash, ev[4096];
    int in = inotify_init1(IN_CLOEXEC);

    snprintf(dir, sizeof(dir), "%s", sock_path);
    slash = strrchr(dir, '/');
    *slash = '\0';
    if (in >= 0 && inotify_add_watch(in, dir, IN_CREATE) >= 0) {
        while (access(sock_path, F_OK) != 0) {
            struct pollfd p = {.fd = in, .events = POLLIN};
            if (poll(&p, 1, 100) > 0 && read(in, ev, sizeof(ev)) < 0)
                break;
            if (waitpid(pid, NULL, WNOHANG) == pid) {
                close(in);
                return -1;
            }
        }
    }
    if (in >= 0)
        close(in);
    for (;;) {
        int fd = try_connect();
        if (fd >= 0)
            return fd;
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return -1;
        /* Between bind() and listen(): let ember run if it shares our CPU
         * (spinning here would hold it off until the next timer tick). */
        sched_yield();
    }
}

static void stop(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* Sends one request, reads one whole answer (headers + Content-Length). */
static int roundtrip(int fd, const char *req, size_t len, char *buf, size_t cap)
{
    size_t got = 0;

    if (write(fd, req, len) != (ssize_t)len)
        return -1;
    for (;;) {
        ssize_t n = read(fd, buf + got, cap - 1 - got);
        char *end, *cl;
        if (n <= 0)
            return -1;
        got += (size_t)n;
        buf[got] = '\0';
        end = strstr(buf, "\r\n\r\n");
        if (!end)
            continue;
        cl = strstr(buf, "Content-Length: ");
        if (!cl || cl > end)
            return atoi(buf + 9);
        if (got >= (size_t)(end + 4 - buf) + (size_t)atoi(cl + 16))
            return atoi(buf + 9);
    }
}

static int bench_roundtrip(int requests)
{
    static const char put_body[] = "{\"vcpu_count\":1,\"mem_size_mib\":128}";
    char put[256], buf[4096];
    static const char get[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    uint64_t *ns = calloc((size_t)requests, sizeof(*ns));
    pid_t pid = spawn(-1);
    int fd = wait_ready(pid), plen;

    if (fd < 0 || !ns) {
        fprintf(stderr, "api_bench: %s did not open its socket\n", ember);
        return 1;
    }
    plen = snprintf(put, sizeof(put),
                    "PUT /machine-config HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
                    "application/json\r\nContent-Length: %zu\r\n\r\n%s",
                    sizeof(put_body) - 1, put_body);
    for (int i = 0; i < 2000; i++) /* warm-up */
        roundtrip(fd, get, sizeof(get) - 1, buf, sizeof(buf));
    for (int i = 0; i < requests; i++) {
        uint64_t t = now_ns();
        if (roundtrip(fd, put, (size_t)plen, buf, sizeof(buf)) != 204) {
            fprintf(stderr, "api_bench: PUT /machine-config failed: %s\n", buf);
            return 1;
        }
        ns[i] = now_ns() - t;
    }
    report("PUT /machine-config round trip:", ns, (size_t)requests, 1e3, "us");
    for (int i = 0; i < requests; i++) {
        uint64_t t = now_ns();
        if (roundtrip(fd, get, sizeof(get) - 1, buf, sizeof(buf)) != 200) {
            fprintf(stderr, "api_bench: GET / failed: %s\n", buf);
            return 1;
        }
        ns[i] = now_ns() - t;
    }
    report("GET / round trip:", ns, (size_t)requests, 1e3, "us");
    close(fd);
    stop(pid);
    free(ns);
    return 0;
}

static int bench_socket_ready(int runs)
{
    uint64_t *ns = calloc((size_t)runs, sizeof(*ns));

    for (int i = 0; i < runs; i++) {
        uint64_t t = now_ns();
        pid_t pid = spawn(-1);
        int fd = wait_ready(pid);
        ns[i] = now_ns() - t;
        if (fd < 0) {
            fprintf(stderr, "api_bench: %s did not open its socket\n", ember);
            return 1;
        }
        close(fd);
        stop(pid);
    }
    report("exec -> socket ready:", ns, (size_t)runs, 1e6, "ms");
    free(ns);
    return 0;
}

static int api(int fd, const char *method, const char *path, const char *body)
{
    char req[1024], buf[4096];
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: %zu\r\n\r\n%s", method,
                     path, strlen(body), body);
    return roundtrip(fd, req, (size_t)n, buf, sizeof(buf));
}

static int bench_instance_start(int runs)
{
    uint64_t *ns = calloc((size_t)runs, sizeof(*ns));
    char body[512];

    if (access("/dev/kvm", R_OK | W_OK) != 0 || access(hello, R_OK) != 0) {
        printf("api_bench: InstanceStart -> guest main: SKIPPED (needs /dev/kvm and %s)\n", hello);
        return 0;
    }
    snprintf(body, sizeof(body), "{\"kernel_image_path\":\"%s\"}", hello);
    for (int i = 0; i < runs; i++) {
        int out[2], fd;
        pid_t pid;
        char c;
        uint64_t t;

        if (pipe(out) < 0)
            return 1;
        pid = spawn(out[1]);
        close(out[1]);
        fd = wait_ready(pid);
        if (fd < 0 || api(fd, "PUT", "/boot-source", body) != 204 ||
            api(fd, "PUT", "/machine-config", "{\"vcpu_count\":1,\"mem_size_mib\":128}") != 204) {
            fprintf(stderr, "api_bench: cannot configure %s\n", ember);
            return 1;
        }
        t = now_ns();
        if (api(fd, "PUT", "/actions", "{\"action_type\":\"InstanceStart\"}") != 204) {
            fprintf(stderr, "api_bench: InstanceStart failed\n");
            return 1;
        }
        /* The guest's first byte comes from printf in hello's main(). */
        if (read(out[0], &c, 1) != 1) {
            fprintf(stderr, "api_bench: the guest printed nothing\n");
            return 1;
        }
        ns[i] = now_ns() - t;
        close(fd);
        close(out[0]);
        waitpid(pid, NULL, 0);
    }
    report("InstanceStart -> guest main:", ns, (size_t)runs, 1e6, "ms");
    free(ns);
    return 0;
}

int main(int argc, char **argv)
{
    int requests = 10000, starts = 50;

    if (argc < 3) {
        fprintf(stderr, "usage: %s EMBER HELLO_GUEST [REQUESTS] [STARTS]\n", argv[0]);
        return 2;
    }
    ember = argv[1];
    hello = argv[2];
    if (argc > 3)
        requests = atoi(argv[3]);
    if (argc > 4)
        starts = atoi(argv[4]);
    if (requests < 1 || starts < 2)
        return 2;
    snprintf(sock_path, sizeof(sock_path), "/tmp/ember-bench-api.%d.sock", (int)getpid());
    signal(SIGPIPE, SIG_IGN);
    /* Round trips depend on where the scheduler puts the two ends (a
     * cross-CPU wake-up costs tens of microseconds in a VM): measure ember
     * sharing the client's CPU, on another CPU, and unpinned. */
    printf("api_bench: same CPU (client and ember on CPU 0)\n");
    client_cpu = server_cpu = 0;
    pin(client_cpu);
    if (bench_roundtrip(requests))
        return 1;
    if (sysconf(_SC_NPROCESSORS_ONLN) > 1) {
        printf("api_bench: separate CPUs (client on 0, ember on 1)\n");
        server_cpu = 1;
        if (bench_roundtrip(requests))
            return 1;
    }
    printf("api_bench: unpinned\n");
    client_cpu = server_cpu = -1;
    pin(-1);
    if (bench_roundtrip(requests) || bench_socket_ready(starts) ||
        bench_instance_start(starts / 2)) {
        unlink(sock_path);
        return 1;
    }
    unlink(sock_path);
    return 0;
}
