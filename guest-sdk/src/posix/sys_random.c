/* sys_random.c: random bytes for getrandom(2).
 *
 * RDRAND where CPUID.1:ECX[30] says it exists (retrying, as Intel's DRNG
 * guide recommends, 10 times per word). Otherwise a xoshiro256** generator
 * seeded from the boot-info entropy (the host's getrandom under ember) mixed
 * with the TSC, reseeded after a snapshot restore: fine for hash seeds and the like, not a
 * cryptographic generator (README.md says so).
 */
#include "sdk.h"

static uint64_t state[4];
int ember_cpu_has_rdrand(void)
{
    return (ember_cpuid1[2] >> 30) & 1;
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void ember_random_init(void)
{
    uint64_t seed = rdtsc();
    for (unsigned i = 0; i < 4; i++) {
        uint64_t e;
        sdk_memcpy(&e, ember_bi.entropy + 8 * i, 8);
        seed ^= e;
        state[i] = splitmix64(&seed);
    }
}

/* A restore (boot_restore.c): the generator's state was copied into every
 * VM restored from the snapshot; mixing in the monitor's fresh entropy
 * makes each one's stream its own. */
void ember_random_reseed(const uint8_t entropy[32])
{
    uint64_t seed = rdtsc();
    for (unsigned i = 0; i < 4; i++) {
        uint64_t e;
        sdk_memcpy(&e, entropy + 8 * i, 8);
        seed ^= e ^ state[i];
        state[i] = splitmix64(&seed);
    }
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t xoshiro(void)
{
    uint64_t result = rotl(state[1] * 5, 7) * 9;
    uint64_t t = state[1] << 17;
    state[2] ^= state[0];
    state[3] ^= state[1];
    state[1] ^= state[2];
    state[0] ^= state[3];
    state[2] ^= t;
    state[3] = rotl(state[3], 45);
    return result;
}

static int rdrand64(uint64_t *v)
{
    for (int i = 0; i < 10; i++) {
        unsigned char ok;
        __asm__ volatile("rdrand %0; setc %1" : "=r"(*v), "=qm"(ok) : : "cc");
        if (ok)
            return 1;
    }
    return 0;
}

void ember_random_fill(void *buf, size_t len)
{
    unsigned char *p = buf;
    ember_restore_poll();
    while (len > 0) {
        uint64_t v;
        if (!(ember_cpu_has_rdrand() && rdrand64(&v)))
            v = xoshiro();
        size_t n = len < 8 ? len : 8;
        sdk_memcpy(p, &v, n);
        p += n;
        len -= n;
    }
}
