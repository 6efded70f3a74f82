"""SMTP AUTH and submission policy end to end (issue #4): the SQLite directory changed with
`sluice domain|user|alias` while the daemon runs, AUTH with real clients (smtplib, swaks,
gsasl) and with raw exchanges (RFC 4954 §4) for every mechanism: PLAIN (RFC 4616), LOGIN,
SCRAM-SHA-256 and -PLUS (RFC 5802, RFC 7677, channel bindings RFC 9266 and RFC 5929 §4.1),
OAUTHBEARER (RFC 7628) and XOAUTH2 with JWTs (RFC 7519) the test signs itself (HS256, RS256,
ES256: RFC 7518 §3.2-3.4), EXTERNAL (RFC 4422 Appendix A) with client certificates the test
makes; sender ownership (HOSTILE-INPUTS B15), the open-relay battery (B10), trusted
networks, catch-all and subaddressing delivered to the right Maildir.

Every daemon uses a SQLite directory at <dir>/dir.db; keys and certificates are made with the
openssl command line."""

import base64
import hashlib
import hmac
import json
import os
import shutil
import smtplib
import subprocess
import time

import pytest

from e2e_helpers import Client, queued_id, tls_client_context, wait_for

PW = "correct horse battery staple"
ALICE = "alice@mx.test"
ISSUER = "https://issuer.test"
AUDIENCE = "sluice-smtp"
# Failures are delayed 1 s by default, and 20 per hour from one address close the session:
# the tests fail on purpose often, from 127.0.0.1.
FAST_AUTH = "failure-delay 50ms\nip-failures 100000\n"
LISTENERS = {"smtp": "auth optional", "submission": "auth required",
             "submissions": "auth required"}


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def openssl(*args, stdin=None):
    r = subprocess.run(["openssl"] + list(args), input=stdin, capture_output=True, timeout=60)
    assert r.returncode == 0, (args, r.stderr.decode(errors="replace"))
    return r.stdout


def auth_daemon(make_daemon, auth="", listeners=None, extra="", users=True, **kw):
    """A running daemon with a SQLite directory and an auth block; users: the domain mx.test
    and the mailbox alice@mx.test (password PW) added with the CLI after the start."""
    d = make_daemon(sqlite=True, listeners=listeners or LISTENERS,
                    extra="auth {\n%s%s\n}\n%s" % (FAST_AUTH, auth, extra), **kw)
    if users:
        d.cli("domain", "add", "mx.test")
        d.cli("user", "add", ALICE, "--stdin", stdin=PW + "\n")
    return d


def submission(d, context=None):
    """smtplib on the submission listener, after EHLO, STARTTLS and EHLO again."""
    s = smtplib.SMTP("127.0.0.1", d.port_required, local_hostname="client.test", timeout=10)
    s.ehlo()
    s.starttls(context=context or tls_client_context())
    s.ehlo()
    return s


def auth_plain(s, user, password):
    """AUTH PLAIN through smtplib; returns the reply code (235, 535...)."""
    s.user, s.password = user, password
    try:
        code, _ = s.auth("PLAIN", s.auth_plain)
    except smtplib.SMTPAuthenticationError as e:
        return e.smtp_code
    return code


def login_code(d, user, password):
    s = submission(d)
    try:
        return auth_plain(s, user, password)
    finally:
        s.close()


def mechanisms(s):
    return s.esmtp_features.get("auth", "").split()


# ---- the CLI round trip --------------------------------------------------------------------

def test_rfc4954_cli_user_add_passwd_disable_del_take_effect_without_restart(make_daemon):
    d = auth_daemon(make_daemon, users=False)
    pid = d.pid
    assert login_code(d, ALICE, PW) == 535
    d.cli("domain", "add", "mx.test")
    d.cli("user", "add", ALICE, "--stdin", stdin=PW)
    s = submission(d)
    assert mechanisms(s)[:4] == ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "PLAIN", "LOGIN"]
    assert auth_plain(s, ALICE, PW) == 235
    code, resp = s.mail(ALICE)
    assert code == 250, resp
    code, resp = s.rcpt("alice@mx.test")
    assert code == 250, resp
    code, resp = s.data(b"Subject: round trip\r\n\r\nhello\r\n")
    assert code == 250, resp
    queued_id(resp.decode())
    s.quit()

    d.cli("user", "passwd", ALICE, "--stdin", stdin="a new password\n")
    assert login_code(d, ALICE, PW) == 535
    assert login_code(d, ALICE, "a new password") == 235

    d.cli("user", "disable", ALICE)
    assert login_code(d, ALICE, "a new password") == 535
    d.cli("user", "enable", ALICE)
    assert login_code(d, ALICE, "a new password") == 235

    d.cli("user", "del", ALICE)
    assert login_code(d, ALICE, "a new password") == 535
    assert d.pid == pid and d.proc.poll() is None
    # Every outcome was logged, never with the password in it.
    assert "a new password" not in d.log() and PW not in d.log()
    assert any("result=ok" in ln for ln in d.log_events("auth"))


