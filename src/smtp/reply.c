/* reply: the reply catalogue (see reply.h). Pure data plus one formatter.
 * Codes follow RFC 5321 §4.2, enhanced codes RFC 3463 and the registry of RFC 5248;
 * texts follow what operators know from Postfix where a row of HOSTILE-INPUTS names one.
 * A reply whose comment says "closes" is always followed by closing the connection. */
#include "smtp/reply.h"

#include <string.h>

static const struct reply_entry reply_table[REPLY_COUNT] = {
    [REPLY_GREETING] = {220, NULL, "{} ESMTP Sluice"},
    [REPLY_HELO] = {250, NULL, "{}"},
    [REPLY_OK] = {250, "2.0.0", "Ok"},
    [REPLY_MAIL_OK] = {250, "2.1.0", "Ok"},
    [REPLY_RCPT_OK] = {250, "2.1.5", "Ok"},
    [REPLY_DATA_GO] = {354, NULL, "End data with <CR><LF>.<CR><LF>"},
    [REPLY_QUEUED] = {250, "2.0.0", "Ok: queued as {}"},
    [REPLY_BDAT_OK] = {250, "2.0.0", "Ok: {} octets received"},
    [REPLY_QUIT] = {221, "2.0.0", "Bye"},
    [REPLY_VRFY_CANNOT] = {252, "2.0.0",
                           "Cannot VRFY user, but will accept message and attempt delivery"},
    [REPLY_HELP] = {214, "2.0.0",
                    "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY EXPN HELP "
                    "STARTTLS"},
    [REPLY_STARTTLS_GO] = {220, "2.0.0", "Ready to start TLS"},

    [REPLY_UNKNOWN_COMMAND] = {500, "5.5.2", "Error: command not recognized"},
    [REPLY_LINE_TOO_LONG] = {500, "5.5.2", "Error: command line too long"},
    [REPLY_BARE_LF_COMMAND] = {500, "5.5.2", "Error: bare <LF> received; lines end with <CR><LF>"},
    [REPLY_NUL_COMMAND] = {501, "5.5.2", "Error: NUL characters are not allowed in SMTP commands"},
    [REPLY_CTL_COMMAND] = {501, "5.5.2",
                           "Error: control characters are not allowed in SMTP commands"},
    [REPLY_SYNTAX_EHLO] = {501, "5.5.4", "Syntax: EHLO hostname"},
    [REPLY_SYNTAX_HELO] = {501, "5.5.4", "Syntax: HELO hostname"},
    [REPLY_SYNTAX_MAIL] = {501, "5.5.4", "Syntax: MAIL FROM:<address>"},
    [REPLY_SYNTAX_RCPT] = {501, "5.5.4", "Syntax: RCPT TO:<address>"},
    [REPLY_SYNTAX_DATA] = {501, "5.5.4", "Syntax: DATA"},
    [REPLY_SYNTAX_NOARG] = {501, "5.5.4", "Syntax: {}"},
    [REPLY_SYNTAX_BDAT] = {521, "5.5.4", "Syntax: BDAT count [LAST]"},
    [REPLY_SYNTAX_VRFY] = {501, "5.5.4", "Syntax: VRFY address"},
    [REPLY_BAD_SENDER] = {501, "5.1.7", "Bad sender address syntax"},
    [REPLY_BAD_RCPT] = {501, "5.1.3", "Bad recipient address syntax"},
    [REPLY_SENDER_TOO_LONG] = {501, "5.1.7", "Sender address too long"},
    [REPLY_RCPT_TOO_LONG] = {501, "5.1.3", "Recipient address too long"},
    [REPLY_NEED_SMTPUTF8] = {553, "5.6.7", "Must declare SMTPUTF8 to send unicode address"},
    [REPLY_BAD_UTF8] = {501, "5.6.7", "Bad UTF-8 syntax in address"},
    [REPLY_PARAM_SYNTAX] = {501, "5.5.4", "Bad parameter syntax"},
    [REPLY_PARAM_UNKNOWN] = {555, "5.5.4", "Unsupported option"},
    [REPLY_SIZE_SYNTAX] = {501, "5.5.4", "Bad message size syntax"},
    [REPLY_SIZE_EXCEEDED] = {552, "5.3.4", "Message size exceeds fixed limit"},
    [REPLY_BODY_SYNTAX] = {501, "5.5.4", "Bad BODY syntax"},
    [REPLY_XTEXT_SYNTAX] = {501, "5.5.4", "Bad xtext syntax in ENVID, ORCPT or AUTH"},
    [REPLY_NOTIFY_SYNTAX] = {501, "5.5.4", "Bad NOTIFY syntax"},
    [REPLY_RET_SYNTAX] = {501, "5.5.4", "Bad RET syntax"},

    [REPLY_NEED_HELO] = {503, "5.5.1", "Error: send HELO/EHLO first"},
    [REPLY_NESTED_MAIL] = {503, "5.5.1", "Error: nested MAIL command"},
    [REPLY_NEED_MAIL] = {503, "5.5.1", "Error: need MAIL command"},
    [REPLY_NEED_RCPT] = {503, "5.5.1", "Error: need RCPT command"},
    [REPLY_NO_VALID_RCPT] = {554, "5.5.1", "Error: no valid recipients"},
    [REPLY_DATA_AFTER_BDAT] = {503, "5.5.1", "Error: DATA after BDAT"},
    [REPLY_DATA_BINARYMIME] = {503, "5.5.1", "Error: BODY=BINARYMIME requires BDAT"},
    [REPLY_RCPT_AFTER_BDAT] = {503, "5.5.1", "Error: RCPT after BDAT"},
    [REPLY_BDAT_NOT_NEGOTIATED] = {502, "5.5.1", "Error: CHUNKING was not negotiated"},
    [REPLY_BDAT_NULL] = {504, "5.5.4", "Error: null BDAT request"},
    [REPLY_BDAT_TOO_BIG] = {552, "5.3.4", "Chunk exceeds message size limit"},
    [REPLY_BDAT_DISCARDED] = {551, "5.0.0", "Discarded {} octets after earlier error"},
    [REPLY_EXPN_DISABLED] = {502, "5.5.1", "EXPN command is disabled"},
    [REPLY_AUTH_UNAVAILABLE] = {502, "5.5.1", "Error: authentication not enabled"},
    [REPLY_AUTH_CHALLENGE] = {334, NULL, "{}"},
    [REPLY_AUTH_OK] = {235, "2.7.0", "Authentication successful"},
    [REPLY_AUTH_FAILED] = {535, "5.7.8", "Error: authentication failed"},
    [REPLY_AUTH_TEMPFAIL] = {454, "4.7.0", "Temporary authentication failure"},
    [REPLY_AUTH_ABORTED] = {501, "5.7.0", "Authentication aborted"},
    [REPLY_AUTH_BASE64] = {501, "5.5.2", "Can't decode base64"},
    [REPLY_AUTH_SPLIT] = {501, "5.5.2", "Can't split auth value"},
    [REPLY_AUTH_TOO_LONG] = {500, "5.5.6", "SASL response limit exceeded"},
    [REPLY_AUTH_MECH_UNKNOWN] = {504, "5.5.4", "Unrecognized authentication type"},
    [REPLY_AUTH_SYNTAX] = {501, "5.5.4", "Syntax: AUTH mechanism"},
    [REPLY_AUTH_IN_TX] = {503, "5.5.1", "Error: MAIL transaction in progress"},
    [REPLY_AUTH_ALREADY] = {503, "5.5.1", "Error: already authenticated"},
    [REPLY_AUTH_TOO_MANY] = {421, "4.7.0", "Error: too many authentication failures; closing"},
    [REPLY_AUTH_REQUIRED] = {530, "5.7.0", "Authentication required"},
    [REPLY_SENDER_NOT_OWNED] = {553, "5.7.1",
                                "<{}>: Sender address rejected: not owned by the logged-in user"},
    [REPLY_RCPT_FORWARD] = {251, "2.1.5", "User not local; will forward to <{}>"},
    [REPLY_RCPT_RELOCATED] = {551, "5.1.6", "User not local; please try <{}>"},
    [REPLY_MAILBOX_DISABLED] = {550, "5.2.1", "<{}>: Recipient address rejected: mailbox disabled"},
    [REPLY_VRFY_OK] = {250, "2.1.5", "{}"},
    [REPLY_SYNTAX_EXPN] = {501, "5.5.4", "Syntax: EXPN address"},
    [REPLY_TLS_UNAVAILABLE] = {454, "4.7.0", "TLS not available due to local problem"},
    [REPLY_TLS_RATE] = {454, "4.7.0", "Error: too many new TLS sessions from {}"},
    [REPLY_TLS_ACTIVE] = {554, "5.5.1", "Error: TLS already active"},
    [REPLY_TLS_REQUIRED] = {530, "5.7.0", "Must issue a STARTTLS command first"},
    [REPLY_SYNC_ERROR] = {554, "5.5.0", "Error: SMTP protocol synchronization"},
    [REPLY_FOREIGN_PROTOCOL] = {421, "4.7.0", "Error: this is an SMTP server; closing"},

    [REPLY_RELAY_DENIED] = {554, "5.7.1", "<{}>: Relay access denied"},
    [REPLY_USER_UNKNOWN] = {550, "5.1.1", "<{}>: Recipient address rejected: User unknown"},
    [REPLY_TOO_MANY_RCPTS] = {452, "4.5.3", "Error: too many recipients"},

    [REPLY_MSG_TOO_BIG] = {552, "5.3.4", "Error: message size exceeds fixed limit"},
    [REPLY_MSG_HEADER_TOO_BIG] = {552, "5.3.4", "Error: message header section too big"},
    [REPLY_MSG_LINE_TOO_LONG] = {500, "5.5.2", "Error: message line too long"},
    [REPLY_MSG_BARE_NEWLINE] = {554, "5.6.0", "Error: bare <CR> or <LF> in message data"},
    [REPLY_MSG_NUL] = {554, "5.6.0", "Error: NUL character in message data"},
    [REPLY_MSG_TOO_MANY_HOPS] = {554, "5.4.6", "Error: too many hops (Received headers)"},

    [REPLY_STORAGE_FULL] = {452, "4.3.1", "Error: insufficient system storage"},
    [REPLY_STORAGE_ERROR] = {451, "4.3.0", "Error: queue file write error"},
    [REPLY_LOCAL_ERROR] = {451, "4.3.0", "Error: local error in processing"},
    [REPLY_TIMEOUT] = {421, "4.4.2", "Error: timeout exceeded"},
    [REPLY_TOO_MANY_ERRORS] = {421, "4.7.0", "Error: too many errors; closing"},
    [REPLY_TOO_MANY_JUNK] = {421, "4.7.0", "Error: too many commands without a message; closing"},
    [REPLY_TOO_MANY_MESSAGES] = {421, "4.7.0", "Error: too many messages in this connection"},
    [REPLY_TOO_MANY_SESSIONS] = {421, "4.7.0", "Error: too many connections; try again later"},
    [REPLY_TOO_MANY_FROM_IP] = {421, "4.7.0", "Error: too many connections from {}"},
    [REPLY_SHUTDOWN] = {421, "4.3.2", "Service shutting down; closing"},
};

