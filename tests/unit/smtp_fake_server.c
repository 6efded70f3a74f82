/* smtp_fake_server: the scripted servers of test_smtp_client (see smtp_fake_server.h).
 * Blocking I/O with a 3 s receive timeout, so a client that stops talking ends the script
 * with a recorded error instead of a hang. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "smtp_fake_server.h"

static void fs_fail(struct fs *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fs_fail(struct fs *s, const char *fmt, ...)
{
    if (s->error[0] != '\0')
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->error, sizeof s->error, fmt, ap);
    va_end(ap);
}

static ssize_t fs_recv(struct fs *s, void *buf, size_t len)
{
    if (s->ssl != NULL) {
        int n = SSL_read(s->ssl, buf, (int)len);
        return n > 0 ? n : 0;
    }
    return recv(s->fd, buf, len, 0);
}

static void fs_send(struct fs *s, const void *buf, size_t len)
{
    if (s->ssl != NULL)
        SSL_write(s->ssl, buf, (int)len);
    else
        (void)!send(s->fd, buf, len, MSG_NOSIGNAL);
}

/* Fills rbuf; false on EOF, error or the 3 s receive timeout. */
static bool fs_more(struct fs *s)
{
    if (s->rlen == sizeof s->rbuf)
        return false;
    ssize_t n = fs_recv(s, s->rbuf + s->rlen, sizeof s->rbuf - s->rlen);
    if (n <= 0)
        return false;
    s->rlen += (size_t)n;
    return true;
}

static void fs_take(struct fs *s, size_t n)
{
    memmove(s->rbuf, s->rbuf + n, s->rlen - n);
    s->rlen -= n;
}

/* One line with its CRLF into line; false when none came. */
static bool fs_line(struct fs *s, char *line, size_t cap)
{
    for (;;) {
        unsigned char *lf = memchr(s->rbuf, '\n', s->rlen);
        if (lf != NULL) {
            size_t n = (size_t)(lf - s->rbuf) + 1;
            if (n >= cap)
                n = cap - 1;
            memcpy(line, s->rbuf, n);
            line[n] = '\0';
            fs_take(s, (size_t)(lf - s->rbuf) + 1);
            memcpy(s->rx + s->rxlen, line, n);
            s->rxlen += n;
            if (s->rlen > 0)
                s->pipelined = true;
            return true;
        }
        if (!fs_more(s))
            return false;
    }
}

static void fs_body_add(struct fs *s, const unsigned char *b, size_t n)
{
    memcpy(s->body + s->bodylen, b, n);
    s->bodylen += n;
}

/* DATA bytes up to and including CRLF.CRLF, kept as they came. */
static bool fs_data(struct fs *s)
{
    for (;;) {
        for (size_t i = 0; i + 5 <= s->rlen; i++) {
            if (memcmp(s->rbuf + i, "\r\n.\r\n", 5) == 0) {
                fs_body_add(s, s->rbuf, i + 5);
                fs_take(s, i + 5);
                return true;
            }
        }
        if (s->rlen == 3 && s->bodylen == 0 && memcmp(s->rbuf, ".\r\n", 3) == 0) {
            fs_body_add(s, s->rbuf, 3);
            fs_take(s, 3);
            return true;
        }
        if (s->rlen > 4096) {
            fs_body_add(s, s->rbuf, s->rlen - 4);
            fs_take(s, s->rlen - 4);
        }
        if (!fs_more(s))
            return false;
    }
}

/* BDAT chunks until LAST, each answered with 250. */
static bool fs_bdat(struct fs *s)
{
    char line[512];
    for (;;) {
        if (!fs_line(s, line, sizeof line))
            return false;
        unsigned long n;
        char last[8] = "";
        if (sscanf(line, "BDAT %lu %7s", &n, last) < 1) {
            fs_fail(s, "wanted BDAT, got %s", line);
            return false;
        }
        while (s->rlen < n)
            if (!fs_more(s))
                return false;
        fs_body_add(s, s->rbuf, n);
        fs_take(s, n);
        if (strcmp(last, "LAST") == 0) {
            fs_send(s, "250 2.0.0 queued\r\n", 18);
            return true;
        }
        fs_send(s, "250 2.0.0 chunk\r\n", 17);
    }
}

static void fs_close(struct fs *s)
{
    if (s->ssl != NULL) {
        SSL_shutdown(s->ssl);
        SSL_free(s->ssl);
        s->ssl = NULL;
    }
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    s->rlen = 0;
}

static bool fs_accept(struct fs *s)
{
    struct pollfd p = {.fd = s->lfd, .events = POLLIN};
    if (poll(&p, 1, 3000) != 1)
        return false;
    s->fd = accept(s->lfd, NULL, NULL);
    if (s->fd < 0)
        return false;
    struct timeval tv = {.tv_sec = 3};
    setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return true;
}

