/* cli/dir: `sluice domain|user|alias|relocated ...`, the administration of the SQLite
 * directory store (dir/dirdb.h) of issue #4. Called by cli/main.c. */
#ifndef SLUICE_CLI_DIR_H
#define SLUICE_CLI_DIR_H

/* argv[0] is "domain", "user", "alias" or "relocated"; conf_path is the -c FILE (NULL: the
 * default, as for `sluice queue`). Returns a sysexits(3) status: 0; 64 usage; 65 bad data
 * (a malformed address, domain, name or password; a domain that still has entries); 67 no
 * such user or domain; 69 the configuration uses the read-only files backend; 73 already
 * exists; 74 the database failed; 78 the configuration could not be loaded. */
int dir_cli_main(int argc, char **argv, const char *conf_path);

#endif
