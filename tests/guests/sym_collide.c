/* sym_collide.c: a program that defines functions with the names the SDK
 * uses inside (fd_alloc, vq_add, vdev_init, vsk_accept, vsock_dev_send,
 * blk_posix_open). libember.a keeps those local, so this links, and printf
 * (whose write() goes through the SDK's own fd table) still works: the
 * SDK's calls reach the SDK's functions, the program's reach its own. */
#include <stdio.h>

int fd_alloc(int x);
int vq_add(int x);
int vdev_init(int x);
int vsk_accept(int x);
int vsock_dev_send(int x);
int blk_posix_open(int x);

int fd_alloc(int x)
{
    return x + 1;
}
int vq_add(int x)
{
    return x + 2;
}
int vdev_init(int x)
{
    return x + 3;
}
int vsk_accept(int x)
{
    return x + 4;
}
int vsock_dev_send(int x)
{
    return x + 5;
}
int blk_posix_open(int x)
{
    return x + 6;
}

int main(void)
{
    int sum = fd_alloc(0) + vq_add(0) + vdev_init(0) + vsk_accept(0) + vsock_dev_send(0) +
              blk_posix_open(0);

    printf("sym_collide: %s (%d)\n", sum == 21 ? "ok" : "WRONG", sum);
    return sum == 21 ? 0 : 1;
}
