/* vm_config.c: defaults and host-independent checks of a VM configuration. */
#include "vm_config.h"

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
    free(cfg->kernel_path);
    free(cfg->progname);
    free(cfg->boot_args);
    vm_config_init(cfg);
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
    if (cfg->boot_args && strlen(cfg->boot_args) >= VM_CMDLINE_MAX) {
        snprintf(err, errlen, "command line too long (%zu bytes, at most %u)",
                 strlen(cfg->boot_args), VM_CMDLINE_MAX - 1);
        return -1;
    }
    return 0;
}
