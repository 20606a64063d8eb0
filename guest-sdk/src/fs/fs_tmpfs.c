/* fs_tmpfs.c: /tmp, a writable file system in guest RAM.
 *
 * Nodes are small objects (fs_alloc); a node id is its address. A
 * directory keeps its entries in a list in creation order, each with a
 * sequence number that readdir uses as its cookie (so entries added or
 * removed while a program reads the directory neither repeat nor skip the
 * others, as POSIX asks). A regular file's data is an array of page
 * pointers; a page never written is a hole and reads as zeroes. Memory comes
 * from the heap page by page: when it runs out a write, a create or a mkdir
 * fails with ENOSPC (ENOMEM for the node itself), never the guest.
 * An unlinked file stays readable through the fds still open on it and is
 * freed at the last close (hold()).
 */
#include <errno.h>
#include <sys/stat.h>

#include "fs/fs_vfs.h"
#include "sdk.h"

#define PG PAGE_SIZE

struct tdirent;

struct tnode {
    uint32_t mode, nlink;
    int32_t open;
    uint64_t ino;
    uint64_t size;
    int64_t atime, mtime, ctime;
    struct tnode *parent; /* directories */
    struct tdirent *first, *last;
    uint64_t next_seq;
    uint8_t **pages; /* regular files: ceil(size / PG) slots in npslots */
    uint64_t npslots;
    char *link; /* symlinks: NUL-terminated, in a slab object */
};

struct tdirent {
    struct tdirent *next, *prev;
    struct tnode *node;
    uint64_t seq;
    uint16_t len;
    char name[];
};

static struct tnode *troot;
static uint64_t next_ino = 2;

static struct tnode *N(uint64_t id)
{
    return (struct tnode *)(uintptr_t)id;
}

static struct tnode *new_node(uint32_t mode)
{
    struct tnode *n = fs_alloc(sizeof(*n));
    if (!n)
        return NULL;
    n->mode = mode;
    n->nlink = S_ISDIR(mode) ? 2 : 1;
    n->ino = next_ino++;
    n->atime = n->mtime = n->ctime = fs_now_ns();
    n->next_seq = 3; /* 1 and 2 are "." and ".." */
    return n;
}

uint64_t fs_tmpfs_root(void)
{
    if (!troot) {
        troot = new_node(S_IFDIR | 01777);
        if (troot)
            troot->parent = troot;
    }
    return (uint64_t)(uintptr_t)troot;
}

static void free_data(struct tnode *n, uint64_t from_page)
{
    for (uint64_t i = from_page; i < n->npslots; i++) {
        fs_pages_free(n->pages[i], 1);
        n->pages[i] = NULL;
    }
}

static void free_node(struct tnode *n)
{
    if (S_ISREG(n->mode)) {
        free_data(n, 0);
        fs_pages_free(n->pages, ALIGN_UP(n->npslots * sizeof(void *), PG) / PG);
    }
    if (n->link)
        fs_free(n->link, sdk_strnlen(n->link, 4096) + 1);
    fs_free(n, sizeof(*n));
}

static void maybe_free(struct tnode *n)
{
    if (n->nlink == 0 && n->open == 0)
        free_node(n);
}

static struct tdirent *find(struct tnode *d, const char *name, size_t len)
{
    for (struct tdirent *e = d->first; e; e = e->next)
        if (e->len == len) {
            size_t i = 0;
            while (i < len && e->name[i] == name[i])
                i++;
            if (i == len)
                return e;
        }
    return NULL;
}

static int tmp_lookup(uint64_t dir, const char *name, size_t len, uint64_t *out)
{
    struct tnode *d = N(dir);
    if (!S_ISDIR(d->mode))
        return -ENOTDIR;
    if (len == 2 && name[0] == '.' && name[1] == '.') {
        *out = (uint64_t)(uintptr_t)d->parent;
        return 0;
    }
    struct tdirent *e = find(d, name, len);
    if (!e)
        return -ENOENT;
    *out = (uint64_t)(uintptr_t)e->node;
    return 0;
}

static void set_time(struct timespec *ts, int64_t ns)
{
    ts->tv_sec = ns / 1000000000;
    ts->tv_nsec = ns % 1000000000;
}

static int tmp_stat(uint64_t id, struct stat *st)
{
    struct tnode *n = N(id);
    st->st_ino = n->ino;
    st->st_mode = n->mode;
    st->st_nlink = n->nlink;
    st->st_size = (off_t)(S_ISDIR(n->mode) ? 4096 : n->size);
    uint64_t pages = 0;
    for (uint64_t i = 0; i < n->npslots; i++)
        pages += n->pages[i] != NULL;
    st->st_blocks = (blkcnt_t)(pages * (PG / 512));
    set_time(&st->st_atim, n->atime);
    set_time(&st->st_mtim, n->mtime);
    set_time(&st->st_ctim, n->ctime);
    return 0;
}