def break_directory(d, broken):
    """A real backend failure, no test hook: the mailboxes table renamed away under the running
    daemon (its statements then fail to prepare), or put back."""
    import sqlite3
    old, new = ("mailboxes", "mailboxes_away") if broken else ("mailboxes_away", "mailboxes")
    db = sqlite3.connect(os.path.join(d.dir, "dir.db"), timeout=10)
    try:
        db.execute("ALTER TABLE %s RENAME TO %s" % (old, new))
        db.commit()
    finally:
        db.close()


def test_g12_directory_unavailable_auth_454_4_7_0_rcpt_451_then_recovers(make_daemon):
    d = auth_daemon(make_daemon)
    assert login_code(d, ALICE, PW) == 235
    break_directory(d, True)
    s = submission(d)
    try:
        s.user, s.password = ALICE, PW
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            s.auth("PLAIN", s.auth_plain)
        assert e.value.smtp_code == 454
        assert e.value.smtp_error.startswith(b"4.7.0"), e.value.smtp_error
    finally:
        s.close()
    # RFC 5321 §4.2.5: a recipient that cannot be looked up now is a transient failure.
    with Client(d.port) as c:
        c.expect("EHLO client.test", 250)
        c.expect("MAIL FROM:<someone@remote.test>", 250)
        c.expect("RCPT TO:<alice@mx.test>", 451, "4.3.0")
    assert any("directory_error" in ln and "no\\x20such\\x20table" in ln
               for ln in d.log().splitlines())
    break_directory(d, False)
    assert login_code(d, ALICE, PW) == 235
    assert d.proc.poll() is None



def test_g12_directory_unavailable_at_delivery_defers_then_delivers(make_daemon):
    d = auth_daemon(make_daemon, listeners=RELAY_LISTENERS, delivery="retry-min 1s\nretry-max 1s")
    with Client(d.port) as c:
        c.expect("EHLO client.test", 250)
        c.expect("MAIL FROM:<sender@example.org>", 250)
        c.expect("RCPT TO:<alice@mx.test>", 250)
        break_directory(d, True)
        c.expect("DATA", 354)
        c.send(b"Subject: deferred\r\n\r\nwhile the directory was away\r\n.\r\n")
        code, lines = c.reply()
        assert code == 250, lines
    wait_for(lambda: any("4.3.0" in ln for ln in d.log_events("deferred")), 15,
             what="a deferral while the directory is away")
    assert d.delivered(ALICE) == []
    break_directory(d, False)
    got = wait_for(lambda: d.delivered(ALICE), 15, what="delivery once the directory is back")
    assert b"Subject: deferred" in got[0]

def test_b15_mail_from_alias_of_the_login_accepted_unowned_sender_553_5_7_1(make_daemon):
    d = auth_daemon(make_daemon)
    d.cli("user", "add", "bob@mx.test", "--stdin", stdin="bob's password\n")
    s = submission(d)
    assert auth_plain(s, ALICE, PW) == 235
    # An alias added while the daemon runs, pointing at the login's mailbox.
    d.cli("alias", "add", "sales@mx.test", ALICE)
    for sender in ["sales@mx.test", ALICE, "ALICE@MX.TEST", "alice+news@mx.test"]:
        code, resp = s.mail(sender)
        assert code == 250, (sender, resp)
        s.rset()
    for sender in ["ceo@other.example", "bob@mx.test", "nobody@mx.test", "team@mx.test"]:
        code, resp = s.mail(sender)
        assert (code, resp[:5]) == (553, b"5.7.1"), (sender, resp)
        assert sender.encode() in resp
    # After the refusal the session still works.
    code, resp = s.mail("sales@mx.test")
    assert code == 250, resp
    s.quit()



def plain_raw(d, user, password):
    """AUTH PLAIN with UTF-8 bytes (smtplib encodes PLAIN as ASCII); the reply code."""
    s = submission(d)
    try:
        msg = b"\0" + user.encode() + b"\0" + password.encode()
        return s.docmd("AUTH", "PLAIN " + b64(msg))[0]
    finally:
        s.close()


def test_rfc4013_saslprep_password_forms_agree_prohibited_ones_refused(make_daemon):
    """RFC 4616 §2 and RFC 5802 §2.2: the password is prepared (RFC 4013) when stored and
    when presented, so its composed, decomposed and no-break-space forms are one password."""
    decomposed, composed = "cafe\u0301 au lait", "caf\u00e9 au lait"
    d = auth_daemon(make_daemon, users=False)
    d.cli("domain", "add", "mx.test")
    d.cli("user", "add", ALICE, "--stdin", stdin=decomposed + "\n")
    for form in (composed, decomposed, "caf\u00e9\u00a0au lait", "caf\u00e9 au lai\u00adt"):
        assert plain_raw(d, ALICE, form) == 235, form
    assert plain_raw(d, ALICE, "cafe au lait") == 535
    assert plain_raw(d, ALICE, composed + "\x07") == 535
    assert any("reason=password refused by SASLprep" in ln for ln in d.log_events("auth"))
    rc, out = gsasl(d, "SCRAM-SHA-256", ALICE, composed, "--no-cb")
    assert rc == 0 and "235 " in out, out
    # RFC 3454 §7: a stored string may not hold what SASLprep prohibits or leaves unassigned.
    for bad in ["bell\x07", "\u00ad", "\u0221x"]:
        r = d.cli("user", "passwd", ALICE, "--stdin", stdin=bad + "\n", check=False)
        assert r.returncode == 65 and "SASLprep" in r.stderr, (bad, r.returncode, r.stderr)
    assert plain_raw(d, ALICE, composed) == 235

