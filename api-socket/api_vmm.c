/* api_vmm.c: starting, pausing and ending the microVM for the API (see
 * api_vmm.h). */
#include "api_vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api_log.h"
#include "api_metrics.h"
#include "exit_codes.h"
#include "vm.h"

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int api_vm_config_from(const struct api_resources *res, bool boot_timer, struct vm_config *cfg,
                       struct api_err *e)
{
    char err[256];

    cfg->mem_mib = res->machine.mem_size_mib;
    cfg->vcpu_count = res->machine.vcpu_count;
    cfg->boot_timer = boot_timer;
    cfg->kernel_path = strdup(res->boot.kernel_image_path);
    if (!cfg->kernel_path)
        return api_errf(e, "out of memory");
    if (res->boot.boot_args && !(cfg->boot_args = strdup(res->boot.boot_args)))
        return api_errf(e, "out of memory");
    if (vm_config_check(cfg, err, sizeof(err)) < 0)
        return api_errf(e, "%s", err);
    return 0;
}

/* The guest console is the process's stdout; PUT /serial sends it to a file
 * or FIFO instead. Blocking on purpose: console output is not dropped. */
static int redirect_console(const char *path, struct api_err *e)
{
    struct stat st;
    int flags = O_CLOEXEC | O_NOCTTY, fd;

    if (stat(path, &st) == 0 && S_ISFIFO(st.st_mode))
        flags |= O_RDWR; /* do not wait for a reader to open it */
    else
        flags |= O_WRONLY | O_APPEND | O_CREAT;
    fd = open(path, flags, 0600);
    if (fd < 0)
        return api_errf(e, "serial output %.200s: %s", path, strerror(errno));
    fflush(stdout);
    if (dup2(fd, STDOUT_FILENO) < 0) {
        close(fd);
        return api_errf(e, "serial output %.200s: %s", path, strerror(errno));
    }
    close(fd);
    return 0;
}

static void *vcpu_main(void *arg)
{
    struct api_vmm *v = arg;
    int status;

    api_log_set_thread_name("vcpu0");
    status = vm_run(v->vm);
    atomic_store(&v->exit_status, status);
    uv_async_send(&v->exit_async);
    return NULL;
}

static void on_exit_async(uv_async_t *a)
{
    struct api_vmm *v = a->data;
    v->on_guest_exit(v, atomic_load(&v->exit_status));
}

int api_vmm_init(struct api_vmm *v, uv_loop_t *loop, const char *instance_id, bool boot_timer,
                 void (*on_guest_exit)(struct api_vmm *, int))
{
    memset(v, 0, sizeof(*v));
    v->instance_id = instance_id;
    v->boot_timer = boot_timer;
    v->on_guest_exit = on_guest_exit;
    v->exit_async.data = v;
    return uv_async_init(loop, &v->exit_async, on_exit_async);
}

static int op_start(void *ctx, const struct api_resources *res, struct api_err *e)
{
    struct api_vmm *v = ctx;
    struct vm_config cfg;
    char err[256];
    uint64_t t0 = now_us();
    int rc;

    if (v->started)
        return api_errf(e, API_MSG_AFTER_BOOT);
    vm_config_init(&cfg);
    if (api_vm_config_from(res, v->boot_timer, &cfg, e) < 0) {
        vm_config_release(&cfg);
        v->create_status = EMBER_EXIT_BAD_CONFIG;
        return -1;
    }
    err[0] = '\0';
    rc = vm_create(&cfg, &v->vm, err, sizeof(err));
    vm_config_release(&cfg);
    if (rc != 0) {
        v->vm = NULL;
        v->create_status = rc;
        API_ERROR("InstanceStart: %s", err);
        return api_errf(e, "%s", err[0] ? err : "cannot create the microVM");
    }
    if (res->serial.set && res->serial.serial_out_path &&
        redirect_console(res->serial.serial_out_path, e) < 0) {
        vm_destroy(v->vm);
        v->vm = NULL;
        return -1;
    }
    rc = pthread_create(&v->vcpu_thread, NULL, vcpu_main, v);
    if (rc != 0) {
        vm_destroy(v->vm);
        v->vm = NULL;
        return api_errf(e, "cannot start the vCPU thread: %s", strerror(rc));
    }
    v->started = true;
    api_metrics_store(API_M_INSTANCE_START_US, now_us() - t0);
    API_INFO("microVM started: %s, %u MiB", res->boot.kernel_image_path, res->machine.mem_size_mib);
    return 0;
}

static int op_pause(void *ctx, struct api_err *e)
{
    struct api_vmm *v = ctx;
    if (!v->vm || vm_pause(v->vm) < 0)
        return api_errf(e, "cannot pause the microVM");
    return 0;
}

static int op_resume(void *ctx, struct api_err *e)
{
    struct api_vmm *v = ctx;
    if (!v->vm || vm_resume(v->vm) < 0)
        return api_errf(e, "cannot resume the microVM");
    return 0;
}

static int op_ctrl_alt_del(void *ctx, struct api_err *e)
{
    (void)ctx;
    /* Needs an i8042 reset request from the monitor (a vm.h call). */
    return api_errf(e, "ember does not offer SendCtrlAltDel yet: SDK guests have no keyboard "
                       "controller");
}

static int op_configure_logger(void *ctx, const struct api_logger_cfg *cfg, struct api_err *e)
{
    (void)ctx;
    return api_log_configure(cfg, e);
}

static int op_configure_metrics(void *ctx, const struct api_metrics_cfg *cfg, struct api_err *e)
{
    struct api_vmm *v = ctx;
    return api_metrics_configure(cfg, v->instance_id, e);
}

static int op_flush_metrics(void *ctx, struct api_err *e)
{
    (void)ctx;
    return api_metrics_flush(e);
}

const struct api_vmm_ops api_vmm_ops = {
    .start = op_start,
    .pause = op_pause,
    .resume = op_resume,
    .ctrl_alt_del = op_ctrl_alt_del,
    .configure_logger = op_configure_logger,
    .configure_metrics = op_configure_metrics,
    .flush_metrics = op_flush_metrics,
};