static long tmp_readlink(uint64_t id, char *buf, size_t len)
{
    struct tnode *n = N(id);
    if (!n->link)
        return -EINVAL;
    size_t l = sdk_strnlen(n->link, 4096);
    if (l > len)
        l = len;
    sdk_memcpy(buf, n->link, l);
    return (long)l;
}

static long tmp_pread(uint64_t id, void *buf, size_t len, uint64_t off)
{
    struct tnode *n = N(id);
    if (off >= n->size)
        return 0;
    if (len > n->size - off)
        len = (size_t)(n->size - off);
    uint8_t *out = buf;
    for (size_t done = 0; done < len;) {
        uint64_t p = (off + done) / PG, in = (off + done) % PG;
        size_t k = PG - in < len - done ? (size_t)(PG - in) : len - done;
        if (p < n->npslots && n->pages[p])
            sdk_memcpy(out + done, n->pages[p] + in, k);
        else
            sdk_memset(out + done, 0, k);
        done += k;
    }
    n->atime = fs_now_ns();
    return (long)len;
}

/* Makes room for slot index p in the page array. */
static int grow_slots(struct tnode *n, uint64_t p)
{
    if (p < n->npslots)
        return 0;
    uint64_t want = n->npslots ? n->npslots : PG / sizeof(void *);
    while (want <= p)
        want *= 2;
    if (want > (1ull << 40) / sizeof(void *))
        return -EFBIG;
    size_t pages = ALIGN_UP(want * sizeof(void *), PG) / PG;
    uint8_t **np = fs_pages(pages);
    if (!np)
        return -ENOSPC;
    if (n->pages) {
        sdk_memcpy(np, n->pages, n->npslots * sizeof(void *));
        fs_pages_free(n->pages, ALIGN_UP(n->npslots * sizeof(void *), PG) / PG);
    }
    n->pages = np;
    n->npslots = want;
    return 0;
}

static long tmp_pwrite(uint64_t id, const void *buf, size_t len, uint64_t off)
{
    struct tnode *n = N(id);
    if (S_ISLNK(n->mode)) { /* symlinkat() stores its target this way */
        char *l = fs_alloc(len + 1);
        if (!l)
            return -ENOSPC;
        sdk_memcpy(l, buf, len);
        l[len] = '\0';
        n->link = l;
        n->size = len;
        return (long)len;
    }
    if (len == 0)
        return 0;
    if (off + len < off || off + len > (1ull << 40))
        return -EFBIG;
    const uint8_t *in = buf;
    size_t done = 0;
    long err = 0;
    while (done < len) {
        uint64_t p = (off + done) / PG, o = (off + done) % PG;
        size_t k = PG - o < len - done ? (size_t)(PG - o) : len - done;
        if ((err = grow_slots(n, p)) < 0)
            break;
        if (!n->pages[p] && !(n->pages[p] = fs_pages(1))) {
            err = -ENOSPC;
            break;
        }
        sdk_memcpy(n->pages[p] + o, in + done, k);
        done += k;
    }
    if (done && off + done > n->size)
        n->size = off + done;
    if (done)
        n->mtime = n->ctime = fs_now_ns();
    return done ? (long)done : err;
}

static int tmp_readdir(uint64_t dir, uint64_t *cookie, vfs_emit_fn emit, void *arg)
{
    struct tnode *d = N(dir);
    if (*cookie < 1) {
        if (emit(arg, ".", 1, d->ino, 4, 1))
            return 0;
        *cookie = 1;
    }
    if (*cookie < 2) {
        if (emit(arg, "..", 2, d->parent->ino, 4, 2))
            return 0;
        *cookie = 2;
    }
    for (struct tdirent *e = d->first; e; e = e->next) {
        if (e->seq <= *cookie)
            continue;
        if (emit(arg, e->name, e->len, e->node->ino, (e->node->mode >> 12) & 15, e->seq))
            return 0;
        *cookie = e->seq;
    }
    return 0;
}

static int add_entry(struct tnode *d, const char *name, size_t len, struct tnode *n)
{
    struct tdirent *e = fs_alloc(sizeof(*e) + len + 1);
    if (!e)
        return -ENOSPC;
    e->node = n;
    e->len = (uint16_t)len;
    sdk_memcpy(e->name, name, len);
    e->seq = d->next_seq++;
    e->prev = d->last;
    if (d->last)
        d->last->next = e;
    else
        d->first = e;
    d->last = e;
    d->mtime = d->ctime = fs_now_ns();
    return 0;
}

static void drop_entry(struct tnode *d, struct tdirent *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        d->first = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        d->last = e->prev;
    fs_free(e, sizeof(*e) + e->len + 1);
    d->mtime = d->ctime = fs_now_ns();
}

