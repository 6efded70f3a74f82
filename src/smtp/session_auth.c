/* session_auth: the AUTH command and its exchanges (RFC 4954 §4), driving the pure mechanisms
 * of src/sasl (PLAIN RFC 4616, LOGIN, SCRAM-SHA-256[-PLUS] RFC 5802/7677, OAUTHBEARER RFC 7628
 * and XOAUTH2 with JWTs checked by sasl/jwt, EXTERNAL with TLS client certificates). Called
 * by session_cmd.c (AUTH, EHLO's keyword) and session.c (each response line); calls dir for
 * logins, util/pool to check passwords off the event loop, and OpenSSL for channel bindings.
 * Invariants: one exchange at a time, its state freed on every way out; input waits (SESSION_
 * WAIT) while a password is checked or a failure is delayed, so pipelined bytes never race an
 * answer; an unknown user costs the same password check as a known one (G11); every outcome
 * is one log line, never with a password or token in it. */
#include "smtp/session_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "dir/dir.h"
#include "dir/passwd.h"
#include "sasl/bearer.h"
#include "sasl/jwt.h"
#include "sasl/plain.h"
#include "sasl/saslprep.h"
#include "sasl/scram.h"
#include "util/base64.h"
#include "util/log.h"
#include "util/pool.h"

enum auth_mech {
    AUTH_SCRAM_PLUS,
    AUTH_SCRAM,
    AUTH_PLAIN,
    AUTH_LOGIN,
    AUTH_OAUTHBEARER,
    AUTH_XOAUTH2,
    AUTH_EXTERNAL,
    AUTH_NMECH,
};

static const char *const auth_names[AUTH_NMECH] = {
    "SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "PLAIN", "LOGIN", "OAUTHBEARER", "XOAUTH2", "EXTERNAL",
};

/* A yescrypt hash of a password nobody has: unknown users are checked against it, so that
 * their answer takes as long as a real one (G11). */
static const char auth_dummy_hash[] =
    "$y$j9T$tcHVcXxDyXGoWNnjO9cll0$jB.p.qKecG4AY07dZGAm3lWo6U3e8WiyKX2Hl8NwsL1";

#define AUTH_DECODED_MAX (SESSION_AUTH_LINE_MAX / 4 * 3)

struct session_auth {
    enum auth_mech mech;
    unsigned step;
    struct event *delay; /* failure delay; then 535 (and maybe 421) */
    bool delay_close;
    char user[SASL_ID_MAX + 1]; /* LOGIN's user name; the identity for the log */
    struct sasl_scram scram;
    struct sasl_scram_creds creds;
    bool creds_real;             /* SCRAM: the user exists, is enabled, has creds */
    char login[SASL_ID_MAX + 1]; /* the canonical mailbox once known */
};

struct auth_check { /* one password check on the pool */
    uint64_t session_id;
    struct session_server *srv;
    char hash[256];
    char password[SASL_PASSWORD_MAX + 1];
    size_t password_len;
    bool real;     /* the login exists and is enabled */
    bool refused;  /* SASLprep refused the password: hashed all the same, never accepted */
    bool ok;
};

static bool auth_offered(const struct session *s)
{
    return s->listener->auth != CONF_AUTH_NONE &&
           (s->tls || (s->srv->cfg->auth.plaintext_loopback && s->loopback));
}

static bool auth_mech_offered(const struct session *s, enum auth_mech m)
{
    size_t nkeys;
    switch (m) {
    case AUTH_SCRAM_PLUS:
        return s->tls;
    case AUTH_OAUTHBEARER:
    case AUTH_XOAUTH2:
        return session_server_token_keys(s->srv, &nkeys) != NULL && nkeys > 0;
    case AUTH_EXTERNAL:
        return s->tls && s->srv->cfg->auth.external != CONF_EXTERNAL_NONE;
    default:
        return true;
    }
}

