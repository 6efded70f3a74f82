/* cli/sendmail: `sluice sendmail [options] [rcpt...]`, also run as `sendmail` (and as
 * `mailq`, through -bp): reads a message on stdin and queues it through the queue
 * manager's control socket (the submit request of queue/ctl.h). */
#ifndef SLUICE_CLI_SENDMAIL_H
#define SLUICE_CLI_SENDMAIL_H

/* argv[0] is the program or subcommand name; conf_path is sluice's -c FILE (NULL: none;
 * -C FILE overrides it). Returns 0, 64 (usage), 69 (a permanent refusal: the server's 5.x.x
 * err, or a message over limits.message_size), 75 (a temporary one, or the queue manager
 * cannot be reached); with -bp, the statuses of mailq. */
int sendmail_main(int argc, char **argv, const char *conf_path);

#endif