def test_rfc6409_submission_requires_auth_before_mail_530_5_7_0(make_daemon):
    d = auth_daemon(make_daemon)
    s = submission(d)
    code, resp = s.mail(ALICE)
    assert (code, resp[:5]) == (530, b"5.7.0"), resp
    s.quit()


# ---- swaks: PLAIN and LOGIN ------------------------------------------------------------------

def swaks(d, mech, user, password, *more):
    if shutil.which("swaks") is None:
        pytest.skip("no swaks")
    r = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % d.port_required, "-tls",
                        "--helo", "client.test", "--auth", mech, "--auth-user", user,
                        "--auth-password", password] + list(more),
                       capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_rfc4954_swaks_auth_then_full_send(make_daemon, mech):
    d = auth_daemon(make_daemon)
    rc, out = swaks(d, mech, ALICE, PW, "--from", ALICE, "--to", "alice@mx.test",
                    "--header", "Subject: swaks " + mech, "--body", "sent by swaks")
    assert rc == 0, out
    assert "<~  235 " in out, out
    qid = queued_id(out)
    assert b"sent by swaks" in d.body(qid)


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_rfc4954_swaks_wrong_password_is_535_5_7_8(make_daemon, mech):
    d = auth_daemon(make_daemon)
    rc, out = swaks(d, mech, ALICE, "not the password", "--quit-after", "AUTH")
    assert rc != 0, out
    assert "<~* 535 5.7.8" in out, out
    rc, out = swaks(d, mech, "nobody@mx.test", PW, "--quit-after", "AUTH")
    assert rc != 0 and "<~* 535 5.7.8" in out, out


# ---- gsasl: SCRAM-SHA-256 and -PLUS --------------------------------------------------------

def gsasl(d, mech, user, password, *more):
    if shutil.which("gsasl") is None:
        pytest.skip("no gsasl")
    r = subprocess.run(["gsasl", "--smtp", "--connect=127.0.0.1:%d" % d.port_required,
                        "--x509-ca-file=", "--hostname=mx.test", "-m", mech,
                        "-a", user, "-p", password, "--verbose"] + list(more),
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


def test_rfc7677_gsasl_scram_sha_256_without_channel_binding(make_daemon):
    """RFC 5802 §6: gs2 flag "n" (the client asks for no binding) is accepted."""
    d = auth_daemon(make_daemon)
    rc, out = gsasl(d, "SCRAM-SHA-256", ALICE, PW, "--no-cb")
    assert rc == 0, out
    assert "235 " in out, out
    assert any("mech=SCRAM-SHA-256 " in ln and "result=ok" in ln for ln in d.log_events("auth"))


@pytest.mark.parametrize("priority", [None, "NORMAL:-VERS-TLS1.3"])
def test_rfc7677_gsasl_scram_sha_256_plus_channel_binding(make_daemon, priority):
    """RFC 9266 tls-exporter under TLS 1.3; under TLS 1.2 gsasl can only offer tls-unique,
    which we do not support (RFC 9266 §3), so there SCRAM-SHA-256-PLUS fails cleanly."""
    d = auth_daemon(make_daemon)
    more = ["--priority=" + priority] if priority else []
    rc, out = gsasl(d, "SCRAM-SHA-256-PLUS", ALICE, PW, *more)
    if priority is None:
        assert rc == 0, out
        assert "235 " in out, out
        assert any("mech=SCRAM-SHA-256-PLUS " in ln and "result=ok" in ln
                   for ln in d.log_events("auth"))
    else:
        assert rc != 0, out
        assert "235 " not in out and "535 5.7.8" in out, out


@pytest.mark.parametrize("mech,more", [("SCRAM-SHA-256", ["--no-cb"]),
                                       ("SCRAM-SHA-256-PLUS", [])])
def test_rfc5802_gsasl_scram_wrong_password_or_unknown_user_fails(make_daemon, mech, more):
    d = auth_daemon(make_daemon)
    for user, pw in [(ALICE, "not the password"), ("nobody@mx.test", PW)]:
        rc, out = gsasl(d, mech, user, pw, *more)
        assert rc != 0, out
        assert "235 " not in out and "535 5.7.8" in out, out


def test_rfc5802_s6_scram_client_flag_y_refused_when_plus_is_offered(make_daemon):
    """RFC 5802 §6: a client that could bind ("y") while we offer -PLUS is a downgrade: the
    exchange fails at the client-first message."""
    d = auth_daemon(make_daemon)
    s = submission(d)
    code, resp = s.docmd("AUTH", "SCRAM-SHA-256 " + b64("y,,n=alice@mx.test,r=abcdefghijkl"))
    assert (code, resp[:5]) == (535, b"5.7.8"), (code, resp)
    s.close()


def scram_exchange(docmd, mech, user, password, gs2="n,,", cb_data=b""):
    """A SCRAM-SHA-256[-PLUS] client (RFC 5802 §3, §7; RFC 7677) over docmd(cmd, args) ->
    (code, text) as smtplib's. Returns (code, text) of the reply that ended it; a server
    signature sent as the last challenge is checked."""
    bare = "n=%s,r=%s" % (user, b64(os.urandom(18)))
    code, resp = docmd("AUTH", "%s %s" % (mech, b64(gs2 + bare)))
    if code != 334:
        return code, resp
    server_first = base64.b64decode(resp).decode()
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]),
                                 int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    without_proof = "c=%s,r=%s" % (b64(gs2.encode() + cb_data), attrs["r"])
    auth_message = ",".join([bare, server_first, without_proof]).encode()
    sig = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, sig))
    code, resp = docmd(b64(without_proof + ",p=" + b64(proof)), "")
    if code != 334:
        return code, resp
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    assert base64.b64decode(resp).decode() == \
        "v=" + b64(hmac.new(server_key, auth_message, hashlib.sha256).digest())
    return docmd("", "")