void session_auth_mechanisms(const struct session *s, char *out, size_t outlen)
{
    size_t pos = 0;
    out[0] = '\0';
    if (!auth_offered(s))
        return;
    for (int m = 0; m < AUTH_NMECH; m++) {
        if (!auth_mech_offered(s, (enum auth_mech)m))
            continue;
        int n = snprintf(out + pos, outlen - pos, "%s%s", pos > 0 ? " " : "", auth_names[m]);
        if (n < 0 || (size_t)n >= outlen - pos)
            return;
        pos += (size_t)n;
    }
}

static void auth_log(struct session *s, const char *result, const char *reason)
{
    char user[200] = "-";
    struct session_auth *a = s->auth;
    if (a != NULL && (a->login[0] != '\0' || a->user[0] != '\0')) {
        const char *u = a->login[0] != '\0' ? a->login : a->user;
        log_value(user, sizeof user, u, strlen(u));
    }
    log_event("auth", "session=%s client=%s mech=%s user=%s result=%s reason=%s", s->name, s->addr,
              a != NULL ? auth_names[a->mech] : "-", user, result, reason != NULL ? reason : "-");
}

void session_auth_free(struct session *s)
{
    struct session_auth *a = s->auth;
    if (a == NULL)
        return;
    if (a->delay != NULL)
        event_free(a->delay);
    OPENSSL_cleanse(a, sizeof *a);
    free(a);
    s->auth = NULL;
}

/* The exchange is over: back to commands, and go on with whatever was pipelined. */
static void auth_end(struct session *s)
{
    session_auth_free(s);
    if (s->state == SESSION_AUTH || s->state == SESSION_WAIT) {
        s->state = SESSION_COMMAND;
        if (!s->closing)
            session_process(s);
    }
}

static void auth_reply_end(struct session *s, enum reply_id id)
{
    session_reply(s, id, NULL);
    auth_end(s);
}

static void auth_challenge(struct session *s, const void *data, size_t len)
{
    char b64[BASE64_ENCODED_LEN(SCRAM_MSG_MAX) + 1];
    _Static_assert(BASE64_ENCODED_LEN(2 * SCRAM_NONCE_MAX + 4 * SCRAM_SALT_MAX / 3 + 40) < 512,
                   "a server-first challenge must fit REPLY_ARG_MAX");
    if (base64_encode(data, len, b64, sizeof b64) == 0 && len > 0) {
        auth_reply_end(s, REPLY_LOCAL_ERROR);
        return;
    }
    session_reply(s, REPLY_AUTH_CHALLENGE, b64);
    s->state = SESSION_AUTH;
}

static void auth_succeed(struct session *s)
{
    struct session_auth *a = s->auth;
    free(s->login);
    s->login = strdup(a->login);
    if (s->login == NULL) {
        auth_reply_end(s, REPLY_AUTH_TEMPFAIL);
        return;
    }
    auth_log(s, "ok", NULL);
    auth_reply_end(s, REPLY_AUTH_OK);
}

static void auth_delay_cb(evutil_socket_t fd, short what, void *arg)
{
    struct session *s = arg;
    (void)fd;
    (void)what;
    if (s->closing) { /* the session ended while it waited; its 535 is moot */
        auth_end(s);
        return;
    }
    bool close = s->auth->delay_close;
    session_reply(s, REPLY_AUTH_FAILED, NULL);
    if (close && !s->closing) {
        session_reply(s, REPLY_AUTH_TOO_MANY, NULL);
        session_close(s);
    }
    auth_end(s);
}

/* RFC 4954 §4: 535 5.7.8, after a delay that makes guessing slow; past the per-session or
 * per-address limit the connection is closed with 421 4.7.0 (G8). */
static void auth_fail(struct session *s, const char *reason)
{
    struct session_auth *a = s->auth;
    const struct conf_auth *ca = &s->srv->cfg->auth;
    auth_log(s, "fail", reason);
    s->auth_failures++;
    bool blocked = session_server_auth_blocked(s, true);
    a->delay_close = blocked || s->auth_failures >= ca->session_failures;
    s->state = SESSION_WAIT;
    a->delay = evtimer_new(s->srv->base, auth_delay_cb, s);
    struct timeval tv = session_tv(ca->failure_delay);
    if (a->delay == NULL || evtimer_add(a->delay, &tv) != 0)
        auth_delay_cb(-1, 0, s);
}

