/* probe.c: the exec file of the jailer tests. It reports, one `key=value`
 * line each, what a process inside the jail sees: its ids, arguments,
 * environment, open descriptors, limits, session, and every file under "/".
 * Then `ready`. With --wait it stays until its stdin closes, so the test can
 * look at /proc/<pid> from outside (mounts, namespaces, cgroups: the jail has
 * no /proc). With --report FILE the report goes to FILE (a daemonized probe
 * has /dev/null as stdout). Linked statically: the jail holds nothing else. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

extern char **environ;

static void walk(FILE *out, const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;

    if (!d) {
        fprintf(out, "walk-error=%s %s\n", dir, strerror(errno));
        return;
    }
    while ((de = readdir(d)) != NULL) {
        char path[4096];
        struct stat st;
        const char *type;

        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s%s%s", dir, strcmp(dir, "/") ? "/" : "", de->d_name);
        if (lstat(path, &st) != 0)
            continue;
        type = S_ISDIR(st.st_mode)   ? "dir"
               : S_ISREG(st.st_mode) ? "file"
               : S_ISCHR(st.st_mode) ? "chr"
               : S_ISLNK(st.st_mode) ? "link"
                                     : "other";
        fprintf(out, "entry=%s %s %04o %u:%u", path, type, st.st_mode & 07777, st.st_uid,
                st.st_gid);
        if (S_ISCHR(st.st_mode))
            fprintf(out, " %u:%u", major(st.st_rdev), minor(st.st_rdev));
        fputc('\n', out);
        if (S_ISDIR(st.st_mode))
            walk(out, path);
    }
    closedir(d);
}

int main(int argc, char **argv)
{
    FILE *out = stdout;
    int wait = 0;
    uid_t r, e, s;
    gid_t rg, eg, sg;
    struct rlimit rl;
    char cwd[256];

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--wait") == 0)
            wait = 1;
        if (strcmp(argv[i], "--report") == 0 && i + 1 < argc) {
            out = fopen(argv[i + 1], "w");
            if (!out)
                return 99;
        }
    }
    for (int i = 0; i < argc; i++)
        fprintf(out, "arg=%s\n", argv[i]);
    getresuid(&r, &e, &s);
    getresgid(&rg, &eg, &sg);
    fprintf(out, "uid=%u,%u,%u\ngid=%u,%u,%u\ngroups=%d\n", r, e, s, rg, eg, sg,
            getgroups(0, NULL));
    fprintf(out, "pid=%d\nsid-leader=%s\n", (int)getpid(), getsid(0) == getpid() ? "yes" : "no");
    fprintf(out, "cwd=%s\n", getcwd(cwd, sizeof(cwd)) ? cwd : "?");
    for (char **v = environ; *v; v++)
        fprintf(out, "env=%s\n", *v);
    for (int fd = 0; fd < 1024; fd++) {
        struct stat st;
        if (fcntl(fd, F_GETFD) < 0 || (out != stdout && fd == fileno(out)))
            continue;
        fstat(fd, &st);
        fprintf(out, "fd=%d %s", fd,
                S_ISCHR(st.st_mode)    ? "chr"
                : S_ISFIFO(st.st_mode) ? "fifo"
                : S_ISREG(st.st_mode)  ? "file"
                                       : "other");
        if (S_ISCHR(st.st_mode))
            fprintf(out, " %u:%u", major(st.st_rdev), minor(st.st_rdev));
        fputc('\n', out);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    fprintf(out, "rlimit-nofile=%llu,%llu\n", (unsigned long long)rl.rlim_cur,
            (unsigned long long)rl.rlim_max);
    getrlimit(RLIMIT_FSIZE, &rl);
    fprintf(out, "rlimit-fsize=%lld,%lld\n",
            rl.rlim_cur == RLIM_INFINITY ? -1LL : (long long)rl.rlim_cur,
            rl.rlim_max == RLIM_INFINITY ? -1LL : (long long)rl.rlim_max);
    fprintf(out, "kvm-open=%s\n", access("/dev/kvm", R_OK | W_OK) == 0 ? "yes" : "no");
    walk(out, "/");
    fprintf(out, "ready\n");
    fflush(out);
    if (out != stdout)
        fclose(out);
    if (wait) {
        char b[64];
        while (read(0, b, sizeof(b)) > 0)
            ;
    }
    return 0;
}
