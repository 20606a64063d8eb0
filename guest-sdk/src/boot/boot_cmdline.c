/* boot_cmdline.c: the command line becomes argv[1..].
 *
 * Rules (a small subset of the POSIX shell's, enough to pass any string):
 *  - words are separated by spaces, tabs and newlines;
 *  - "double quotes" group, and inside them a backslash escapes the next
 *    character (\" \\ \ );
 *  - outside quotes a backslash escapes the next character too;
 *  - 'single quotes' group literally, with no escapes inside;
 *  - an unterminated quote runs to the end of the line; a trailing
 *    backslash stands for itself; "" and '' make an empty word.
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
