/* Shared fixture of the queue/store unit tests (test_store.c, test_store_recover.c). Every
 * test runs in a fresh prepared spool with its own event_base (t_setup, t_teardown); paths
 * returned by the t_*path helpers live in the context and are overwritten by the next call. */
#ifndef SLUICE_TESTS_UNIT_STORE_FIXTURE_H
#define SLUICE_TESTS_UNIT_STORE_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "queue/store.h"

#define T_MAX_MSGS 600

struct t_ctx {
    char spool[64];
    char path[256];
    struct event_base *base;
    int lock_fd;
    struct queue_store *qs;
    size_t ncb;             /* callbacks seen */
    int errors[T_MAX_MSGS]; /* by cookie */
    char ids[T_MAX_MSGS][ID_LEN + 1];
    int seen[T_MAX_MSGS];
};

/* The envelope every test commits, and its recipients. */
extern struct queue_rcpt t_rcpts[];
extern struct queue_envelope t_env;

/* cmocka setup and teardown: a fresh prepared spool, removed afterwards. */
int t_setup(void **state);
int t_teardown(void **state);

/* <spool>/<dir>/<name> (just <spool>/<dir> when name is empty). */
const char *t_path(struct t_ctx *t, const char *dir, const char *name);
/* Entries of <spool>/<dir>, without . and .. */
size_t t_count(struct t_ctx *t, const char *dir);
bool t_exists(struct t_ctx *t, const char *dir, const char *name);
/* incoming/<pid>/<name>: where the store of process pid keeps its files. */
const char *t_in_path(struct t_ctx *t, pid_t pid, const char *name);
bool t_in_exists(struct t_ctx *t, pid_t pid, const char *name);
/* Files in incoming/ and in each of its per-store directories. */
size_t t_incoming(struct t_ctx *t);

/* Open t->qs with SLUICE_FAULT set to fault (none when NULL). */
void t_open(struct t_ctx *t, const char *fault);
/* Commit callback: arg is the t_ctx, cookie indexes errors/ids/seen. */
void t_commit_cb(int error, const char *id, uint64_t cookie, void *arg);
/* Run the event loop until n callbacks have been seen. */
void t_run_until(struct t_ctx *t, size_t n);
/* Deterministic body bytes for seed. */
void t_fill(unsigned char *p, size_t n, unsigned seed);
/* Read queue/<id> back and compare envelope (t_env) and body. */
void t_check_file(struct t_ctx *t, const char *id, const unsigned char *body, size_t len);
/* Commit one small message, close the store, and return its queue file's bytes (malloc). */
unsigned char *t_good_file(struct t_ctx *t, size_t *len, char id[ID_LEN + 1]);

#endif