def scram_plus(s, user, password, cb_name, cb_data):
    """SCRAM-SHA-256-PLUS over an smtplib connection: the final reply code."""
    return scram_exchange(s.docmd, "SCRAM-SHA-256-PLUS", user, password, "p=%s,," % cb_name,
                          cb_data)[0]


def test_rfc5929_s4_1_scram_plus_tls_server_end_point(make_daemon):
    """tls-server-end-point: SHA-256 of our certificate (RFC 5929 §4.1); bound to another
    certificate, or with the unsupported tls-unique (RFC 9266 §3), the exchange fails."""
    d = auth_daemon(make_daemon)
    s = submission(d)
    cert_hash = hashlib.sha256(s.sock.getpeercert(binary_form=True)).digest()
    assert scram_plus(s, ALICE, PW, "tls-server-end-point", cert_hash) == 235
    code, resp = s.mail(ALICE)
    assert code == 250, resp
    s.quit()
    for name, data in [("tls-server-end-point", hashlib.sha256(b"another cert").digest()),
                       ("tls-unique", b"\0" * 12)]:
        s = submission(d)
        assert scram_plus(s, ALICE, PW, name, data) == 535, name
        s.quit()
    s = submission(d)
    assert scram_plus(s, ALICE, "not the password", "tls-server-end-point", cert_hash) == 535
    s.quit()


# ---- OAUTHBEARER and XOAUTH2 with JWTs ------------------------------------------------------

@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """An HS256 secret and RS256/ES256 key pairs (private PEM, public PEM)."""
    k = tmp_path_factory.mktemp("keys")
    out = {"dir": str(k)}
    secret = os.path.join(k, "hs256.secret")
    with open(secret, "wb") as f:
        f.write(b"0123456789abcdef0123456789abcdef-sluice")
    out["hs256"] = secret
    for alg, genargs in [("rs256", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
                         ("es256", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]),
                         ("rs256-other", ["-algorithm", "RSA", "-pkeyopt",
                                          "rsa_keygen_bits:2048"])]:
        priv = os.path.join(k, alg + ".key")
        pub = os.path.join(k, alg + ".pub")
        openssl("genpkey", *genargs, "-out", priv)
        openssl("pkey", "-in", priv, "-pubout", "-out", pub)
        out[alg] = (priv, pub)
    return out


def der_ecdsa_to_raw(der):
    """An ECDSA-Sig-Value (SEQUENCE of two INTEGERs, DER) as R||S of 32 octets each
    (RFC 7518 §3.4)."""
    def read(buf, pos, tag):
        assert buf[pos] == tag, (tag, buf[pos])
        n = buf[pos + 1]
        pos += 2
        if n & 0x80:
            nb = n & 0x7F
            n = int.from_bytes(buf[pos:pos + nb], "big")
            pos += nb
        return buf[pos:pos + n], pos + n
    seq, _ = read(der, 0, 0x30)
    r, pos = read(seq, 0, 0x02)
    s, _ = read(seq, pos, 0x02)
    return (int.from_bytes(r, "big").to_bytes(32, "big") +
            int.from_bytes(s, "big").to_bytes(32, "big"))


def jwt(keys, alg, claims=None, header=None, sign_with=None, **overrides):
    """A compact JWS. claims default to a good token for alice; overrides change claims
    (None removes one)."""
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "exp": now + 600, "iat": now, "email": ALICE}
    body.update(claims or {})
    for k, v in overrides.items():
        if v is None:
            body.pop(k, None)
        else:
            body[k] = v
    head = {"alg": alg, "typ": "JWT"}
    head.update(header or {})
    signing_input = (b64url(json.dumps(head)) + "." + b64url(json.dumps(body))).encode()
    which = sign_with or alg.lower()
    if alg == "none":
        sig = b""
    elif which == "hs256":
        with open(keys["hs256"], "rb") as f:
            sig = hmac.new(f.read(), signing_input, hashlib.sha256).digest()
    elif which == "hs256-other":
        sig = hmac.new(b"another secret of at least thirty-two octets!", signing_input,
                       hashlib.sha256).digest()
    else:
        priv = keys[which][0]
        sig = openssl("dgst", "-sha256", "-sign", priv, stdin=signing_input)
        if which.startswith("es256"):
            sig = der_ecdsa_to_raw(sig)
    return signing_input.decode() + "." + b64url(sig)