static void auth_tempfail(struct session *s, const char *reason)
{
    auth_log(s, "tempfail", reason);
    auth_reply_end(s, REPLY_AUTH_TEMPFAIL);
}

/* ---- passwords (PLAIN, LOGIN) ---- */

static void auth_check_work(void *arg)
{
    struct auth_check *c = arg;
    bool ok = passwd_verify(c->real ? c->hash : auth_dummy_hash, c->password, c->password_len);
    c->ok = ok && c->real && !c->refused;
    OPENSSL_cleanse(c->password, sizeof c->password);
}

static void auth_check_done(void *arg)
{
    struct auth_check *c = arg;
    struct session *s = session_find(c->srv, c->session_id);
    if (s != NULL && s->auth != NULL && !s->closing) {
        if (c->ok)
            auth_succeed(s);
        else
            auth_fail(s, !c->real   ? "unknown or disabled user"
                         : c->refused ? "password refused by SASLprep"
                                      : "bad password");
    }
    OPENSSL_cleanse(c, sizeof *c);
    free(c);
}

struct auth_login_lookup {
    uint64_t session_id;
    struct session_server *srv;
    struct auth_check *check;
};

/* The session a directory answer is for, or NULL when it closed or left AUTH meanwhile;
 * frees lk either way. */
static struct session *auth_lookup_session(struct auth_login_lookup *lk)
{
    struct session *s = session_find(lk->srv, lk->session_id);
    free(lk);
    return s != NULL && s->auth != NULL && !s->closing ? s : NULL;
}

static void auth_password_cb(const struct dir_answer *ans, void *arg)
{
    struct auth_login_lookup *lk = arg;
    struct auth_check *c = lk->check;
    struct session *s = auth_lookup_session(lk);
    if (s == NULL) {
        OPENSSL_cleanse(c, sizeof *c);
        free(c);
        return;
    }
    if (ans->result == DIR_TEMPFAIL) {
        OPENSSL_cleanse(c, sizeof *c);
        free(c);
        auth_tempfail(s, "directory unavailable");
        return;
    }
    c->real = ans->result == DIR_MAILBOX && ans->password_hash[0] != '\0' &&
              strlen(ans->password_hash) < sizeof c->hash;
    if (c->real) {
        memcpy(c->hash, ans->password_hash, strlen(ans->password_hash) + 1);
        snprintf(s->auth->login, sizeof s->auth->login, "%s", ans->address);
    }
    struct pool *p = session_server_pool(s->srv);
    if (p == NULL || pool_submit(p, auth_check_work, auth_check_done, c) != 0) {
        OPENSSL_cleanse(c, sizeof *c);
        free(c);
        auth_tempfail(s, "no thread for the password check");
    }
}

/* Looks the user up, then checks the password on a pool thread. */
static void auth_password(struct session *s, const char *user, const char *password, size_t len)
{
    struct auth_check *c = calloc(1, sizeof *c);
    struct auth_login_lookup *lk = calloc(1, sizeof *lk);
    if (c == NULL || lk == NULL || len >= sizeof c->password) {
        free(c);
        free(lk);
        auth_tempfail(s, "out of memory");
        return;
    }
    c->session_id = lk->session_id = s->id;
    c->srv = lk->srv = s->srv;
    /* RFC 4616 §2: the password compared is the prepared one (RFC 4013), as stored; a
     * preparation that fails or is empty fails verification. */
    if (sasl_saslprep(password, len, SASL_PREP_QUERY, c->password, sizeof c->password,
                      &c->password_len) != 0)
        c->refused = true;
    lk->check = c;
    snprintf(s->auth->user, sizeof s->auth->user, "%s", user);
    s->state = SESSION_WAIT;
    dir_login(s->srv->dir, user, auth_password_cb, lk);
}

