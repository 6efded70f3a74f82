/* `sluice config check FILE`: parse a configuration and report every error. */
#ifndef SLUICE_CONF_CHECK_H
#define SLUICE_CONF_CHECK_H

/* argv[0] is "check", argv[1] the file. Prints each error as "FILE:LINE: message" (or
 * "FILE: message" for a whole-file error) to stderr, or "FILE: ok" to stdout.
 * Returns the exit status: 0 valid, 1 errors, 2 usage. */
int conf_check_main(int argc, char **argv);

#endif