def token_auth(keys):
    return ("token-key hs256 %s\ntoken-key rs256 %s\ntoken-key es256 %s\n"
            "token-issuer %s\ntoken-audience %s\ntoken-claim email\n"
            % (keys["hs256"], keys["rs256"][1], keys["es256"][1], ISSUER, AUDIENCE))


def oauthbearer(token, user=ALICE):
    """RFC 7628 §3.1: gs2 header, then key=value pairs each ended by ^A, then ^A."""
    return b64("n,a=%s,\x01host=mx.test\x01port=587\x01auth=Bearer %s\x01\x01" % (user, token))


def xoauth2(token, user=ALICE):
    return b64("user=%s\x01auth=Bearer %s\x01\x01" % (user, token))


def bearer_exchange(s, mech, token):
    """AUTH with the token as initial response; on the error challenge (RFC 7628 §3.2.3)
    the client's dummy answer. Returns the final (code, text) and the challenge JSON."""
    msg = oauthbearer(token) if mech == "OAUTHBEARER" else xoauth2(token)
    code, resp = s.docmd("AUTH", "%s %s" % (mech, msg))
    if code != 334:
        return code, resp, None
    err = json.loads(base64.b64decode(resp))
    code, resp = s.docmd(b64("\x01") if mech == "OAUTHBEARER" else "")
    return code, resp, err


@pytest.fixture
def token_daemon(make_daemon, keys):
    return auth_daemon(make_daemon, auth=token_auth(keys))


@pytest.mark.parametrize("mech", ["OAUTHBEARER", "XOAUTH2"])
@pytest.mark.parametrize("alg", ["HS256", "RS256", "ES256"])
def test_rfc7628_good_jwt_is_235(token_daemon, keys, mech, alg):
    s = submission(token_daemon)
    assert "OAUTHBEARER" in mechanisms(s) and "XOAUTH2" in mechanisms(s)
    code, resp, _ = bearer_exchange(s, mech, jwt(keys, alg))
    assert (code, resp[:5]) == (235, b"2.7.0"), resp
    # Logged in as the token's mailbox: its address is an owned sender.
    code, resp = s.mail(ALICE)
    assert code == 250, resp
    s.quit()


BAD_TOKENS = [
    ("expired", lambda k: jwt(k, "RS256", exp=int(time.time()) - 3600)),
    ("no_exp", lambda k: jwt(k, "HS256", exp=None)),
    ("not_yet_valid", lambda k: jwt(k, "ES256", nbf=int(time.time()) + 3600)),
    ("wrong_issuer", lambda k: jwt(k, "RS256", iss="https://evil.test")),
    ("wrong_audience", lambda k: jwt(k, "HS256", aud="someone-else")),
    ("audience_array_without_ours", lambda k: jwt(k, "ES256", aud=["a", "b"])),
    ("bad_signature_rs256", lambda k: jwt(k, "RS256", sign_with="rs256-other")),
    ("bad_signature_hs256", lambda k: jwt(k, "HS256", sign_with="hs256-other")),
    ("tampered_claims", lambda k: (lambda t: t.split(".")[0] + "." +
                                   b64url(json.dumps({"iss": ISSUER, "aud": AUDIENCE,
                                                      "exp": int(time.time()) + 600,
                                                      "email": "bob@mx.test"})) +
                                   "." + t.split(".")[2])(jwt(k, "ES256"))),
    ("alg_none", lambda k: jwt(k, "none")),
    ("alg_none_with_hs_signature", lambda k: jwt(k, "none", sign_with="hs256")[:-1] +
     "." + jwt(k, "HS256").split(".")[2]),
    # RFC 8725 §2.1: an RS256 public key used as an HMAC secret.
    ("alg_confusion_hs256_keyed_with_rsa_public_key",
     lambda k: (lambda si: si + "." + b64url(hmac.new(open(k["rs256"][1], "rb").read(),
                                                      si.encode(), hashlib.sha256).digest()))(
         jwt(k, "HS256").rsplit(".", 1)[0])),
    ("unknown_mailbox", lambda k: jwt(k, "HS256", email="nobody@mx.test")),
    ("no_identity_claim", lambda k: jwt(k, "HS256", email=None)),
    ("malformed", lambda k: "not.a.jwt"),
]


@pytest.mark.parametrize("mech", ["OAUTHBEARER", "XOAUTH2"])
@pytest.mark.parametrize("why,make", BAD_TOKENS, ids=[b[0] for b in BAD_TOKENS])
def test_rfc7628_s3_2_3_bad_jwt_gets_error_challenge_then_535_5_7_8(token_daemon, keys, mech,
                                                                     why, make):
    s = submission(token_daemon)
    code, resp, err = bearer_exchange(s, mech, make(keys))
    assert err is not None, (why, code, resp)
    assert err.get("status") == "invalid_token", err
    assert (code, resp[:5]) == (535, b"5.7.8"), (why, resp)
    code, resp = s.mail(ALICE)
    assert code == 530, resp
    s.quit()


