/* null_deref.c: a NULL read must end the guest with a #PF report and 255.
 * Expected: "ember: guest fault: #PF page fault, error 0x4, ... cr2 0x0". */
int main(void)
{
    return *(volatile int *)0;
}
