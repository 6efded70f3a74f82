/* smtp_fake_server: scripted SMTP/LMTP servers for test_smtp_client. Each runs in its own
 * thread with blocking sockets on 127.0.0.1 port 0 (or a unix socket), reads the client's
 * lines, checks them against its script and answers from it, recording what it received.
 *
 * Script steps: "S:text" sends text CRLF; "R:bytes" sends bytes as they are; "C:prefix"
 * reads a line that must start with prefix; "=line" reads a line that must be exactly line;
 * "DATA" reads the dot-stuffed body; "BDAT" reads chunks up to LAST, answering each;
 * "TLS" runs the server handshake; "SLEEP:ms"; "CLOSE" hangs up; "ACCEPT" takes the next
 * connection; "QUIT" reads QUIT and answers 221; "NOTHING" checks that nothing more comes
 * before the client hangs up. */
#ifndef SLUICE_TESTS_SMTP_FAKE_SERVER_H
#define SLUICE_TESTS_SMTP_FAKE_SERVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#define FS_BUF (1024 * 1024)

struct fs {
    int lfd;
    int fd;
    SSL *ssl;
    SSL_CTX *tls;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    const char *const *script;
    pthread_t thread;
    unsigned char rbuf[256 * 1024];
    size_t rlen;
    char *rx; /* every command line received, CRLF included */
    size_t rxlen;
    unsigned char *body; /* DATA bytes as received (stuffed), or BDAT chunk bytes */
    size_t bodylen;
    bool pipelined;  /* a command arrived while an earlier one was unanswered */
    char error[512]; /* the first mismatch, "" when the script ran through */
};

/* Listen and start running script (tls: the context for "TLS" steps, may be NULL). */
void fs_start(struct fs *s, const char *const *script, SSL_CTX *tls);
void fs_start_unix(struct fs *s, const char *const *script, const char *path);
/* Join the server thread; a failed cmocka check unless its script ran through. */
void fs_end(struct fs *s);
void fs_free(struct fs *s);

#endif
