/* sluice: the administration tool. Subcommands dispatch to their modules: `config check
 * FILE` (conf/check), `queue ...` (cli/queue), `sendmail ...` (cli/sendmail), `domain`,
 * `user`, `alias` and `relocated ...` (cli/dir). Run under the name `sendmail` it is
 * sendmail(1), under `mailq` the queue listing (argv[0]'s basename decides, as links to one
 * binary are installed under those names). */
#include <stdio.h>
#include <string.h>

#include "cli/dir.h"
#include "cli/queue.h"
#include "cli/sendmail.h"
#include "conf/check.h"

static void usage(void)
{
    fputs("usage: sluice config check FILE\n"
          "       sluice [-c FILE] queue list [--json]\n"
          "       sluice [-c FILE] queue show ID [--json]\n"
          "       sluice [-c FILE] queue flush [ID]\n"
          "       sluice [-c FILE] queue hold|release|delete ID\n"
          "       sluice [-c FILE] mailq\n"
          "       sluice [-c FILE] sendmail [-t] [-i] [-f SENDER] [-F NAME] [RCPT...]\n"
          "       sluice [-c FILE] domain add DOMAIN | del DOMAIN | list\n"
          "       sluice [-c FILE] domain catchall DOMAIN ADDRESS|none\n"
          "       sluice [-c FILE] user add ADDRESS [--name NAME] [--stdin]"
          " [--scheme yescrypt|argon2id] [--quota SIZE]\n"
          "       sluice [-c FILE] user quota ADDRESS SIZE|none\n"
          "       sluice [-c FILE] user passwd ADDRESS [--stdin] [--scheme yescrypt|argon2id]\n"
          "       sluice [-c FILE] user del|enable|disable ADDRESS | list [DOMAIN]\n"
          "       sluice [-c FILE] user cert add ADDRESS FINGERPRINT | cert del FINGERPRINT\n"
          "       sluice [-c FILE] user cert list [DOMAIN]\n"
          "       sluice [-c FILE] alias add ALIAS TARGET... | del ALIAS [TARGET] | list [DOMAIN]\n"
          "       sluice [-c FILE] relocated add ADDRESS NEW-ADDRESS --forward|--refuse\n"
          "       sluice [-c FILE] relocated del ADDRESS | list [DOMAIN]\n"
          "       sluice version\n"
          "  -c FILE  configuration (default: /etc/sluice/sluice.conf when it exists, else\n"
          "           the embedded etc/sluice.conf)\n"
          "  also run as `sendmail [options] [RCPT...]` and `mailq [-C FILE]`\n",
          stderr);
}

/* mailq [-C FILE] [-v]: the options Postfix's and sendmail's mailq share that apply. */
static int main_mailq(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-C") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "-v") != 0) {
            fputs("usage: mailq [-C FILE]\n", stderr);
            return 64;
        }
    }
    return queue_cli_mailq(path);
}

int main(int argc, char **argv)
{
    const char *name = argc > 0 ? strrchr(argv[0], '/') : NULL;
    name = name != NULL ? name + 1 : argc > 0 ? argv[0] : "sluice";
    if (strcmp(name, "sendmail") == 0)
        return sendmail_main(argc, argv, NULL);
    if (strcmp(name, "mailq") == 0)
        return main_mailq(argc, argv);

    if (argc >= 2 && strcmp(argv[1], "version") == 0) {
        puts("sluice 0.1.0");
        return 0;
    }
    if (argc >= 3 && strcmp(argv[1], "config") == 0 && strcmp(argv[2], "check") == 0)
        return conf_check_main(argc - 2, argv + 2);
    const char *conf_path = NULL;
    int i = 1;
    if (argc >= 3 && strcmp(argv[1], "-c") == 0) {
        conf_path = argv[2];
        i = 3;
    }
    if (i < argc && strcmp(argv[i], "queue") == 0)
        return queue_cli_main(argc - i, argv + i, conf_path);
    if (i < argc && strcmp(argv[i], "sendmail") == 0)
        return sendmail_main(argc - i, argv + i, conf_path);
    if (i < argc && (strcmp(argv[i], "domain") == 0 || strcmp(argv[i], "user") == 0 ||
                     strcmp(argv[i], "alias") == 0 || strcmp(argv[i], "relocated") == 0))
        return dir_cli_main(argc - i, argv + i, conf_path);
    if (argc - i == 1 && strcmp(argv[i], "mailq") == 0)
        return queue_cli_mailq(conf_path);
    usage();
    return 2;
}
