/* net_dns.c: the interface's configuration (ip= or DHCP), /etc/resolv.conf
 * and getaddrinfo() by name, end to end. Prints the interface's addresses,
 * the resolv.conf text, resolves argv NAME, connects to NAME:PORT over
 * TCP, sends "ping" and prints what comes back; then, with a third
 * argument SECONDS, stays up that long (a DHCP lease renews meanwhile).
 *
 *   net_dns [ip=...] NAME PORT [SECONDS]
 *   net_dns probe      (stats /etc/localtime and lists /etc, then exits:
 *                       no path lookup may bring the network up)
 *
 * Lines: "addr A mask M gw G dns D0 D1", "resolv.conf: <line>" each,
 * "resolved NAME A", "reply <text>", then "done". Without a network device
 * it prints "no network: <errno name>" and whether /etc/resolv.conf exists.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <sys/stat.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ember/net.h>

static const char *ip(uint32_t a)
{
    static char b[8][16];
    static int k;
    struct in_addr in = {a};
    k = (k + 1) % 8;
    snprintf(b[k], sizeof(b[k]), "%s", inet_ntoa(in));
    return b[k];
}

int main(int argc, char **argv)
{
    const char *args[3];
    int n = 0;
    for (int i = 1; i < argc && n < 3; i++)
        if (strncmp(argv[i], "ip=", 3) != 0)
            args[n++] = argv[i];
    if (n == 1 && strcmp(args[0], "probe") == 0) {
        struct stat st;
        int lt = stat("/etc/localtime", &st) == 0 ? 0 : errno;
        int et = stat("/etc", &st) == 0 && S_ISDIR(st.st_mode) ? 0 : errno;
        printf("probe: /etc/localtime %s, /etc %s, entries:", lt ? strerror(lt) : "exists",
               et ? strerror(et) : "a directory");
        DIR *d = opendir("/etc");
        struct dirent *de;
        while (d && (de = readdir(d)))
            printf(" %s", de->d_name);
        printf("\n");
        return 0;
    }
    struct ember_net_info info;
    int r = ember_net_info(&info);
    if (r) {
        FILE *f = fopen("/etc/resolv.conf", "r");
        printf("no network: %s; /etc/resolv.conf %s\n", r == -ENODEV ? "ENODEV" : "other",
               f ? "exists" : strerror(errno));
        return f ? 1 : 0;
    }
    printf("addr %s mask %s gw %s dns %s %s\n", ip(info.addr), ip(info.netmask), ip(info.gateway),
           ip(info.dns[0]), ip(info.dns[1]));
    FILE *f = fopen("/etc/resolv.conf", "r");
    if (!f) {
        printf("no /etc/resolv.conf: %s\n", strerror(errno));
        return 1;
    }
    char line[256];
    while (fgets(line, sizeof(line), f))
        printf("resolv.conf: %s", line);
    fclose(f);
    if (fopen("/etc/resolv.conf", "w") || errno != EROFS) {
        printf("/etc/resolv.conf is writable (errno %d)\n", errno);
        return 1;
    }
    if (n < 2)
        return 0;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai;
    int e = getaddrinfo(args[0], args[1], &hints, &ai);
    if (e) {
        printf("getaddrinfo %s: %s\n", args[0], gai_strerror(e));
        return 2;
    }
    struct sockaddr_in *sin = (struct sockaddr_in *)ai->ai_addr;
    printf("resolved %s %s\n", args[0], ip(sin->sin_addr.s_addr));
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0 || connect(s, ai->ai_addr, ai->ai_addrlen) != 0) {
        printf("connect: %s\n", strerror(errno));
        return 3;
    }
    freeaddrinfo(ai);
    if (write(s, "ping\n", 5) != 5) {
        printf("write: %s\n", strerror(errno));
        return 3;
    }
    char buf[128];
    size_t got = 0;
    while (got < sizeof(buf) - 1) {
        ssize_t k = read(s, buf + got, sizeof(buf) - 1 - got);
        if (k <= 0)
            break;
        got += (size_t)k;
        if (buf[got - 1] == '\n')
            break;
    }
    buf[got] = '\0';
    printf("reply %s", buf);
    close(s);
    if (n >= 3) {
        struct timespec ts = {atoi(args[2]), 0};
        nanosleep(&ts, NULL);
        ember_net_info(&info);
        printf("after %s s: addr %s\n", args[2], ip(info.addr));
    }
    printf("done\n");
    return 0;
}
