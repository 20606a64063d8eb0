/* api_driver.c: `ember` as it will be once monitor/main.c calls api_main():
 * every command line goes to the API front. The integration suite runs the
 * real `ember` when it answers --version, and this driver otherwise. */
#include "api-socket/api_main.h"

int main(int argc, char **argv)
{
    return api_main(argc, argv);
}