static void auth_plain(struct session *s, const uint8_t *msg, size_t len)
{
    struct sasl_plain *p = malloc(sizeof *p);
    if (p == NULL) {
        auth_tempfail(s, "out of memory");
        return;
    }
    enum sasl_plain_status st = sasl_plain_parse(msg, len, p);
    if (st == SASL_PLAIN_SPLIT) {
        auth_log(s, "syntax", "fields");
        auth_reply_end(s, REPLY_AUTH_SPLIT);
    } else if (st != SASL_PLAIN_OK) {
        auth_fail(s, "empty or over-long field");
    } else if (p->authzid[0] != '\0' && strcasecmp(p->authzid, p->authcid) != 0) {
        snprintf(s->auth->user, sizeof s->auth->user, "%s", p->authcid);
        auth_fail(s, "authorization identity differs");
    } else {
        auth_password(s, p->authcid, p->password, p->password_len);
    }
    OPENSSL_cleanse(p, sizeof *p);
    free(p);
}

static void auth_login_step(struct session *s, const uint8_t *msg, size_t len)
{
    struct session_auth *a = s->auth;
    char field[SASL_PASSWORD_MAX + 1];
    size_t n = 0;
    enum sasl_plain_status st = a->step == 0 ? sasl_login_user(msg, len, field, sizeof field, &n)
                                             : sasl_login_field(msg, len, field, sizeof field, &n);
    if (st == SASL_PLAIN_SPLIT) {
        auth_reply_end(s, REPLY_AUTH_SPLIT);
    } else if (st != SASL_PLAIN_OK || (a->step == 0 && n > SASL_ID_MAX)) {
        auth_fail(s, "empty or over-long field");
    } else if (a->step == 0) {
        memcpy(a->user, field, n + 1);
        a->step = 1;
        auth_challenge(s, "Password:", 9);
    } else {
        char user[SASL_ID_MAX + 1];
        memcpy(user, a->user, sizeof user);
        auth_password(s, user, field, n);
    }
    OPENSSL_cleanse(field, sizeof field);
}

/* ---- SCRAM ---- */

/* Credentials for a user we cannot log in: a salt that stays the same for the name (so a
 * second try looks like the first) and keys nobody knows, so the proof fails at the end. */
static void auth_scram_fake(struct session *s)
{
    struct session_auth *a = s->auth;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    const char *host = s->srv->cfg->hostname != NULL ? s->srv->cfg->hostname : "";
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(ctx, "sluice-scram", 12) != 1 ||
        EVP_DigestUpdate(ctx, host, strlen(host)) != 1 ||
        EVP_DigestUpdate(ctx, a->scram.user, strlen(a->scram.user)) != 1 ||
        EVP_DigestFinal_ex(ctx, digest, &dlen) != 1 || dlen < 16)
        RAND_bytes(digest, 16);
    EVP_MD_CTX_free(ctx);
    memset(&a->creds, 0, sizeof a->creds);
    memcpy(a->creds.salt, digest, 16);
    a->creds.salt_len = 16;
    a->creds.iterations = SCRAM_ITERATIONS_DEFAULT;
    RAND_bytes(a->creds.stored_key, sizeof a->creds.stored_key);
    RAND_bytes(a->creds.server_key, sizeof a->creds.server_key);
    a->creds_real = false;
}

static void auth_scram_server_first(struct session *s)
{
    struct session_auth *a = s->auth;
    uint8_t rnd[24];
    char out[SCRAM_MSG_MAX];
    size_t n = 0;
    if (RAND_bytes(rnd, sizeof rnd) != 1 ||
        sasl_scram_server_first(&a->scram, &a->creds, rnd, sizeof rnd, out, sizeof out, &n) !=
            SASL_SCRAM_OK) {
        auth_tempfail(s, "scram server-first");
        return;
    }
    a->step = 1;
    auth_challenge(s, out, n);
}

static void auth_scram_creds_cb(const struct dir_answer *ans, void *arg)
{
    struct session *s = auth_lookup_session(arg);
    if (s == NULL)
        return;
    struct session_auth *a = s->auth;
    if (ans->result == DIR_TEMPFAIL) {
        auth_tempfail(s, "directory unavailable");
        return;
    }
    if (ans->result == DIR_MAILBOX &&
        sasl_scram_creds_parse(ans->scram, strlen(ans->scram), &a->creds) == 0) {
        a->creds_real = true;
        snprintf(a->login, sizeof a->login, "%s", ans->address);
    } else {
        auth_scram_fake(s);
    }
    auth_scram_server_first(s);
}

