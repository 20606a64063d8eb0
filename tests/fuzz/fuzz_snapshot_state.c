/* fuzz_snapshot_state.c: the snapshot state-file parser against arbitrary
 * bytes. It must refuse or accept without reading out of bounds, a refusal
 * always says why, and an accepted state encodes again.
 *
 * Mutated files almost always fail the checksum, which would leave the body
 * parser unexercised: when the first byte is even, the rest of the input is
 * taken as the body and wrapped in a valid header and checksum. */
#include <cbor.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "monitor/snapshot_state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t *data, size_t size)
{
    static struct snapshot_state st;
    char why[512] = "";
    size_t len = 0;

    if (snapshot_state_decode(data, size, &st, why, sizeof(why)) == 0) {
        free(snapshot_state_encode(&st, &len));
        snapshot_state_release(&st);
    } else if (why[0] == '\0') {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t digest[32];
    unsigned char *out = NULL;
    size_t cap = 0, n;

    check(data, size);
    if (size == 0 || (data[0] & 1))
        return 0;
    snapshot_sha256(data + 1, size - 1, digest);
    cbor_item_t *a = cbor_new_definite_array(4);
    if (!a)
        return 0;
    cbor_array_push(a, cbor_move(cbor_build_string(SNAPSHOT_MAGIC)));
    cbor_array_push(a, cbor_move(cbor_build_uint8(SNAPSHOT_FORMAT_VERSION)));
    cbor_array_push(a, cbor_move(cbor_build_bytestring(data + 1, size - 1)));
    cbor_array_push(a, cbor_move(cbor_build_bytestring(digest, sizeof(digest))));
    n = cbor_serialize_alloc(a, &out, &cap);
    cbor_decref(&a);
    if (n)
        check(out, n);
    free(out);
    return 0;
}