static int tmp_create(uint64_t dir, const char *name, size_t len, mode_t mode, uint64_t *out)
{
    struct tnode *d = N(dir);
    if (!S_ISDIR(d->mode))
        return -ENOTDIR;
    if (d->nlink == 0)
        return -ENOENT; /* a removed directory */
    if (find(d, name, len))
        return -EEXIST;
    struct tnode *n = new_node(mode);
    if (!n)
        return -ENOSPC;
    int r = add_entry(d, name, len, n);
    if (r) {
        free_node(n);
        return r;
    }
    if (S_ISDIR(mode)) {
        n->parent = d;
        d->nlink++;
    }
    *out = (uint64_t)(uintptr_t)n;
    return 0;
}

static int tmp_unlink(uint64_t dir, const char *name, size_t len, int rmdir)
{
    struct tnode *d = N(dir);
    struct tdirent *e = find(d, name, len);
    if (!e)
        return -ENOENT;
    struct tnode *n = e->node;
    if (rmdir) {
        if (!S_ISDIR(n->mode))
            return -ENOTDIR;
        if (n->first)
            return -ENOTEMPTY;
        drop_entry(d, e);
        d->nlink--;
        n->nlink = 0;
    } else {
        if (S_ISDIR(n->mode))
            return -EISDIR;
        drop_entry(d, e);
        n->nlink--;
        n->ctime = fs_now_ns();
    }
    maybe_free(n);
    return 0;
}

static int tmp_rename(uint64_t odir, const char *oname, size_t olen, uint64_t ndir,
                      const char *nname, size_t nlen, int noreplace)
{
    struct tnode *od = N(odir), *nd = N(ndir);
    struct tdirent *oe = find(od, oname, olen);
    if (!oe)
        return -ENOENT;
    if (!S_ISDIR(nd->mode))
        return -ENOTDIR;
    struct tnode *n = oe->node;
    struct tdirent *ne = find(nd, nname, nlen);
    if (ne && ne->node == n)
        return 0; /* the same file: nothing to do, as POSIX says */
    if (ne && noreplace)
        return -EEXIST;
    if (S_ISDIR(n->mode)) {
        for (struct tnode *a = nd;; a = a->parent) { /* not into itself */
            if (a == n)
                return -EINVAL;
            if (a == a->parent)
                break;
        }
        if (ne && !S_ISDIR(ne->node->mode))
            return -ENOTDIR;
        if (ne && ne->node->first)
            return -ENOTEMPTY;
    } else if (ne && S_ISDIR(ne->node->mode)) {
        return -EISDIR;
    }
    /* the new entry first, so that running out of memory changes nothing */
    struct tnode *victim = ne ? ne->node : NULL;
    if (ne) {
        ne->node = n;
    } else {
        int r = add_entry(nd, nname, nlen, n);
        if (r)
            return r;
    }
    drop_entry(od, oe);
    if (S_ISDIR(n->mode) && od != nd) {
        od->nlink--;
        nd->nlink++;
        n->parent = nd;
    }
    n->ctime = fs_now_ns();
    if (victim) {
        if (S_ISDIR(victim->mode)) {
            victim->nlink = 0;
            nd->nlink--;
        } else {
            victim->nlink--;
        }
        maybe_free(victim);
    }
    return 0;
}

static int tmp_truncate(uint64_t id, uint64_t size)
{
    struct tnode *n = N(id);
    if (size > (1ull << 40))
        return -EFBIG;
    if (size < n->size) {
        uint64_t keep = (size + PG - 1) / PG;
        free_data(n, keep);
        if (size % PG && keep - 1 < n->npslots && n->pages[keep - 1])
            sdk_memset(n->pages[keep - 1] + size % PG, 0, PG - size % PG);
    }
    n->size = size;
    n->mtime = n->ctime = fs_now_ns();
    return 0;
}

static int tmp_link(uint64_t id, uint64_t dir, const char *name, size_t len)
{
    struct tnode *n = N(id), *d = N(dir);
    if (find(d, name, len))
        return -EEXIST;
    int r = add_entry(d, name, len, n);
    if (r == 0) {
        n->nlink++;
        n->ctime = fs_now_ns();
    }
    return r;
}

static int tmp_setattr(uint64_t id, int has_mode, mode_t mode, const int64_t *at, const int64_t *mt)
{
    struct tnode *n = N(id);
    if (has_mode)
        n->mode = (n->mode & S_IFMT) | (mode & 07777);
    if (at)
        n->atime = *at;
    if (mt)
        n->mtime = *mt;
    n->ctime = fs_now_ns();
    return 0;
}

static void tmp_hold(uint64_t id, int delta)
{
    struct tnode *n = N(id);
    n->open += delta;
    maybe_free(n);
}

const struct vfs_fs fs_tmpfs = {
    .name = "tmpfs",
    .dev = 0x1b,
    .lookup = tmp_lookup,
    .stat = tmp_stat,
    .readlink = tmp_readlink,
    .pread = tmp_pread,
    .readdir = tmp_readdir,
    .pwrite = tmp_pwrite,
    .create = tmp_create,
    .unlink = tmp_unlink,
    .rename = tmp_rename,
    .truncate = tmp_truncate,
    .link = tmp_link,
    .setattr = tmp_setattr,
    .hold = tmp_hold,
};