/* RFC 9266 (tls-exporter, TLS 1.3 only) and RFC 5929 §4.1 (tls-server-end-point: our
 * certificate's hash, SHA-256 when it was signed with MD5 or SHA-1). */
static size_t auth_channel_binding(struct session *s, enum sasl_scram_cb cb, uint8_t *out)
{
    SSL *ssl = s->tls ? bufferevent_openssl_get_ssl(s->bev) : NULL;
    if (ssl == NULL)
        return 0;
    if (cb == SASL_SCRAM_CB_TLS_EXPORTER) {
        static const char label[] = "EXPORTER-Channel-Binding";
        if (SSL_version(ssl) < TLS1_3_VERSION ||
            SSL_export_keying_material(ssl, out, 32, label, sizeof label - 1, NULL, 0, 0) != 1)
            return 0;
        return 32;
    }
    if (cb == SASL_SCRAM_CB_TLS_SERVER_END_POINT) {
        X509 *cert = SSL_get_certificate(ssl);
        int md_nid = 0, pk_nid = 0;
        if (cert == NULL || !OBJ_find_sigid_algs(X509_get_signature_nid(cert), &md_nid, &pk_nid))
            return 0;
        const EVP_MD *md = md_nid == NID_md5 || md_nid == NID_sha1 || md_nid == NID_undef
                               ? EVP_sha256()
                               : EVP_get_digestbynid(md_nid);
        unsigned int n = 0;
        if (md == NULL || EVP_MD_get_size(md) > SCRAM_CB_DATA_MAX ||
            X509_digest(cert, md, out, &n) != 1)
            return 0;
        return n;
    }
    return 0;
}

static void auth_scram_step(struct session *s, const uint8_t *msg, size_t len)
{
    struct session_auth *a = s->auth;
    enum sasl_scram_status st;
    if (a->step == 0) {
        st = sasl_scram_client_first(&a->scram, a->mech == AUTH_SCRAM_PLUS, s->tls, msg, len);
        snprintf(a->user, sizeof a->user, "%s", a->scram.user);
        if (st == SASL_SCRAM_SYNTAX) {
            auth_log(s, "syntax", "client-first");
            auth_reply_end(s, REPLY_AUTH_SPLIT);
            return;
        }
        if (st != SASL_SCRAM_OK) {
            auth_fail(s, "channel binding or extension refused");
            return;
        }
        if (a->scram.authzid[0] != '\0' && strcasecmp(a->scram.authzid, a->scram.user) != 0) {
            auth_fail(s, "authorization identity differs");
            return;
        }
        struct auth_login_lookup *lk = calloc(1, sizeof *lk);
        if (lk == NULL) {
            auth_tempfail(s, "out of memory");
            return;
        }
        lk->session_id = s->id;
        lk->srv = s->srv;
        s->state = SESSION_WAIT;
        dir_login(s->srv->dir, a->scram.user, auth_scram_creds_cb, lk);
        return;
    }
    if (a->step == 1) {
        uint8_t cb[SCRAM_CB_DATA_MAX];
        size_t cblen = auth_channel_binding(s, a->scram.cb, cb);
        char out[SCRAM_MSG_MAX];
        size_t n = 0;
        bool need_cb = a->scram.cb == SASL_SCRAM_CB_TLS_EXPORTER ||
                       a->scram.cb == SASL_SCRAM_CB_TLS_SERVER_END_POINT;
        if (need_cb && cblen == 0) {
            auth_fail(s, "channel binding unavailable");
            return;
        }
        st = sasl_scram_client_final(&a->scram, &a->creds, need_cb ? cb : NULL, cblen, msg, len,
                                     out, sizeof out, &n);
        if (st == SASL_SCRAM_SYNTAX) {
            auth_log(s, "syntax", "client-final");
            auth_reply_end(s, REPLY_AUTH_SPLIT);
        } else if (st != SASL_SCRAM_OK || !a->creds_real) {
            auth_fail(s, a->creds_real ? "bad proof" : "unknown or disabled user");
        } else {
            a->step = 2;
            auth_challenge(s, out, n);
        }
        return;
    }
    /* RFC 4954 §4: the server-final message went as a challenge; the client's answer to it
     * is empty, and then we say 235. */
    if (len != 0)
        auth_fail(s, "data after server-final");
    else
        auth_succeed(s);
}