def test_rfc7628_without_token_keys_the_mechanisms_are_not_offered(make_daemon, keys):
    d = auth_daemon(make_daemon)
    s = submission(d)
    assert "OAUTHBEARER" not in mechanisms(s) and "XOAUTH2" not in mechanisms(s)
    code, resp = s.docmd("AUTH", "OAUTHBEARER " + oauthbearer(jwt(keys, "HS256")))
    assert (code, resp[:5]) == (504, b"5.5.4"), resp
    s.quit()



UNUSABLE_KEYS = [
    ("missing_file", None, "hs256", "No such file"),
    ("rfc7518_s3_2_short_hs256_secret", b"31 octets are one too few.....\n", "hs256",
     "at least 32 octets"),
    ("not_pem", b"-----BEGIN NOTHING-----\n", "rs256", "not a PEM RSA public key"),
    ("ec_key_as_rs256", "es256", "rs256", "not a PEM RSA public key"),
    ("rsa_key_as_es256", "rs256", "es256", "not a PEM EC public key"),
]


@pytest.mark.parametrize("name,content,alg,why", UNUSABLE_KEYS, ids=[u[0] for u in UNUSABLE_KEYS])
def test_rfc7628_unusable_token_key_stops_the_start(make_daemon, keys, tmp_path, name, content,
                                                    alg, why):
    path = str(tmp_path / "key")
    if isinstance(content, str):
        shutil.copy(keys[content][1], path)
    elif content is not None:
        with open(path, "wb") as f:
            f.write(content)
    d = auth_daemon(make_daemon, auth="token-key %s %s\ntoken-issuer %s\ntoken-audience %s\n"
                    % (alg, path, ISSUER, AUDIENCE), users=False, start=False)
    with pytest.raises(AssertionError, match="exited with 1 at start"):
        d.start()
    assert any(path in ln and why in ln for ln in d.log_events("auth_error")), d.log()


def test_rfc7628_unusable_token_key_on_reload_keeps_the_old_keys(token_daemon, keys, tmp_path):
    import signal
    d = token_daemon
    short = str(tmp_path / "short")
    with open(short, "wb") as f:
        f.write(b"short\n")
    with open(d.conf) as f:
        text = f.read()
    with open(d.conf, "w") as f:
        f.write(text.replace("token-key hs256 %s" % keys["hs256"], "token-key hs256 %s" % short))
    os.kill(d.pid, signal.SIGHUP)
    wait_for(lambda: d.log_events("reload_error"), 10, what="event=reload_error")
    assert any(short in ln for ln in d.log_events("auth_error"))
    s = submission(d)
    code, resp, err = bearer_exchange(s, "OAUTHBEARER", jwt(keys, "HS256"))
    assert code == 235, (code, resp, err)
    s.quit()

# ---- EXTERNAL with client certificates -----------------------------------------------------

@pytest.fixture(scope="module")
def client_certs(tmp_path_factory):
    """Two self-signed client certificates: (cert, key, SHA-256 fingerprint as openssl
    prints it)."""
    k = tmp_path_factory.mktemp("certs")
    out = {}
    for name in ["alice", "stranger"]:
        cert, key = os.path.join(k, name + ".pem"), os.path.join(k, name + ".key")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                "-subj", "/CN=%s@mx.test" % name)
        fp = openssl("x509", "-in", cert, "-noout", "-fingerprint", "-sha256").decode()
        out[name] = (cert, key, fp.strip().split("=", 1)[1])
    return out


def cert_context(cert=None):
    ctx = tls_client_context()
    if cert is not None:
        ctx.load_cert_chain(cert[0], cert[1])
    return ctx


@pytest.fixture
def external_daemon(make_daemon, client_certs):
    d = auth_daemon(make_daemon, auth="external fingerprint\n")
    d.cli("user", "cert", "add", ALICE, client_certs["alice"][2])
    return d


def test_rfc4422_external_with_registered_certificate_is_235(external_daemon, client_certs):
    s = submission(external_daemon, cert_context(client_certs["alice"]))
    assert "EXTERNAL" in mechanisms(s)
    code, resp = s.docmd("AUTH", "EXTERNAL =")
    assert (code, resp[:5]) == (235, b"2.7.0"), resp
    code, resp = s.mail(ALICE)
    assert code == 250, resp
    s.quit()
    # The authorization identity may name the mapped mailbox itself.
    s = submission(external_daemon, cert_context(client_certs["alice"]))
    code, resp = s.docmd("AUTH", "EXTERNAL " + b64(ALICE))
    assert code == 235, resp
    s.quit()


def test_rfc4422_external_with_implicit_tls_is_235(external_daemon, client_certs):
    ctx = cert_context(client_certs["alice"])
    with smtplib.SMTP_SSL("127.0.0.1", external_daemon.port_implicit, context=ctx,
                          local_hostname="client.test", timeout=10) as s:
        s.ehlo()
        code, resp = s.docmd("AUTH", "EXTERNAL =")
        assert code == 235, resp


