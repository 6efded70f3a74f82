/* sluiced: the Sluice mail server. Parses the command line, loads the configuration and
 * hands over to the master (daemon/master.c). Runs in the foreground; logs go to stderr. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "daemon/daemon.h"
#include "util/log.h"

static void usage(void)
{
    fputs("usage: sluiced [-c FILE]\n"
          "  -c FILE  configuration file (default: the embedded etc/sluice.conf)\n",
          stderr);
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int opt;

    while ((opt = getopt(argc, argv, "c:h")) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        default:
            usage();
            return 2;
        }
    }
    if (optind != argc) {
        usage();
        return 2;
    }
    log_init("sluiced");
    struct conf_errors errs = {0};
    struct config *cfg = conf_load(path, &errs);
    if (cfg == NULL) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s:%u: %s\n", path != NULL ? path : "(embedded etc/sluice.conf)",
                    errs.e[i].line, errs.e[i].msg);
        return 2;
    }
    return master_run(cfg, path);
}