/* ---- bearer tokens ---- */

static void auth_bearer_refuse(struct session *s, const char *reason)
{
    struct session_auth *a = s->auth;
    char json[128];
    size_t n = sasl_oauthbearer_error(NULL, json, sizeof json);
    auth_log(s, "refused", reason);
    a->step = 1;
    auth_challenge(s, json, n);
}

static void auth_bearer_login_cb(const struct dir_answer *ans, void *arg)
{
    struct session *s = auth_lookup_session(arg);
    if (s == NULL)
        return;
    if (ans->result == DIR_TEMPFAIL)
        auth_tempfail(s, "directory unavailable");
    else if (ans->result != DIR_MAILBOX)
        auth_bearer_refuse(s, "token names no enabled mailbox");
    else {
        snprintf(s->auth->login, sizeof s->auth->login, "%s", ans->address);
        auth_succeed(s);
    }
}

static void auth_bearer(struct session *s, const uint8_t *msg, size_t len)
{
    struct session_auth *a = s->auth;
    if (a->step == 1) {
        /* RFC 7628 §3.2.3: the client acknowledges the error (^A, or empty for XOAUTH2). */
        auth_fail(s, "token refused");
        return;
    }
    struct sasl_bearer *b = malloc(sizeof *b);
    if (b == NULL) {
        auth_tempfail(s, "out of memory");
        return;
    }
    enum sasl_bearer_status st = a->mech == AUTH_OAUTHBEARER ? sasl_oauthbearer_parse(msg, len, b)
                                                             : sasl_xoauth2_parse(msg, len, b);
    if (st == SASL_BEARER_SYNTAX || st == SASL_BEARER_DUMMY) {
        free(b);
        auth_log(s, "syntax", "bearer message");
        auth_reply_end(s, REPLY_AUTH_SPLIT);
        return;
    }
    snprintf(a->user, sizeof a->user, "%s", b->authzid);
    if (st != SASL_BEARER_OK) {
        free(b);
        auth_bearer_refuse(s, "no bearer token");
        return;
    }
    const struct conf_auth *ca = &s->srv->cfg->auth;
    struct jwt_policy policy = {.issuer = ca->token_issuer,
                                .audience = ca->token_audience,
                                .claim = ca->token_claim,
                                .now = (int64_t)time(NULL),
                                .leeway = ca->token_leeway / 1000};
    size_t nkeys;
    const struct jwt_key *keys = session_server_token_keys(s->srv, &nkeys);
    char identity[SASL_ID_MAX + 1];
    enum jwt_status js =
        jwt_verify(b->token, b->token_len, keys, nkeys, &policy, identity, sizeof identity);
    OPENSSL_cleanse(b->token, sizeof b->token);
    if (js != JWT_OK) {
        free(b);
        auth_bearer_refuse(s, jwt_status_text(js));
        return;
    }
    bool other = b->authzid[0] != '\0' && strcasecmp(b->authzid, identity) != 0;
    free(b);
    snprintf(a->user, sizeof a->user, "%s", identity);
    if (other) {
        auth_bearer_refuse(s, "authorization identity differs from the token's");
        return;
    }
    struct auth_login_lookup *lk = calloc(1, sizeof *lk);
    if (lk == NULL) {
        auth_tempfail(s, "out of memory");
        return;
    }
    lk->session_id = s->id;
    lk->srv = s->srv;
    s->state = SESSION_WAIT;
    dir_login(s->srv->dir, identity, auth_bearer_login_cb, lk);
}

/* ---- EXTERNAL (RFC 4422 Appendix A) ---- */

