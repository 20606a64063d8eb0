/* boot_cmdline.c: the command line becomes argv[1..] and the environment.
 *
 * Rules (a small subset of the POSIX shell's, enough to pass any string):
 *  - words are separated by spaces, tabs and newlines;
 *  - "double quotes" group, and inside them a backslash escapes the next
 *    character (\" \\ \ );
 *  - outside quotes a backslash escapes the next character too;
 *  - 'single quotes' group literally, with no escapes inside;
 *  - an unterminated quote runs to the end of the line; a trailing
 *    backslash stands for itself; "" and '' make an empty word.
 * Then each word is sorted as Linux sorts the words it does not consume and
 * hands to init (init/main.c, unknown_bootoption): before a "--" word,
 * KEY=VALUE is an environment variable, a word without '=' an argument, a
 * dotted KEY (module.param=) and the kernel's own parameters are consumed;
 * after "--" every word is an argument. Firecracker passes a guest's
 * environment this way, in boot_args; `ember run --env` builds the same.
 * Runs at CPL3 during start-up.
 */
#include "sdk.h"

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

size_t ember_cmdline_split(const char *s, size_t len, char *out)
{
    size_t i = 0, words = 0;
    char *o = out;

    for (;;) {
        while (i < len && is_space(s[i]))
            i++;
        if (i >= len)
            break;
        /* One word; it ends at unquoted white space or the end. */
        while (i < len && !is_space(s[i])) {
            char c = s[i++];
            if (c == '\\') {
                *o++ = i < len ? s[i++] : '\\';
            } else if (c == '"') {
                while (i < len && s[i] != '"') {
                    if (s[i] == '\\' && i + 1 < len)
                        i++;
                    *o++ = s[i++];
                }
                i++; /* the closing quote, if any */
            } else if (c == '\'') {
                while (i < len && s[i] != '\'')
                    *o++ = s[i++];
                i++;
            } else {
                *o++ = c;
            }
        }
        *o++ = '\0';
        words++;
    }
    return words;
}

/* Kernel parameters Linux itself consumes, which a command line written
 * for Firecracker carries ("console=ttyS0 reboot=k panic=1 pci=off"): they
 * do not reach init's environment on Linux and do not reach the guest's
 * here. */
static const char *const kernel_params[] = {
    "console",  "earlycon", "earlyprintk", "reboot",      "panic",
    "pci",      "root",     "rootfstype",  "rootflags",   "init",
    "loglevel", "acpi",     "tsc",         "clocksource", "nokaslr",
};

int ember_cmdline_word_kind(const char *w, bool after_dashes)
{
    if (after_dashes)
        return EMBER_WORD_ARG;
    if (w[0] == '-' && w[1] == '-' && w[2] == '\0')
        return EMBER_WORD_DASHES;
    size_t k = 0;
    while (w[k] && w[k] != '=')
        k++;
    if (!w[k] || k == 0)
        return EMBER_WORD_ARG; /* no '=' (or "=x"): Linux passes it to init's argv */
    for (size_t i = 0; i < k; i++) {
        if (w[i] == '.')
            return EMBER_WORD_KERNEL; /* module.param=value (virtio_mmio.device=...) */
    }
    for (size_t i = 0; i < sizeof(kernel_params) / sizeof(kernel_params[0]); i++) {
        const char *p = kernel_params[i];
        size_t j = 0;
        while (j < k && p[j] && p[j] == w[j])
            j++;
        if (j == k && !p[j])
            return EMBER_WORD_KERNEL;
    }
    return EMBER_WORD_ENV;
}
