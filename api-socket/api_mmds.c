/* api_mmds.c: the MMDS endpoints and configuration (see api_mmds.h). */
#include "api-socket/api_mmds.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api-socket/api_resources.h"
#include "mmds/mmds_stack.h"

int api_mmds_init(struct api_mmds *m, size_t size_limit)
{
    memset(m, 0, sizeof(*m));
    m->store = malloc(sizeof(*m->store));
    if (!m->store)
        return -1;
    mmds_store_init(m->store, size_limit);
    inet_pton(AF_INET, MMDS_IPV4_DEFAULT, &m->ipv4);
    return 0;
}

void api_mmds_release(struct api_mmds *m)
{
    if (m->store) {
        mmds_store_release(m->store);
        free(m->store);
    }
    memset(m, 0, sizeof(*m));
}

void api_mmds_set_limit(struct api_mmds *m, size_t size_limit)
{
    if (m->store)
        m->store->limit = size_limit;
}

int api_mmds_put(struct api_mmds *m, const json_t *body, struct api_err *e)
{
    char err[API_ERR_MAX];

    if (!m->store)
        return api_errf(e, "out of memory");

    if (mmds_store_put(m->store, body, err, sizeof(err)) < 0)
        return api_errf(e, "%s", err);
    return 0;
}

int api_mmds_patch(struct api_mmds *m, const json_t *body, struct api_err *e)
{
    char err[API_ERR_MAX];

    if (!m->store)
        return api_errf(e, "out of memory");

    if (mmds_store_patch(m->store, body, err, sizeof(err)) < 0)
        return api_errf(e, "%s", err);
    return 0;
}

json_t *api_mmds_get(const struct api_mmds *m)
{
    return m->store ? mmds_store_get(m->store) : NULL;
}

static const char *const config_fields[] = {"version", "network_interfaces", "ipv4_address",
                                            "imds_compat", NULL};
static const char *const versions[] = {"V1", "V2", NULL};

int api_mmds_put_config(struct api_mmds *m, const struct api_resources *res, const json_t *body,
                        struct api_err *e)
{
    struct api_mmds next = *m;
    const char *addr = NULL;
    json_t *list, *item;
    size_t i;
    int version;

    if (!m->store)
        return api_errf(e, "out of memory");
    if (api_json_only_fields(body, "", config_fields, e) < 0)
        return -1;
    version = MMDS_V1;
    if (api_json_enum(body, "", "version", false, versions, &version, e) < 0)
        return -1;
    if (api_json_string(body, "", "ipv4_address", false, &addr, e) < 0)
        return -1;
    next.imds_compat = false;
    if (api_json_bool(body, "", "imds_compat", false, &next.imds_compat, e) < 0)
        return -1;
    list = json_object_get(body, "network_interfaces");
    if (!list)
        return api_errf(e, "field \"network_interfaces\" is missing");
    if (!json_is_array(list))
        return api_errf(e, "field \"network_interfaces\" must be an array of interface ids");
    if (json_array_size(list) == 0)
        return api_errf(e, "The list of network interface IDs that allow forwarding MMDS "
                           "requests is empty.");
    if (json_array_size(list) > API_MMDS_IFACES_MAX)
        return api_errf(e, "field \"network_interfaces\": at most %d interfaces",
                        API_MMDS_IFACES_MAX);
    next.nifaces = 0;
    json_array_foreach(list, i, item)
    {
        const char *id = json_string_value(item);
        bool found = false;
        if (!id)
            return api_errf(e, "field \"network_interfaces\"[%zu] must be a string", i);
        for (unsigned k = 0; k < res->nnets; k++)
            found |= strcmp(res->nets[k].id, id) == 0;
        if (!found)
            return api_errf(e, "The list of network interface IDs provided contains at least "
                               "one ID that does not correspond to any existing network "
                               "interface.");
        snprintf(next.ifaces[next.nifaces++], sizeof(next.ifaces[0]), "%s", id);
    }
    if (addr) {
        struct in_addr a;
        if (inet_pton(AF_INET, addr, &a) != 1)
            return api_errf(e, "field \"ipv4_address\": \"%.64s\" is not an IPv4 address", addr);
        /* RFC 3927: 169.254.0.0/16, as Firecracker requires. */
        if ((ntohl(a.s_addr) >> 16) != 0xa9fe)
            return api_errf(e, "The MMDS IPv4 address is not link local.");
        next.ipv4 = a.s_addr;
    } else {
        inet_pton(AF_INET, MMDS_IPV4_DEFAULT, &next.ipv4);
    }
    next.configured = true;
    *m = next;
    m->store->version = version == MMDS_V2 ? MMDS_V2 : MMDS_V1;
    return 0;
}

json_t *api_mmds_config_json(const struct api_mmds *m)
{
    char addr[INET_ADDRSTRLEN];
    json_t *o, *list;

    if (!m->configured)
        return NULL;
    inet_ntop(AF_INET, &m->ipv4, addr, sizeof(addr));
    list = json_array();
    for (unsigned i = 0; i < m->nifaces; i++)
        json_array_append_new(list, json_string(m->ifaces[i]));
    o = json_pack("{s:s, s:o, s:s, s:b}", "version", m->store->version == MMDS_V2 ? "V2" : "V1",
                  "network_interfaces", list, "ipv4_address", addr, "imds_compat", m->imds_compat);
    return o;
}

int api_mmds_load_file(struct api_mmds *m, const char *path, struct api_err *e)
{
    json_error_t jerr;
    json_t *doc = json_load_file(path, JSON_DECODE_ANY, &jerr);
    int rc;

    if (!doc)
        return api_errf(e, "--metadata %.200s: %s (line %d)", path, jerr.text, jerr.line);
    rc = api_mmds_put(m, doc, e);
    json_decref(doc);
    if (rc < 0) {
        char why[API_ERR_MAX];
        snprintf(why, sizeof(why), "%s", e->msg);
        return api_errf(e, "--metadata %.200s: %s", path, why);
    }
    return 0;
}

bool api_mmds_on_iface(const struct api_mmds *m, const char *iface_id)
{
    for (unsigned i = 0; m->configured && i < m->nifaces; i++)
        if (strcmp(m->ifaces[i], iface_id) == 0)
            return true;
    return false;
}