static void auth_external_cb(const struct dir_answer *ans, void *arg)
{
    struct session *s = auth_lookup_session(arg);
    if (s == NULL)
        return;
    struct session_auth *a = s->auth;
    if (ans->result == DIR_TEMPFAIL) {
        auth_tempfail(s, "directory unavailable");
    } else if (ans->result != DIR_MAILBOX) {
        auth_fail(s, "certificate maps to no enabled mailbox");
    } else if (a->user[0] != '\0' && strcasecmp(a->user, ans->address) != 0) {
        auth_fail(s, "authorization identity differs");
    } else {
        snprintf(a->login, sizeof a->login, "%s", ans->address);
        auth_succeed(s);
    }
}

/* The subject's emailAddress, else its CN, as the mailbox. */
static bool auth_cert_subject(X509 *cert, char *out, size_t outlen)
{
    X509_NAME *name = X509_get_subject_name(cert);
    int nids[] = {NID_pkcs9_emailAddress, NID_commonName};
    for (size_t i = 0; i < 2; i++) {
        int n = X509_NAME_get_text_by_NID(name, nids[i], out, (int)outlen);
        if (n > 0 && (size_t)n < outlen && strlen(out) == (size_t)n)
            return true;
    }
    return false;
}

static void auth_external(struct session *s, const uint8_t *msg, size_t len)
{
    struct session_auth *a = s->auth;
    SSL *ssl = s->tls ? bufferevent_openssl_get_ssl(s->bev) : NULL;
    X509 *cert = ssl != NULL ? SSL_get1_peer_certificate(ssl) : NULL;
    if (len > SASL_ID_MAX || memchr(msg, '\0', len) != NULL) {
        X509_free(cert);
        auth_reply_end(s, REPLY_AUTH_SPLIT);
        return;
    }
    memcpy(a->user, msg, len);
    a->user[len] = '\0';
    if (cert == NULL) {
        auth_fail(s, "no client certificate");
        return;
    }
    struct auth_login_lookup *lk = calloc(1, sizeof *lk);
    if (lk == NULL) {
        X509_free(cert);
        auth_tempfail(s, "out of memory");
        return;
    }
    lk->session_id = s->id;
    lk->srv = s->srv;
    if (s->srv->cfg->auth.external == CONF_EXTERNAL_FINGERPRINT) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        char hex[2 * EVP_MAX_MD_SIZE + 1];
        X509_digest(cert, EVP_sha256(), md, &n);
        for (unsigned i = 0; i < n; i++)
            snprintf(hex + 2 * i, 3, "%02x", md[i]);
        hex[2 * n] = '\0';
        X509_free(cert);
        s->state = SESSION_WAIT;
        dir_certificate(s->srv->dir, hex, auth_external_cb, lk);
        return;
    }
    char subject[SASL_ID_MAX + 1];
    bool verified = SSL_get_verify_result(ssl) == X509_V_OK;
    bool named = auth_cert_subject(cert, subject, sizeof subject);
    X509_free(cert);
    if (!verified || !named) {
        free(lk);
        auth_fail(s, verified ? "certificate names no address" : "certificate not verified");
        return;
    }
    s->state = SESSION_WAIT;
    dir_login(s->srv->dir, subject, auth_external_cb, lk);
}

/* ---- the exchange ---- */

static void auth_step(struct session *s, const uint8_t *msg, size_t len)
{
    switch (s->auth->mech) {
    case AUTH_PLAIN:
        auth_plain(s, msg, len);
        break;
    case AUTH_LOGIN:
        auth_login_step(s, msg, len);
        break;
    case AUTH_SCRAM:
    case AUTH_SCRAM_PLUS:
        auth_scram_step(s, msg, len);
        break;
    case AUTH_OAUTHBEARER:
    case AUTH_XOAUTH2:
        auth_bearer(s, msg, len);
        break;
    case AUTH_EXTERNAL:
        auth_external(s, msg, len);
        break;
    case AUTH_NMECH:
        break;
    }
}