static void *fs_main(void *arg)
{
    struct fs *s = arg;
    char line[2048];

    if (!fs_accept(s)) {
        fs_fail(s, "no connection");
        return NULL;
    }
    for (const char *const *st = s->script; *st != NULL && s->error[0] == '\0'; st++) {
        const char *step = *st;
        if (strncmp(step, "S:", 2) == 0) {
            char out[4096];
            int n = snprintf(out, sizeof out, "%s\r\n", step + 2);
            fs_send(s, out, (size_t)n);
        } else if (strncmp(step, "R:", 2) == 0) {
            fs_send(s, step + 2, strlen(step + 2));
        } else if (strncmp(step, "C:", 2) == 0 || step[0] == '=') {
            bool exact = step[0] == '=';
            const char *want = exact ? step + 1 : step + 2;
            if (!fs_line(s, line, sizeof line)) {
                fs_fail(s, "wanted %s, got nothing", want);
                break;
            }
            size_t ll = strlen(line);
            if (ll >= 2)
                line[ll - 2] = '\0';
            if (exact ? strcmp(line, want) != 0 : strncmp(line, want, strlen(want)) != 0)
                fs_fail(s, "wanted %s, got %s", want, line);
        } else if (strcmp(step, "DATA") == 0) {
            if (!fs_data(s))
                fs_fail(s, "body did not end");
        } else if (strcmp(step, "BDAT") == 0) {
            if (!fs_bdat(s))
                fs_fail(s, "chunks did not end");
        } else if (strcmp(step, "TLS") == 0) {
            s->ssl = SSL_new(s->tls);
            SSL_set_fd(s->ssl, s->fd);
            if (SSL_accept(s->ssl) != 1) {
                SSL_free(s->ssl);
                s->ssl = NULL;
                fs_close(s);
                break;
            }
        } else if (strncmp(step, "SLEEP:", 6) == 0) {
            usleep((useconds_t)atoi(step + 6) * 1000);
        } else if (strcmp(step, "CLOSE") == 0) {
            fs_close(s);
        } else if (strcmp(step, "ACCEPT") == 0) {
            fs_close(s);
            if (!fs_accept(s))
                fs_fail(s, "no second connection");
        } else if (strcmp(step, "QUIT") == 0) {
            if (!fs_line(s, line, sizeof line) || strcmp(line, "QUIT\r\n") != 0)
                fs_fail(s, "wanted QUIT");
            else
                fs_send(s, "221 bye\r\n", 9);
        } else if (strcmp(step, "NOTHING") == 0) {
            if (fs_line(s, line, sizeof line))
                fs_fail(s, "wanted nothing, got %s", line);
        } else {
            fs_fail(s, "bad step %s", step);
        }
    }
    fs_close(s);
    return NULL;
}

void fs_start(struct fs *s, const char *const *script, SSL_CTX *tls)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    s->script = script;
    s->tls = tls;
    s->rx = calloc(1, FS_BUF);
    s->body = calloc(1, FS_BUF);
    assert_non_null(s->rx);
    assert_non_null(s->body);
    struct sockaddr_in *in = (struct sockaddr_in *)&s->addr;
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->addrlen = sizeof *in;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->lfd >= 0);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&s->addr, s->addrlen), 0);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&s->addr, &s->addrlen), 0);
    assert_int_equal(listen(s->lfd, 4), 0);
    assert_int_equal(pthread_create(&s->thread, NULL, fs_main, s), 0);
}

void fs_start_unix(struct fs *s, const char *const *script, const char *path)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    s->script = script;
    s->rx = calloc(1, FS_BUF);
    s->body = calloc(1, FS_BUF);
    struct sockaddr_un *un = (struct sockaddr_un *)&s->addr;
    un->sun_family = AF_UNIX;
    snprintf(un->sun_path, sizeof un->sun_path, "%s", path);
    s->addrlen = sizeof *un;
    unlink(path);
    s->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&s->addr, s->addrlen), 0);
    assert_int_equal(listen(s->lfd, 4), 0);
    assert_int_equal(pthread_create(&s->thread, NULL, fs_main, s), 0);
}

/* Joins the server and checks that its script ran through. */
void fs_end(struct fs *s)
{
    pthread_join(s->thread, NULL);
    close(s->lfd);
    if (s->error[0] != '\0')
        fail_msg("fake server: %s\nreceived:\n%.*s\nbody:\n%.*s", s->error, (int)s->rxlen, s->rx,
                 (int)s->bodylen, (const char *)s->body);
}

void fs_free(struct fs *s)
{
    free(s->rx);
    free(s->body);
}