def test_rfc4422_external_unknown_certificate_or_other_identity_is_535(external_daemon,
                                                                      client_certs):
    s = submission(external_daemon, cert_context(client_certs["stranger"]))
    code, resp = s.docmd("AUTH", "EXTERNAL =")
    assert (code, resp[:5]) == (535, b"5.7.8"), resp
    s.quit()
    s = submission(external_daemon, cert_context(client_certs["alice"]))
    code, resp = s.docmd("AUTH", "EXTERNAL " + b64("bob@mx.test"))
    assert (code, resp[:5]) == (535, b"5.7.8"), resp
    s.quit()


def test_rfc4422_external_without_certificate_is_535(external_daemon):
    s = submission(external_daemon)
    code, resp = s.docmd("AUTH", "EXTERNAL =")
    assert (code, resp[:5]) == (535, b"5.7.8"), resp
    s.quit()


def test_rfc4422_external_certificate_removed_with_cli_then_535(external_daemon, client_certs):
    external_daemon.cli("user", "cert", "del", client_certs["alice"][2])
    s = submission(external_daemon, cert_context(client_certs["alice"]))
    code, resp = s.docmd("AUTH", "EXTERNAL =")
    assert code == 535, resp
    s.quit()


# ---- the open-relay battery (B10) ----------------------------------------------------------

B10_FORMS = [
    "x@remote.example",
    "victim%remote.example@mx.test",
    "remote.example!victim@mx.test",
    "victim@remote.example@mx.test",
    '"victim@remote.example"@mx.test',
    "@mx.test:victim@remote.example",
    "u@[127.0.0.1]",
]

# An unquoted "@" in a local part breaks RFC 5321 §4.1.2's Local-part grammar: refusing it as
# bad syntax (501 5.1.3) refuses it as surely as 554 5.7.1 does.
B10_BAD_SYNTAX = {"victim@remote.example@mx.test"}

# Listeners that take mail without AUTH: smtp (optional AUTH, STARTTLS offered) and a
# submissions listener whose AUTH is off.
RELAY_LISTENERS = {"smtp": "auth optional", "submission": "auth required", "submissions": ""}


def relay_clients(d):
    yield "smtp", Client(d.port)
    yield "submissions", Client(d.port_implicit, tls=True)


def test_b10_open_relay_battery_refused_554_5_7_1_without_auth(make_daemon):
    d = auth_daemon(make_daemon, listeners=RELAY_LISTENERS)
    syntax = 0
    for name, c in relay_clients(d):
        with c:
            c.expect("EHLO client.test", 250)
            for form in B10_FORMS:
                c.expect("MAIL FROM:<sender@example.org>", 250)
                code, lines = c.cmd("RCPT TO:<%s>" % form)
                if form in B10_BAD_SYNTAX and code == 501:
                    assert lines[-1].startswith("501 5.1.3 "), (name, form, lines)
                    syntax += 1
                else:
                    assert code == 554 and lines[-1][4:9] == "5.7.1" and \
                        "Relay access denied" in lines[-1], (name, form, lines)
                # A local recipient in the same transaction is still fine.
                c.expect("RCPT TO:<alice@mx.test>", 250)
                c.expect("RSET", 250)
            c.expect("QUIT", 221)
    assert syntax <= 2
    assert not d.queued() and not d.incoming()


def test_b10_submission_without_auth_refuses_mail_530(make_daemon):
    d = auth_daemon(make_daemon, listeners=RELAY_LISTENERS)
    with Client(d.port_required) as c:
        c.expect("EHLO client.test", 250)
        c.starttls()
        c.expect("EHLO client.test", 250)
        c.expect("MAIL FROM:<alice@mx.test>", 530, contains="5.7.0")
        c.expect("RCPT TO:<x@remote.example>", 503)


@pytest.mark.parametrize("listener", ["smtp", "submission"])
def test_b10_after_auth_mail_to_a_remote_address_is_accepted(make_daemon, listener):
    d = auth_daemon(make_daemon, listeners=RELAY_LISTENERS)
    port = d.port if listener == "smtp" else d.port_required
    with Client(port) as c:
        c.expect("EHLO client.test", 250)
        c.starttls()
        c.expect("EHLO client.test", 250)
        c.expect("AUTH PLAIN " + b64("\0%s\0%s" % (ALICE, PW)), 235, contains="2.7.0")
        c.expect("MAIL FROM:<%s>" % ALICE, 250)
        c.expect("RCPT TO:<x@remote.example>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: relay\r\n\r\nrelayed for a logged-in user\r\n.\r\n")
        code, lines = c.reply()
        assert code == 250, lines
        c.expect("QUIT", 221)
    env, _ = d.message(queued_id(lines[-1]))
    assert b"x@remote.example" in env


def test_b10_trusted_networks_relay_without_auth(make_daemon):
    d = auth_daemon(make_daemon, listeners=RELAY_LISTENERS,
                    extra="trusted-networks 127.0.0.0/8\n")
    with Client(d.port) as c:
        c.expect("EHLO client.test", 250)
        c.expect("MAIL FROM:<sender@example.org>", 250)
        c.expect("RCPT TO:<x@remote.example>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: trusted\r\n\r\nfrom a trusted network\r\n.\r\n")
        code, lines = c.reply()
        assert code == 250, lines
        c.expect("QUIT", 221)