/* Decodes one base64 response (RFC 4954 §4) and hands it to the mechanism. */
static void auth_feed(struct session *s, const char *text, size_t len)
{
    uint8_t *msg = malloc(AUTH_DECODED_MAX + 1);
    size_t n = 0;
    if (msg == NULL) {
        auth_tempfail(s, "out of memory");
        return;
    }
    if (!base64_decode(text, len, msg, AUTH_DECODED_MAX, &n)) {
        free(msg);
        auth_log(s, "syntax", "base64");
        auth_reply_end(s, REPLY_AUTH_BASE64);
        return;
    }
    auth_step(s, msg, n);
    OPENSSL_cleanse(msg, n);
    free(msg);
}

void session_auth_response(struct session *s, const char *line, size_t len)
{
    s->verb = "AUTH";
    if (s->auth == NULL) {
        s->state = SESSION_COMMAND;
        return;
    }
    if (len == 1 && line[0] == '*') {
        auth_log(s, "aborted", NULL);
        auth_reply_end(s, REPLY_AUTH_ABORTED); /* RFC 4954 §4 (G3) */
        return;
    }
    auth_feed(s, line, len);
}

void session_auth_too_long(struct session *s)
{
    s->verb = "AUTH";
    if (s->auth != NULL)
        auth_log(s, "syntax", "response too long");
    session_reply(s, REPLY_AUTH_TOO_LONG, NULL);
    auth_end(s);
}

/* The mechanisms that send the first message themselves answer an empty challenge when the
 * client gave no initial response; LOGIN asks for the user name. */
static void auth_first_challenge(struct session *s)
{
    if (s->auth->mech == AUTH_LOGIN)
        auth_challenge(s, "Username:", 9);
    else
        auth_challenge(s, "", 0);
}

void session_auth_start(struct session *s, const char *arg, size_t len)
{
    const char *sp = memchr(arg, ' ', len);
    size_t mlen = sp != NULL ? (size_t)(sp - arg) : len;

    if (s->listener->auth == CONF_AUTH_NONE) {
        session_reply(s, REPLY_AUTH_UNAVAILABLE, NULL);
        return;
    }
    if (!auth_offered(s)) {
        session_reply(s, REPLY_TLS_REQUIRED, NULL); /* G7 */
        return;
    }
    if (s->login != NULL) {
        session_reply(s, REPLY_AUTH_ALREADY, NULL); /* G6 */
        return;
    }
    if (s->tx != NULL) {
        session_reply(s, REPLY_AUTH_IN_TX, NULL); /* G6 */
        return;
    }
    if (mlen == 0) {
        session_reply(s, REPLY_AUTH_SYNTAX, NULL); /* G5 */
        return;
    }
    if (session_server_auth_blocked(s, false)) {
        log_event("auth", "session=%s client=%s mech=- user=- result=blocked reason=address",
                  s->name, s->addr);
        session_reply(s, REPLY_AUTH_TOO_MANY, NULL);
        session_close(s);
        return;
    }
    int m;
    for (m = 0; m < AUTH_NMECH; m++)
        if (strlen(auth_names[m]) == mlen && strncasecmp(arg, auth_names[m], mlen) == 0)
            break;
    if (m == AUTH_NMECH || !auth_mech_offered(s, (enum auth_mech)m)) {
        session_reply(s, REPLY_AUTH_MECH_UNKNOWN, NULL); /* G5 */
        return;
    }
    /* G9: every AUTH starts from a fresh context. */
    s->auth = calloc(1, sizeof *s->auth);
    if (s->auth == NULL) {
        session_reply(s, REPLY_LOCAL_ERROR, NULL);
        return;
    }
    s->auth->mech = (enum auth_mech)m;
    if (sp == NULL) {
        auth_first_challenge(s);
        return;
    }
    const char *ir = sp + 1;
    size_t irlen = len - mlen - 1;
    if (irlen == 1 && ir[0] == '=') /* RFC 4954 §4: "=" is an empty initial response */
        irlen = 0;
    else if (irlen == 0 || memchr(ir, ' ', irlen) != NULL) {
        auth_reply_end(s, REPLY_AUTH_BASE64);
        return;
    }
    auth_feed(s, ir, irlen);
}
