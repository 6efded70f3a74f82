/* sluice: the administration tool. Subcommands dispatch to their modules; for now
 * `sluice config check FILE` (conf/check). Later issues add queue, user, alias and list. */
#include <stdio.h>
#include <string.h>

#include "conf/check.h"

static void usage(void)
{
    fputs("usage: sluice config check FILE\n"
          "       sluice version\n",
          stderr);
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "version") == 0) {
        puts("sluice 0.1.0");
        return 0;
    }
    if (argc >= 3 && strcmp(argv[1], "config") == 0 && strcmp(argv[2], "check") == 0)
        return conf_check_main(argc - 2, argv + 2);
    usage();
    return 2;
}
