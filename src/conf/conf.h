/* conf: sluice.conf, parsed once into an immutable struct config (DESIGN §5).
 * conf_parse is pure (bytes in, struct or errors out); conf_load reads a file. A reload
 * builds a new struct and swaps the whole thing. */
#ifndef SLUICE_CONF_CONF_H
#define SLUICE_CONF_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum conf_tls_mode {
    CONF_TLS_NONE,      /* plaintext only, STARTTLS not offered */
    CONF_TLS_STARTTLS,  /* STARTTLS offered (RFC 3207) */
    CONF_TLS_REQUIRED,  /* STARTTLS offered and required before MAIL (530 5.7.0) */
    CONF_TLS_IMPLICIT,  /* TLS from the first byte (RFC 8314 §3) */
};

enum conf_auth_mode { CONF_AUTH_NONE, CONF_AUTH_OPTIONAL, CONF_AUTH_REQUIRED };

enum conf_bare_mode {
    CONF_BARE_REJECT,    /* bare CR/LF in DATA: 554 5.6.0 after the end of data */
    CONF_BARE_NORMALISE, /* bare CR/LF in DATA become CRLF */
};

struct conf_listener {
    char *name;               /* "smtp", "submission", "submissions", or any label */
    char *address;            /* "127.0.0.1:2525", "[::1]:25", "*:25" */
    enum conf_tls_mode tls;   /* default none; anything else needs tls_certificate */
    enum conf_auth_mode auth; /* default none */
    bool vrfy;                /* VRFY answers for authenticated or trusted clients; default no */
    bool expn;                /* EXPN likewise; default no */
    bool hide_client;         /* Received: without the client's address and name (RFC 6409
                                 submission privacy); default no */
};

/* An address block in CIDR form: trusted networks may relay and use VRFY/EXPN. */
struct conf_network {
    int family;               /* AF_INET or AF_INET6 */
    unsigned char addr[16];   /* network byte order, host bits zero */
    unsigned prefix;
};

enum conf_token_alg { CONF_TOKEN_HS256, CONF_TOKEN_RS256, CONF_TOKEN_ES256 };

/* A key that signs bearer tokens (RFC 7518 §3): an HS256 secret file or a PEM public key. */
struct conf_token_key {
    enum conf_token_alg alg;
    char *file;
    char *kid;                /* NULL = any */
};

/* How EXTERNAL (TLS client certificates) finds the mailbox. */
enum conf_external {
    CONF_EXTERNAL_NONE,        /* EXTERNAL not offered; the default */
    CONF_EXTERNAL_FINGERPRINT, /* the certificate's SHA-256 as registered in the directory */
    CONF_EXTERNAL_SUBJECT,     /* the subject's emailAddress (else CN), verified by client-ca */
};

struct conf_auth {
    bool plaintext_loopback;  /* offer AUTH without TLS to loopback clients; default no */
    unsigned failure_delay;   /* ms before a 535; default 1s */
    unsigned session_failures;/* failed AUTHs per session before 421 4.7.0; default 3 */
    unsigned ip_failures;     /* failed AUTHs per client address per worker per hour before
                                 421 4.7.0; default 20 */
    char *token_issuer;       /* bearer tokens: required "iss"; NULL not checked */
    char *token_audience;     /* required "aud"; NULL not checked */
    char *token_claim;        /* identity claim; default "email" */
    unsigned token_leeway;    /* ms of clock skew; default 60s */
    struct conf_token_key *token_keys;
    size_t ntoken_keys;
    enum conf_external external;
    char *client_ca;          /* CA file that client certificates must chain to */
};

struct conf_limits {
    uint64_t message_size;       /* octets; SIZE advertised; default 35M */
    unsigned recipients;         /* per message; default 1000 (RFC 5321 §4.5.3.1.8 asks >= 100) */
    unsigned messages;           /* per connection; default 100 */
    size_t command_line;         /* octets incl. CRLF; default 512, never below 512 */
    size_t data_line;            /* octets incl. CRLF; default 1000, never below 1000 */
    size_t header_size;          /* octets of a message's header section; default 256K */
    unsigned received;           /* Received: fields before 554 5.4.6; default 50 */
    unsigned sessions;           /* open sessions per worker process; default 1000 */
    unsigned sessions_per_ip;    /* per client address per worker; default 50 */
    unsigned errors;             /* protocol errors before 421 4.7.0 and close; default 20 */
    unsigned junk;               /* NOOP/RSET/VRFY/HELP... without a message; default 100 */
    unsigned connection_rate;    /* new sessions per client address per minute per worker
                                    (H8); 0 = unlimited, the default */
    unsigned tls_rate;           /* new TLS handshakes per client address per minute per worker
                                    (F7); 0 = unlimited, the default */
    uint64_t spool_min_free;     /* octets the spool filesystem must keep free, else MAIL gets
                                    452 4.3.1 (I7); 0 = no check, the default */
};

struct conf_timeouts {              /* all in milliseconds */
    unsigned greeting_delay;        /* wait before the 220; talking first is refused; default 0 */
    unsigned command;               /* idle wait for a command, RFC 5321 §4.5.3.2.7; default 5m */
    unsigned command_deadline;      /* whole-line deadline against slow drip (H2); default 1m */
    unsigned data_block;            /* between DATA/BDAT bytes; default 3m */
    unsigned data_deadline;         /* whole message, DATA to end; default 10m */
    unsigned tls_handshake;         /* default 30s */
    unsigned write;                 /* a client that does not read our replies (H5); default 2m */
};