#define REPLY_ARG_MAX 512 /* room for a SCRAM server-first message in base64 (RFC 5802 §5.1) */

const struct reply_entry *reply_get(enum reply_id id)
{
    return &reply_table[id];
}

/* Appends n bytes to out while room is left (one byte is kept for the NUL). */
static void reply_put(char *out, size_t cap, size_t *pos, const char *s, size_t n)
{
    size_t room = cap - 1 - *pos;
    if (n > room)
        n = room;
    memcpy(out + *pos, s, n);
    *pos += n;
}

size_t reply_format(char *out, size_t cap, enum reply_id id, const char *arg)
{
    const struct reply_entry *r = &reply_table[id];
    char code[4] = {(char)('0' + r->code / 100), (char)('0' + r->code / 10 % 10),
                    (char)('0' + r->code % 10), ' '};
    size_t pos = 0;

    if (cap < 8)
        return 0;
    /* The CRLF is always kept: reserve it before the text so a cut line still ends. */
    cap -= 2;
    reply_put(out, cap, &pos, code, 4);
    if (r->enhanced != NULL) {
        reply_put(out, cap, &pos, r->enhanced, strlen(r->enhanced));
        reply_put(out, cap, &pos, " ", 1);
    }
    for (const char *t = r->text; *t != '\0'; t++) {
        if (t[0] == '{' && t[1] == '}') {
            size_t n = 0;
            for (const char *a = arg != NULL ? arg : ""; *a != '\0' && n < REPLY_ARG_MAX;
                 a++, n++) {
                char c = (*a >= 0x20 && *a < 0x7f) ? *a : '?';
                reply_put(out, cap, &pos, &c, 1);
            }
            t++;
            continue;
        }
        reply_put(out, cap, &pos, t, 1);
    }
    out[pos++] = '\r';
    out[pos++] = '\n';
    out[pos] = '\0';
    return pos;
}
