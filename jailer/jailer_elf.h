/* jailer_elf.h: the shared libraries a dynamically linked exec file needs
 * inside the jail.
 *
 * Beyond Firecracker, whose jailer expects a static binary: ember links
 * libuv, jansson and libseccomp, and Debian ships libuv only as a shared
 * library. So when the exec file has an ELF interpreter, the jailer copies
 * the interpreter and the DT_NEEDED closure into the jail at the paths the
 * dynamic loader searches without /etc/ld.so.cache. A static exec file gets
 * nothing but itself.
 */
#ifndef EMBER_JAILER_ELF_H
#define EMBER_JAILER_ELF_H

/* Copies exec_file's interpreter and libraries under root (root + the
 * host path). Fails through jail_fail() naming the file. Returns the number
 * of files copied. */
int jail_copy_libraries(const char *exec_file, const char *root);

#endif