def test_b10_trusted_networks_elsewhere_do_not_open_the_relay(make_daemon):
    d = auth_daemon(make_daemon, listeners=RELAY_LISTENERS,
                    extra="trusted-networks 192.0.2.0/24 10.0.0.0/8\n")
    with Client(d.port) as c:
        c.expect("EHLO client.test", 250)
        c.expect("MAIL FROM:<sender@example.org>", 250)
        c.expect("RCPT TO:<x@remote.example>", 554, contains="5.7.1")



def test_k4_sqlite_aliases_recursive_once_each_and_a_loop_bounces(make_daemon):
    """Aliases made with the CLI expand recursively, each mailbox gets one copy however many
    ways it is reached, and a loop that reaches no mailbox bounces 5.4.6 (HOSTILE-INPUTS K4)."""
    d = auth_daemon(make_daemon, listeners=RELAY_LISTENERS, delivery="")
    d.cli("user", "add", "bob@mx.test", "--stdin", stdin="bob's password\n")
    d.cli("alias", "add", "team@mx.test", ALICE, "bob@mx.test", "crew@mx.test")
    d.cli("alias", "add", "crew@mx.test", "team@mx.test", ALICE)
    d.cli("alias", "add", "loop1@mx.test", "loop2@mx.test")
    d.cli("alias", "add", "loop2@mx.test", "loop1@mx.test")
    with Client(d.port) as c:
        c.expect("EHLO client.test", 250)
        for rcpt in ["team@mx.test", "loop1@mx.test"]:
            c.expect("MAIL FROM:<%s>" % ALICE, 250)
            c.expect("RCPT TO:<%s>" % rcpt, 250)
            c.expect("DATA", 354)
            c.send(("Subject: to %s\r\n\r\nhello\r\n.\r\n" % rcpt).encode())
            code, lines = c.reply()
            assert code == 250, lines
        c.expect("QUIT", 221)
    bob = wait_for(lambda: d.delivered("bob@mx.test"), 15, what="bob's copy")
    alice = wait_for(lambda: (lambda f: f if len(f) >= 2 else None)(d.delivered(ALICE)), 15,
                     what="alice's copy and the bounce")
    time.sleep(0.5)
    assert len(d.delivered("bob@mx.test")) == 1 and b"Subject: to team@mx.test" in bob[0]
    alice = d.delivered(ALICE)
    assert len(alice) == 2, alice
    [dsn] = [m for m in alice if b"Return-Path: <>" in m]
    assert b"Status: 5.4.6" in dsn and b"loop" in dsn

# ---- catch-all and subaddressing, delivered ---------------------------------------------

def test_catchall_and_subaddress_delivered_to_the_right_maildir(make_daemon):
    d = auth_daemon(make_daemon, listeners=RELAY_LISTENERS, delivery="")
    d.cli("user", "add", "bob@mx.test", "--stdin", stdin="bob's password\n")
    with Client(d.port) as c:
        c.expect("EHLO client.test", 250)
        c.expect("MAIL FROM:<sender@example.org>", 250)
        c.expect("RCPT TO:<nobody@mx.test>", 550, contains="5.1.1")
        c.expect("RSET", 250)
    d.cli("domain", "catchall", "mx.test", "bob@mx.test")
    with Client(d.port) as c:
        c.expect("EHLO client.test", 250)
        for rcpt, subject in [("nobody@mx.test", "catchall"), ("alice+tag@mx.test", "subaddr"),
                              ("alice@mx.test", "plain")]:
            c.expect("MAIL FROM:<sender@example.org>", 250)
            c.expect("RCPT TO:<%s>" % rcpt, 250)
            c.expect("DATA", 354)
            c.send(("Subject: %s\r\n\r\nto %s\r\n.\r\n" % (subject, rcpt)).encode())
            code, lines = c.reply()
            assert code == 250, (rcpt, lines)
        c.expect("QUIT", 221)
    alice = wait_for(lambda: (lambda f: f if len(f) >= 2 else None)(d.delivered(ALICE)), 15,
                     what="two messages for alice")
    bob = wait_for(lambda: d.delivered("bob@mx.test"), 15, what="the catch-all message")
    assert len(bob) == 1 and b"Subject: catchall" in bob[0], bob
    assert sorted(b"Subject: subaddr" in m for m in alice) == [False, True]
    assert all(b"Subject: catchall" not in m for m in alice)
    # Nothing went to a Maildir named after the address that has no mailbox.
    assert not os.path.exists(d.maildir("nobody@mx.test"))
    assert not os.path.exists(d.maildir("alice+tag@mx.test"))
    d.cli("domain", "catchall", "mx.test", "none")
    with Client(d.port) as c:
        c.expect("EHLO client.test", 250)
        c.expect("MAIL FROM:<sender@example.org>", 250)
        c.expect("RCPT TO:<nobody@mx.test>", 550, contains="5.1.1")

