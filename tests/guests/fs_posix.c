/* fs_posix.c: the path system calls answer as Linux does.
 *
 * Booted with an EROFS root built by tests/rootfs/rootfs_guest.sh (which
 * holds /etc/app.json, /etc/schema.sql and a symlink /etc/link -> app.json).
 * Each CHECK is one rule; the guest prints the first failure and exits 1,
 * or "fs_posix: N checks ok". Then a small database in the manner of
 * SQLite: its schema read from the root, the database and a rollback
 * journal in /tmp, record locks, a transaction rolled back from the journal.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int checks;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        checks++;                                                                                  \
        if (!(cond)) {                                                                             \
            printf("fs_posix: line %d: %s failed (errno %d %s)\n", __LINE__, #cond, errno,         \
                   strerror(errno));                                                               \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#define FAILS(call, err) CHECK((call) < 0 && errno == (err))

static int exists_in_dir(const char *dir, const char *name)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int found = 0;
    while (d && (de = readdir(d)))
        found |= !strcmp(de->d_name, name);
    if (d)
        closedir(d);
    return found;
}

/* ---- a database in the manner of SQLite ---- */

#define PAGE 512
#define DB   "/tmp/app.db"
#define JRNL "/tmp/app.db-journal"

static void lock(int fd, short type)
{
    struct flock l = {.l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    CHECK(fcntl(fd, F_SETLK, &l) == 0);
    struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    CHECK(fcntl(fd, F_GETLK, &q) == 0 && q.l_type == F_UNLCK);
}

/* Writes page n: the old page goes to the journal first. */
static void tx_write(int db, int jr, int n, const char *text)
{
    char old[PAGE], page[PAGE];
    ssize_t r = pread(db, old, PAGE, (off_t)n * PAGE);
    if (r < PAGE)
        memset(old + (r > 0 ? r : 0), 0, (size_t)(PAGE - (r > 0 ? r : 0)));
    int32_t hdr = n;
    CHECK(write(jr, &hdr, 4) == 4 && write(jr, old, PAGE) == PAGE);
    CHECK(fsync(jr) == 0);
    memset(page, 0, PAGE);
    snprintf(page, PAGE, "%s", text);
    CHECK(pwrite(db, page, PAGE, (off_t)n * PAGE) == PAGE);
}

static void rollback(int db)
{
    int jr = open(JRNL, O_RDONLY);
    CHECK(jr >= 0);
    int32_t n;
    char old[PAGE];
    while (read(jr, &n, 4) == 4) {
        CHECK(read(jr, old, PAGE) == PAGE);
        CHECK(pwrite(db, old, PAGE, (off_t)n * PAGE) == PAGE);
    }
    close(jr);
    CHECK(unlink(JRNL) == 0);
}

static void minidb(void)
{
    char schema[4096];
    int s = open("/etc/schema.sql", O_RDONLY | O_CLOEXEC);
    CHECK(s >= 0);
    ssize_t n = read(s, schema, sizeof(schema) - 1);
    CHECK(n > 0);
    schema[n] = 0;
    close(s);
    CHECK(strstr(schema, "CREATE TABLE kv") != NULL);

    int db = open(DB, O_RDWR | O_CREAT, 0644);
    CHECK(db >= 0);
    lock(db, F_WRLCK);
    /* page 0: the schema; pages 1-3: rows, in one committed transaction */
    int jr = open(JRNL, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(jr >= 0);
    tx_write(db, jr, 0, schema);
    tx_write(db, jr, 1, "k1=v1");
    tx_write(db, jr, 2, "k2=v2");
    CHECK(fsync(db) == 0);
    close(jr);
    CHECK(unlink(JRNL) == 0); /* commit */
    CHECK(access(JRNL, F_OK) < 0 && errno == ENOENT);

    /* a second transaction that "crashes": the journal stays behind */
    jr = open(JRNL, O_RDWR | O_CREAT | O_TRUNC, 0644);
    tx_write(db, jr, 2, "k2=CORRUPT");
    tx_write(db, jr, 5, "k5=new");
    close(jr);
    close(db);

    /* reopen: a hot journal means roll back */
    db = open(DB, O_RDWR);
    CHECK(db >= 0);
    lock(db, F_RDLCK);
    struct stat st;
    CHECK(stat(JRNL, &st) == 0 && st.st_size == 2 * (4 + PAGE));
    rollback(db);
    CHECK(ftruncate(db, 3 * PAGE) == 0); /* the size before the transaction */
    char page[PAGE];
    CHECK(pread(db, page, PAGE, 2 * PAGE) == PAGE && !strcmp(page, "k2=v2"));
    CHECK(pread(db, page, PAGE, 1 * PAGE) == PAGE && !strcmp(page, "k1=v1"));
    CHECK(fstat(db, &st) == 0 && st.st_size == 3 * PAGE && S_ISREG(st.st_mode));
    lock(db, F_UNLCK);
    close(db);
    CHECK(rename(DB, "/tmp/app2.db") == 0);
    CHECK(stat("/tmp/app2.db", &st) == 0 && st.st_size == 3 * PAGE);
    CHECK(unlink("/tmp/app2.db") == 0);
    printf("fs_posix: minidb ok\n");
}

int main(void)
{
    struct stat st;
    char buf[256];

    /* the root: files, stat, symlinks, directories */
    FILE *f = fopen("/etc/app.json", "r");
    CHECK(f != NULL);
    CHECK(fgets(buf, sizeof(buf), f) && strstr(buf, "\"name\""));
    fclose(f);
    CHECK(stat("/etc/app.json", &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0);
    CHECK(lstat("/etc/link", &st) == 0 && S_ISLNK(st.st_mode));
    CHECK(stat("/etc/link", &st) == 0 && S_ISREG(st.st_mode));
    CHECK(readlink("/etc/link", buf, sizeof(buf)) == 8 && !memcmp(buf, "app.json", 8));
    FAILS(readlink("/etc/app.json", buf, sizeof(buf)), EINVAL);
    CHECK(stat("/etc/../etc/./app.json", &st) == 0);
    CHECK(stat("/..", &st) == 0 && S_ISDIR(st.st_mode));
    CHECK(access("/etc/app.json", R_OK) == 0);
    FAILS(access("/etc/app.json", W_OK), EROFS);
    FAILS(stat("/nonexistent", &st), ENOENT);
    FAILS(stat("/etc/app.json/x", &st), ENOTDIR);
    FAILS(stat("/etc/app.json/", &st), ENOTDIR);
    FAILS(open("/etc/app.json", O_WRONLY), EROFS);
    FAILS(open("/etc/new", O_WRONLY | O_CREAT, 0644), EROFS);
    FAILS(open("/etc", O_WRONLY), EISDIR);
    FAILS(open("/etc/app.json", O_RDONLY | O_DIRECTORY), ENOTDIR);
    FAILS(open("/etc/link", O_RDONLY | O_NOFOLLOW), ELOOP);
    FAILS(mkdir("/etc/d", 0755), EROFS);
    FAILS(mkdir("/etc", 0755), EEXIST);
    FAILS(unlink("/etc/app.json"), EROFS);
    FAILS(unlink("/etc"), EISDIR);
    FAILS(rmdir("/etc/app.json"), ENOTDIR);
    FAILS(rename("/etc/app.json", "/tmp/x"), EXDEV);
    FAILS(open("", O_RDONLY), ENOENT);
    char longname[300];
    memset(longname, 'a', 299);
    longname[0] = '/';
    longname[299] = 0;
    FAILS(stat(longname, &st), ENAMETOOLONG);
    CHECK(exists_in_dir("/", "etc") && exists_in_dir("/etc", "app.json"));
    CHECK(exists_in_dir("/dev", "null") && exists_in_dir("/dev", "vda"));

    /* cwd */
    CHECK(chdir("/etc") == 0);
    CHECK(getcwd(buf, sizeof(buf)) && !strcmp(buf, "/etc"));
    CHECK(stat("app.json", &st) == 0);
    CHECK(chdir("..") == 0 && getcwd(buf, sizeof(buf)) && !strcmp(buf, "/"));
    FAILS(chdir("/etc/app.json"), ENOTDIR);
    int dfd = open("/etc", O_RDONLY | O_DIRECTORY);
    CHECK(dfd >= 0);
    CHECK(fstatat(dfd, "app.json", &st, 0) == 0);
    int fd = openat(dfd, "link", O_RDONLY);
    CHECK(fd >= 0);
    close(fd);
    FAILS(read(dfd, buf, 1), EISDIR);
    close(dfd);

    /* /dev */
    fd = open("/dev/null", O_RDWR);
    CHECK(fd >= 0 && write(fd, "x", 1) == 1 && read(fd, buf, 1) == 0);
    close(fd);
    fd = open("/dev/zero", O_RDONLY);
    CHECK(fd >= 0 && read(fd, buf, 8) == 8 && buf[0] == 0 && buf[7] == 0);
    close(fd);
    fd = open("/dev/urandom", O_RDONLY);
    CHECK(fd >= 0 && read(fd, buf, 16) == 16);
    close(fd);
    CHECK(stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == ((1 << 8) | 3));
    fd = open("/dev/vda", O_RDONLY);
    CHECK(fd >= 0 && fstat(fd, &st) == 0 && S_ISBLK(st.st_mode) && st.st_size > 0);
    close(fd);
    FAILS(open("/dev/nope", O_RDONLY), ENOENT);

    /* /tmp */
    fd = open("/tmp/a.txt", O_RDWR | O_CREAT | O_EXCL, 0600);
    CHECK(fd >= 0);
    CHECK(write(fd, "hello world", 11) == 11);
    CHECK(lseek(fd, 0, SEEK_SET) == 0 && read(fd, buf, 11) == 11 &&
          !memcmp(buf, "hello world", 11));
    CHECK(ftruncate(fd, 5) == 0 && fstat(fd, &st) == 0 && st.st_size == 5);
    CHECK(pwrite(fd, "!", 1, 100000) == 1 && fstat(fd, &st) == 0 && st.st_size == 100001);
    CHECK(pread(fd, buf, 4, 50000) == 4 && buf[0] == 0 && buf[3] == 0);
    close(fd);
    FAILS(open("/tmp/a.txt", O_RDWR | O_CREAT | O_EXCL, 0600), EEXIST);
    fd = open("/tmp/a.txt", O_WRONLY | O_APPEND);
    CHECK(fd >= 0 && write(fd, "Z", 1) == 1);
    close(fd);
    CHECK(stat("/tmp/a.txt", &st) == 0 && st.st_size == 100002);
    CHECK(mkdir("/tmp/d", 0755) == 0);
    FAILS(mkdir("/tmp/d", 0755), EEXIST);
    CHECK(rename("/tmp/a.txt", "/tmp/d/b.txt") == 0);
    FAILS(stat("/tmp/a.txt", &st), ENOENT);
    CHECK(exists_in_dir("/tmp/d", "b.txt"));
    FAILS(rmdir("/tmp/d"), ENOTEMPTY);
    FAILS(rename("/tmp/d", "/tmp/d/e"), EINVAL);
    fd = open("/tmp/d/b.txt", O_RDONLY);
    CHECK(unlink("/tmp/d/b.txt") == 0);
    CHECK(read(fd, buf, 5) == 5 && !memcmp(buf, "hello", 5)); /* still open: still there */
    close(fd);
    CHECK(rmdir("/tmp/d") == 0);
    FAILS(unlink("/tmp/d"), ENOENT);
    CHECK(symlink("/etc/app.json", "/tmp/l") == 0);
    CHECK(stat("/tmp/l", &st) == 0 && S_ISREG(st.st_mode));
    CHECK(readlink("/tmp/l", buf, sizeof(buf)) == 13);
    CHECK(unlink("/tmp/l") == 0);
    FAILS(open("/tmp/nodir/x", O_CREAT | O_WRONLY, 0644), ENOENT);
    f = fopen("/tmp/f.txt", "w+");
    CHECK(f && fprintf(f, "line %d\n", 42) > 0 && fflush(f) == 0);
    rewind(f);
    CHECK(fgets(buf, sizeof(buf), f) && !strcmp(buf, "line 42\n"));
    fclose(f);
    CHECK(remove("/tmp/f.txt") == 0);
    char tmpl[] = "/tmp/tmpXXXXXX";
    fd = mkstemp(tmpl);
    CHECK(fd >= 0);
    close(fd);
    CHECK(unlink(tmpl) == 0);

    minidb();
    printf("fs_posix: %d checks ok\n", checks);
    return 0;
}
