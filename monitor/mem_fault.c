/* mem_fault.c: the SIGBUS handler for watched file-backed memory (see
 * mem_fault.h). The handler is installed once per process and reads a small
 * table of watched regions with atomic loads only, so it is safe on any
 * thread at any time. */
#include "monitor/mem_fault.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define PAGE 4096u
/* A process watches its VM's RAM and, while a restore hashes it, a memory
 * file: a few slots are plenty. */
#define SLOTS 8

static struct mem_fault_region *slots[SLOTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static bool installed;
/* What SIGBUS did before: what it does again for a SIGBUS not ours. */
static struct sigaction previous;

/* Not ours: SIGBUS gets back what it had before (the default action in
 * `ember`), and is delivered again. A fault raised by an access happens
 * again when the handler returns; a signal someone sent is sent again (it
 * is blocked in this handler, and arrives once the handler returns). */
static void fall_back(int sig, const siginfo_t *si)
{
    sigaction(sig, &previous, NULL);
    if (si->si_code <= 0 || si->si_code == BUS_MCEERR_AO)
        raise(sig);
}

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
    uintptr_t a = (uintptr_t)si->si_addr;
    int saved = errno;

    (void)uc;
    if (si->si_code == BUS_ADRERR) {
        for (int i = 0; i < SLOTS; i++) {
            struct mem_fault_region *r = __atomic_load_n(&slots[i], __ATOMIC_ACQUIRE);
            uintptr_t start = r ? (uintptr_t)r->start : 0;
            if (!r || a < start || a - start >= r->len)
                continue;
            uintptr_t page = a & ~(uintptr_t)(PAGE - 1);
            /* The access completes on a page of zeros; the owner stops
             * whatever reads it (the guest's data is gone either way). */
            void *p = mmap((void *)page, PAGE, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
            if (p == MAP_FAILED)
                break;
            uint64_t none = 0;
            __atomic_compare_exchange_n(&r->first, &none, (uint64_t)(page - start) + 1, false,
                                        __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
            if (r->notify)
                r->notify(r->arg);
            errno = saved;
            return;
        }
    }
    fall_back(sig, si);
    errno = saved;
}

int mem_fault_watch(struct mem_fault_region *r, char *err, size_t errlen)
{
    int rc = -1;

    pthread_mutex_lock(&lock);
    if (!installed) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = on_sigbus;
        sa.sa_flags = SA_SIGINFO;
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGBUS, &sa, &previous) != 0) {
            snprintf(err, errlen, "SIGBUS handler: %s", strerror(errno));
            goto out;
        }
        installed = true;
    }
    __atomic_store_n(&r->first, 0, __ATOMIC_RELAXED);
    for (int i = 0; i < SLOTS; i++)
        if (!slots[i]) {
            __atomic_store_n(&slots[i], r, __ATOMIC_RELEASE);
            rc = 0;
            goto out;
        }
    snprintf(err, errlen, "more than %d file-backed memory regions", SLOTS);
out:
    pthread_mutex_unlock(&lock);
    return rc;
}

void mem_fault_unwatch(struct mem_fault_region *r)
{
    pthread_mutex_lock(&lock);
    for (int i = 0; i < SLOTS; i++)
        if (slots[i] == r)
            __atomic_store_n(&slots[i], NULL, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&lock);
}

int mem_fault_first(const struct mem_fault_region *r, uint64_t *off)
{
    uint64_t f = __atomic_load_n(&r->first, __ATOMIC_ACQUIRE);

    if (!f)
        return 0;
    *off = f - 1;
    return 1;
}