/* How the SMTP client uses TLS toward a destination (RFC 7435 opportunistic by default). */
enum conf_out_tls {
    CONF_OUT_TLS_MAY,    /* STARTTLS when offered, certificate not checked; the default */
    CONF_OUT_TLS_VERIFY, /* STARTTLS required and the certificate verified for the host name */
    CONF_OUT_TLS_NONE,   /* never STARTTLS */
};

/* Per local domain: where its mailboxes are. */
struct conf_domain_delivery {
    char *maildir;  /* path template (%d domain, %u local part, %% a '%'); NULL = delivery's */
    char *lmtp;     /* "HOST:PORT" or "unix:/path": hand this domain to an LMTP server instead */
};

/* Per remote domain: how to reach it. */
struct conf_remote {
    char *domain;           /* lower case */
    enum conf_out_tls tls;  /* default: delivery.tls */
    bool tls_set;
};

struct conf_delivery {
    bool hold;                      /* keep every message queued, deliver nothing (tests,
                                       receive-only benchmarks, maintenance); default no */
    char *maildir;                  /* default path template; default /var/mail/%d/%u */
    unsigned retry_min;             /* ms before the first retry; default 5m */
    unsigned retry_max;             /* the backoff doubles up to this; default 1h */
    unsigned lifetime;              /* ms in the queue before a bounce; default 5d */
    unsigned delay_warning;         /* ms before a delay DSN where NOTIFY allows; 0 never; 4h */
    unsigned rescan;                /* ms between safety rescans of queue/; default 1m */
    unsigned concurrency;           /* deliveries in flight at once; default 100 */
    unsigned destination_concurrency; /* per destination (domain or relay); default 20 */
    unsigned local_concurrency;     /* Maildir deliveries in parallel (threads); default 32 */
    char *dns;                      /* one DNS server "ADDR" or "ADDR@PORT"; NULL resolv.conf */
    unsigned remote_port;           /* port of remote MX hosts; default 25 */
    char *smarthost;                /* "HOST:PORT" or "[ADDR]:PORT": all remote mail goes there */
    char *smarthost_user;           /* AUTH PLAIN over TLS to the smarthost when set */
    char *smarthost_password;
    enum conf_out_tls tls;          /* default may */
    char *tls_ca;                   /* CA file for verification; NULL = system default */
    unsigned connect_timeout;       /* ms; default 30s */
    unsigned command_timeout;       /* ms per command reply (RFC 5321 §4.5.3.2); default 5m */
    unsigned data_timeout;          /* ms for the reply after the data (§4.5.3.2.6); 10m */
};

struct config {
    char *hostname;                 /* our name in the greeting and Received; default: gethostname */
    char *spool;                    /* queue directory; default /var/spool/sluice */
    char *user;                     /* drop to this user when started as root; NULL = do not */
    unsigned workers;               /* smtp worker processes; 0 = one per core */
    char *tls_certificate;          /* PEM chain; NULL = TLS not configured */
    char *tls_key;                  /* PEM key */
    bool tls_self_signed;           /* create a self-signed pair at the paths when missing */
    char *mailboxes_file;           /* directory: one mailbox per line; NULL = none */
    char *aliases_file;             /* directory: "alias: target, target"; NULL = none */
    char *directory_sqlite;         /* directory: the SQLite store; default <spool>/directory.db
                                       when no mailboxes or aliases file is given */
    char subaddress_separator;      /* "user+tag": '+' by default; '\0' none */
    struct conf_network *trusted;   /* trusted-networks: may relay, may VRFY/EXPN */
    size_t ntrusted;
    struct conf_auth auth;
    enum conf_bare_mode bare_newlines; /* default reject */
    struct conf_listener *listeners;
    size_t nlisteners;
    char **domains;                 /* local domains, lower case */
    struct conf_domain_delivery *domain_delivery; /* ndomains entries, same order */
    size_t ndomains;
    struct conf_remote *remotes;    /* remote DOMAIN { ... } blocks */
    size_t nremotes;
    struct conf_delivery delivery;
    struct conf_limits limits;
    struct conf_timeouts timeouts;
};

#define CONF_ERRORS_MAX 16

/* Input bounds: conf_parse refuses anything larger or deeper. */
#define CONF_FILE_MAX (1024 * 1024)  /* octets of a configuration file */
#define CONF_TOKEN_MAX 4096          /* octets of one word or quoted string */
#define CONF_DEPTH_MAX 4             /* nested { } blocks */
#define CONF_LISTENERS_MAX 64
#define CONF_DOMAINS_MAX 10000
#define CONF_REMOTES_MAX 1000
#define CONF_TRUSTED_MAX 1000
#define CONF_TOKEN_KEYS_MAX 16

struct conf_errors {
    size_t n;                       /* errors stored (at most CONF_ERRORS_MAX; when full, the
                                       last says "too many errors" and parsing stopped there) */
    struct {
        unsigned line;              /* 1-based line number; 0 = the file as a whole */
        char msg[200];
    } e[CONF_ERRORS_MAX];
};

/* Parse a whole configuration. Returns NULL when there is any error; errs lists them. */
struct config *conf_parse(const char *text, size_t len, struct conf_errors *errs);

/* Read and parse a file (path NULL: the embedded default, etc/sluice.conf). On error
 * returns NULL; errs lists the errors, or holds one with line 0 for an I/O failure. */
struct config *conf_load(const char *path, struct conf_errors *errs);

void conf_free(struct config *c);

/* The embedded default configuration (etc/sluice.conf, compiled in). */
extern const char conf_default_text[];
extern const size_t conf_default_len;

#endif
