/* check: `sluice config check FILE`, called by the sluice CLI (src/cli/main.c) with
 * argv[0] = "check". Loads the file exactly as sluiced would (conf_load) and prints the
 * parser's errors in the FILE:LINE: message form that editors and CI jump to. */
#include "conf/check.h"

#include <stdio.h>

#include "conf/conf.h"

int conf_check_main(int argc, char **argv)
{
    struct conf_errors errs;
    struct config *c;

    if (argc != 2) {
        fprintf(stderr, "usage: sluice config check FILE\n");
        return 2;
    }
    c = conf_load(argv[1], &errs);
    if (c == NULL) {
        for (size_t i = 0; i < errs.n; i++) {
            if (errs.e[i].line == 0)
                fprintf(stderr, "%s: %s\n", argv[1], errs.e[i].msg);
            else
                fprintf(stderr, "%s:%u: %s\n", argv[1], errs.e[i].line, errs.e[i].msg);
        }
        return 1;
    }
    conf_free(c);
    printf("%s: ok\n", argv[1]);
    return 0;
}
