/* triple_fault.c: with the IDT clobbered, a fault cannot be delivered: the
 * CPU escalates to a double fault and then shuts down (triple fault), and the
 * monitor must report it (KVM_EXIT_SHUTDOWN) instead of hanging or crashing.
 * Expected: no guest output after the first line, and the monitor's
 * triple-fault message and exit code. */
#include <stdio.h>
#include <string.h>

#include <ember/guest.h>

int main(void)
{
    printf("triple_fault: clobbering the IDT\n");
    memset(ember_idt, 0, sizeof(ember_idt));
    __asm__ volatile("ud2");
    printf("triple_fault: still running?!\n");
    return 1;
}
