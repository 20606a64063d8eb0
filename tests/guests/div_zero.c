/* div_zero.c: an integer division by zero must end the guest with a #DE
 * report and status 255. Expected: "ember: guest fault: #DE divide error". */
int main(void)
{
    volatile int zero = 0;
    volatile int x = 42;
    return x / zero;
}
