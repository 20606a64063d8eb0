/* vm_config.c: defaults and host-independent checks of a VM configuration. */
#include "monitor/vm_config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void vm_config_init(struct vm_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->mem_mib = VM_MEM_MIB_DEFAULT;
    cfg->vcpu_count = 1;
}

void vm_config_release(struct vm_config *cfg)
{
    for (unsigned i = 0; i < cfg->ndrives; i++)
        free(cfg->drives[i].path);
    free(cfg->vsock.uds_path);
    free(cfg->kernel_path);
    free(cfg->progname);
    free(cfg->boot_args);
    free(cfg->env_args);
    free(cfg->restore_path);
    free(cfg->restore_mem_path);
    free(cfg->snapshot_on_ready);
    vm_config_init(cfg);
}

static bool valid_id(const char *id)
{
    size_t n = strlen(id);

    if (n == 0 || n > BLK_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)id[i]) && id[i] != '_')
            return false;
    return true;
}

int vm_config_add_drive(struct vm_config *cfg, const struct blk_config *drive, char *err,
                        size_t errlen)
{
    if (!valid_id(drive->id)) {
        snprintf(err, errlen, "drive id \"%s\": use 1 to %u of [A-Za-z0-9_]", drive->id,
                 BLK_ID_MAX);
        return -1;
    }
    if (!drive->path || !drive->path[0]) {
        snprintf(err, errlen, "drive \"%s\": no path_on_host", drive->id);
        return -1;
    }
    for (unsigned i = 0; i < cfg->ndrives; i++) {
        if (strcmp(cfg->drives[i].id, drive->id) == 0) {
            snprintf(err, errlen, "drive \"%s\" given twice", drive->id);
            return -1;
        }
    }
    if (cfg->ndrives == VM_DRIVES_MAX) {
        snprintf(err, errlen, "too many drives (at most %u)", VM_DRIVES_MAX);
        return -1;
    }
    cfg->drives[cfg->ndrives] = *drive;
    cfg->drives[cfg->ndrives].path = strdup(drive->path);
    if (!cfg->drives[cfg->ndrives].path) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    cfg->ndrives++;
    return 0;
}

int vm_config_add_net(struct vm_config *cfg, const struct net_config *net, char *err, size_t errlen)
{
    if (!valid_id(net->id)) {
        snprintf(err, errlen, "network interface id \"%s\": use 1 to %u of [A-Za-z0-9_]", net->id,
                 NET_ID_MAX);
        return -1;
    }
    if (!net->host_dev_name[0]) {
        snprintf(err, errlen, "network interface \"%s\": no host_dev_name", net->id);
        return -1;
    }
    for (unsigned i = 0; i < cfg->nnets; i++) {
        const struct net_config *o = &cfg->nets[i];
        if (strcmp(o->id, net->id) == 0) {
            snprintf(err, errlen, "network interface \"%s\" given twice", net->id);
            return -1;
        }
        if (strcmp(o->host_dev_name, net->host_dev_name) == 0) {
            snprintf(err, errlen, "network interface \"%s\": tap %s is already used by \"%s\"",
                     net->id, net->host_dev_name, o->id);
            return -1;
        }
        if (net->has_mac && o->has_mac && memcmp(o->mac, net->mac, 6) == 0) {
            snprintf(err, errlen, "network interface \"%s\": guest MAC is already used by \"%s\"",
                     net->id, o->id);
            return -1;
        }
    }
    if (cfg->nnets == VM_NETS_MAX) {
        snprintf(err, errlen, "too many network interfaces (at most %u)", VM_NETS_MAX);
        return -1;
    }
    cfg->nets[cfg->nnets++] = *net;
    return 0;
}

char *vm_config_cmdline(const struct vm_config *cfg, bool sdk_guest)
{
    const char *env = cfg->env_args ? cfg->env_args : "";
    const char *args = cfg->boot_args ? cfg->boot_args : "";
    const char *dashes = sdk_guest && cfg->args_dashes && *args ? "-- " : "";
    char *out;

    if (asprintf(&out, "%s%s%s%s", env, *env && *args ? " " : "", dashes, args) < 0)
        return NULL;
    return out;
}

int vm_config_check(const struct vm_config *cfg, char *err, size_t errlen)
{
    if (!cfg->kernel_path || !cfg->kernel_path[0]) {
        snprintf(err, errlen, "no guest kernel given");
        return -1;
    }
    if (cfg->mem_mib < VM_MEM_MIB_MIN || cfg->mem_mib > VM_MEM_MIB_MAX) {
        snprintf(err, errlen, "memory size %u MiB out of range (%u to %u MiB)", cfg->mem_mib,
                 VM_MEM_MIB_MIN, VM_MEM_MIB_MAX);
        return -1;
    }
    if (cfg->vcpu_count != 1) {
        snprintf(err, errlen, "%u vCPUs requested: ember runs single-vCPU microVMs",
                 cfg->vcpu_count);
        return -1;
    }
    char *line = vm_config_cmdline(cfg, true);
    size_t len = line ? strlen(line) : 0;
    free(line);
    if (len >= VM_CMDLINE_MAX) {
        snprintf(err, errlen, "command line too long (%zu bytes, at most %u)", len,
                 VM_CMDLINE_MAX - 1);
        return -1;
    }
    if (cfg->ndrives + cfg->nnets + (cfg->has_vsock ? 1u : 0u) > 16u) {
        snprintf(err, errlen, "too many devices (%u drives, %u network interfaces%s; at most 16)",
                 cfg->ndrives, cfg->nnets, cfg->has_vsock ? ", vsock" : "");
        return -1;
    }
    /* CIDs 0-2 are the hypervisor, local and host; Linux keeps CIDs in 32 bits. */
    if (cfg->has_vsock && (cfg->vsock.guest_cid < 3 || cfg->vsock.guest_cid > UINT32_MAX)) {
        snprintf(err, errlen, "vsock: guest_cid %lu out of range (3 to %u)",
                 (unsigned long)cfg->vsock.guest_cid, UINT32_MAX);
        return -1;
    }
    if (cfg->has_vsock && (!cfg->vsock.uds_path || !cfg->vsock.uds_path[0])) {
        snprintf(err, errlen, "vsock: no uds_path");
        return -1;
    }
    return 0;
}
