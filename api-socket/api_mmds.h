/* api_mmds.h: the metadata service as the API sees it: PUT/PATCH/GET /mmds
 * on the data store (mmds/mmds_store.h), PUT /mmds/config (and the config
 * file's "mmds-config") for the version, the interfaces that reach it and
 * its address, --metadata FILE and --mmds-size-limit. The store lives as
 * long as the process; at InstanceStart every named interface gets an MMDS
 * responder in its transmit path (api_vmm.c).
 */
#ifndef EMBER_API_MMDS_H
#define EMBER_API_MMDS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "api-socket/api_json.h"
#include "mmds/mmds_store.h"

#define API_MMDS_IFACES_MAX 16

struct api_resources;

struct api_mmds {
    struct mmds_store *store; /* owned; a pointer so a const api_resources still reaches it */
    bool configured;          /* PUT /mmds/config was accepted */
    bool imds_compat;
    unsigned nifaces;
    char ifaces[API_MMDS_IFACES_MAX][65];
    uint32_t ipv4; /* network order */
};

int api_mmds_init(struct api_mmds *m, size_t size_limit);
void api_mmds_release(struct api_mmds *m);
void api_mmds_set_limit(struct api_mmds *m, size_t size_limit);
int api_mmds_put(struct api_mmds *m, const json_t *body, struct api_err *e);
int api_mmds_patch(struct api_mmds *m, const json_t *body, struct api_err *e);
json_t *api_mmds_get(const struct api_mmds *m);
/* PUT /mmds/config: the interfaces must exist in res. */
int api_mmds_put_config(struct api_mmds *m, const struct api_resources *res, const json_t *body,
                        struct api_err *e);
/* The "mmds-config" object of GET /vm/config, or NULL when not configured. */
json_t *api_mmds_config_json(const struct api_mmds *m);
/* --metadata FILE: the file's JSON as the first PUT /mmds. */
int api_mmds_load_file(struct api_mmds *m, const char *path, struct api_err *e);
bool api_mmds_on_iface(const struct api_mmds *m, const char *iface_id);

#endif
