/* api_log.c: the logger (see api_log.h). */
#include "api-socket/api_log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api-socket/api_metrics.h"
#include "api-socket/api_output.h"

#define LINE_MAX_BYTES 4096

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char instance[API_ID_MAX + 32] = "anonymous-instance";
static _Atomic int out_fd = 2; /* stderr until configured */
static _Atomic int max_level = API_LOG_INFO;
static _Atomic bool show_level;
static _Atomic bool show_origin;
static char module_filter[128];
static _Thread_local char thread_name[16];

static const char *const level_tags[] = {"OFF", "ERROR", "WARN", "INFO", "DEBUG", "TRACE"};

void api_log_init(const char *instance_id)
{
    pthread_mutex_lock(&lock);
    snprintf(instance, sizeof(instance), "%s", instance_id);
    pthread_mutex_unlock(&lock);
}

void api_log_set_thread_name(const char *name)
{
    snprintf(thread_name, sizeof(thread_name), "%s", name);
    pthread_setname_np(pthread_self(), thread_name);
}

bool api_log_enabled(enum api_log_level level)
{
    return level != API_LOG_OFF && (int)level <= atomic_load(&max_level);
}

int api_log_configure(const struct api_logger_cfg *cfg, struct api_err *e)
{
    int fd = -1, old;

    if (cfg->log_path) {
        fd = api_output_open("log", cfg->log_path, e);
        if (fd < 0)
            return -1;
    }
    pthread_mutex_lock(&lock);
    snprintf(module_filter, sizeof(module_filter), "%s", cfg->module ? cfg->module : "");
    pthread_mutex_unlock(&lock);
    atomic_store(&max_level, (int)cfg->level);
    atomic_store(&show_level, cfg->show_level);
    atomic_store(&show_origin, cfg->show_log_origin);
    if (fd >= 0) {
        old = atomic_exchange(&out_fd, fd);
        if (old > 2)
            close(old);
    }
    return 0;
}

/* __FILE__ relative to the source tree: "api-socket/api_main.c". A compiler
 * launcher may have made the path relative to the build directory
 * ("../../api-socket/api_main.c", ccache's base_dir): its "../" go too. */
static const char *origin(const char *file)
{
#ifdef EMBER_SOURCE_DIR
    size_t n = strlen(EMBER_SOURCE_DIR);
    if (strncmp(file, EMBER_SOURCE_DIR, n) == 0 && file[n] == '/')
        return file + n + 1;
#endif
    while (strncmp(file, "../", 3) == 0 || strncmp(file, "./", 2) == 0)
        file += file[1] == '/' ? 2 : 3;
    return file;
}

void api_log_write(enum api_log_level level, const char *file, int line, const char *fmt, ...)
{
    char buf[LINE_MAX_BYTES], tname[16];
    struct timespec ts;
    struct tm tm;
    size_t n;
    int w;
    va_list ap;

    if (!api_log_enabled(level))
        return;
    file = origin(file);
    pthread_mutex_lock(&lock);
    if (module_filter[0] && strncmp(file, module_filter, strlen(module_filter)) != 0) {
        pthread_mutex_unlock(&lock);
        return;
    }
    if (thread_name[0])
        snprintf(tname, sizeof(tname), "%s", thread_name);
    else if (pthread_getname_np(pthread_self(), tname, sizeof(tname)) != 0)
        snprintf(tname, sizeof(tname), "?");
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    w = snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%09ld [%s:%s", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec, instance,
                 tname);
    pthread_mutex_unlock(&lock);
    n = (size_t)w;
    if (atomic_load(&show_level) && n < sizeof(buf))
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, ":%s", level_tags[level]);
    if (atomic_load(&show_origin) && n < sizeof(buf))
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, ":%s:%d", file, line);
    if (n < sizeof(buf))
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "] ");
    if (n < sizeof(buf)) {
        va_start(ap, fmt);
        w = vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
        va_end(ap);
        if (w > 0)
            n += (size_t)w;
    }
    if (n > sizeof(buf) - 2)
        n = sizeof(buf) - 2; /* truncated: keep room for the newline */
    buf[n++] = '\n';
    if (api_output_write(atomic_load(&out_fd), buf, n) < 0)
        api_metrics_add(API_M_LOG_MISSED, 1);
}
