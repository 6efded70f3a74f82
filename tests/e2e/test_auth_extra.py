"""More SMTP AUTH end to end (issue #4), beside test_auth.py:

- EXTERNAL in `external subject` mode (RFC 4422 Appendix A): client certificates made by the
  test's own CA, mapped by the subject's emailAddress, else its CN; a certificate of another
  CA, one whose subject names no address and one naming no mailbox are refused 535 5.7.8.
- The failure delay before 535 (doc/sluice.conf.md `failure-delay`) is real, is a timer that
  does not hold other sessions up, and goes away when configured to 0.
- G11 (HOSTILE-INPUTS): an unknown user costs the same password check as a known one.
- Password checks run on the thread pool, never on the event loop (DESIGN; doc/sluice.conf.md
  `auth`): a deliberately slow yescrypt hash does not hold up another session's NOOP.
- AUTH LOGIN driven by smtplib's login(), delivered to the Maildir; 535 on a wrong password.
- argon2id hashes (`sluice user add --scheme argon2id`) end to end.
- G12 for SCRAM-SHA-256, OAUTHBEARER and EXTERNAL: 454 4.7.0 while the directory is away,
  success in the same sessions once it is back.
- RFC 9266 §3: the tls-exporter channel binding is for TLS 1.3 only; under TLS 1.2
  SCRAM-SHA-256-PLUS with tls-exporter fails (checked with the true RFC 5705 exporter value
  taken from `openssl s_client -keymatexport`), while tls-server-end-point works.

Every daemon uses a SQLite directory at <dir>/dir.db; keys and certificates are made with the
openssl command line; slow yescrypt hashes with libcrypt through ctypes."""

import base64
import ctypes
import ctypes.util
import hashlib
import hmac
import os
import queue
import re
import select
import smtplib
import sqlite3
import ssl
import statistics
import subprocess
import threading
import time

import pytest

from e2e_helpers import Client, tls_client_context, wait_for
from test_auth import (ALICE, LISTENERS, PW, b64, bearer_exchange, break_directory,  # noqa: F401
                       cert_context, client_certs, jwt, keys, login_code, mechanisms, openssl,
                       scram_exchange, submission, token_auth)

BOB = "bob@mx.test"
BOB_PW = "bob's own password"


def auth_daemon(make_daemon, auth="", delay="50ms", extra="", **kw):
    """A running daemon with a SQLite directory, the domain mx.test and alice@mx.test (password
    PW) added with the CLI, and an auth block with the given failure-delay (test_auth's helper
    fixes the delay at 50ms; a directive may not be given twice)."""
    d = make_daemon(sqlite=True, listeners=kw.pop("listeners", LISTENERS),
                    extra="auth {\nfailure-delay %s\nip-failures 100000\n%s\n}\n%s"
                    % (delay, auth, extra), **kw)
    d.cli("domain", "add", "mx.test")
    d.cli("user", "add", ALICE, "--stdin", stdin=PW + "\n")
    return d


def raw_submission(d):
    """A raw Client on the submission listener, after EHLO, STARTTLS and EHLO again."""
    c = Client(d.port_required)
    c.expect("EHLO client.test", 250)
    c.starttls()
    c.expect("EHLO client.test", 250)
    return c


def plain_ir(user, password):
    return "AUTH PLAIN " + b64("\0%s\0%s" % (user, password))


def timed(c, line):
    """Send one command line; return ((code, lines), seconds until its reply)."""
    t0 = time.monotonic()
    c.send(line + "\r\n")
    r = c.reply()
    return r, time.monotonic() - t0


def auth_events(d, **fields):
    """The event=auth log lines holding every key=value given (mech=, result=, reason=...).
    reason runs to the end of the line."""
    out = []
    for ln in d.log_events("auth"):
        ok = True
        for k, v in fields.items():
            if k == "reason":
                ok = ok and ln.rstrip().endswith(" reason=" + v)
            else:
                ok = ok and (" %s=%s " % (k, v)) in ln + " "
        if ok:
            out.append(ln)
    return out


# ---- 1. EXTERNAL in `external subject` mode ---------------------------------------------------

LEAF_EXT = ("basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\n"
            "extendedKeyUsage = clientAuth\n")


@pytest.fixture(scope="module")
def subject_pki(tmp_path_factory):
    """Our client CA, another CA nobody configured, and client certificates (cert, key):
    alice: emailAddress=alice@mx.test but CN=bob@mx.test (the emailAddress must win);
    bob: only CN=bob@mx.test (the CN fallback); rogue: alice's names, signed by the other CA;
    anonymous: O and OU only, no address at all; carol: CN of an address with no mailbox."""
    k = str(tmp_path_factory.mktemp("subject-pki"))
    ext = os.path.join(k, "leaf.ext")
    with open(ext, "w") as f:
        f.write(LEAF_EXT)

    def ca(name):
        cert, key = os.path.join(k, name + ".pem"), os.path.join(k, name + ".key")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                "-subj", "/O=Sluice tests/CN=%s" % name)
        return cert, key

    out = {"ca": ca("client-ca"), "other-ca": ca("other-ca")}
    for name, subj, issuer in [
            ("alice", "/CN=bob@mx.test/emailAddress=alice@mx.test", "ca"),
            ("bob", "/O=Sluice tests/CN=bob@mx.test", "ca"),
            ("rogue", "/CN=alice@mx.test/emailAddress=alice@mx.test", "other-ca"),
            ("anonymous", "/O=Sluice tests/OU=no address here", "ca"),
            ("carol", "/CN=carol@mx.test", "ca")]:
        cert, key, csr = (os.path.join(k, name + s) for s in (".pem", ".key", ".csr"))
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", key, "-out", csr, "-subj", subj)
        openssl("x509", "-req", "-in", csr, "-CA", out[issuer][0], "-CAkey", out[issuer][1],
                "-set_serial", "0x" + os.urandom(8).hex(), "-days", "2", "-extfile", ext,
                "-out", cert)
        out[name] = (cert, key)
    # The premise of "rogue": openssl itself says it does not chain to our CA.
    r = subprocess.run(["openssl", "verify", "-CAfile", out["ca"][0], out["rogue"][0]],
                       capture_output=True, timeout=60)
    assert r.returncode != 0
    openssl("verify", "-CAfile", out["ca"][0], out["alice"][0], out["bob"][0])
    return out


@pytest.fixture
def subject_daemon(make_daemon, subject_pki):
    d = auth_daemon(make_daemon, auth="external subject\nclient-ca %s\n" % subject_pki["ca"][0])
    d.cli("user", "add", BOB, "--stdin", stdin=BOB_PW + "\n")
    return d


def external(d, cert, authzid="="):
    """AUTH EXTERNAL on submission with the given client certificate; returns the open smtplib
    session, the code and the text."""
    s = submission(d, cert_context(cert))
    assert "EXTERNAL" in mechanisms(s), s.esmtp_features
    code, resp = s.docmd("AUTH", "EXTERNAL " + authzid)
    return s, code, resp


def test_rfc4422_appa_external_subject_email_address_then_cn_fallback(subject_daemon,
                                                                      subject_pki):
    """doc/sluice.conf.md `external subject`: the subject's emailAddress is the mailbox, else
    its CN, for a certificate verified against client-ca."""
    d = subject_daemon
    # emailAddress=alice@ wins over CN=bob@: logged in as alice, so alice is an owned sender
    # and bob is not (RFC 6409 §6.1, HOSTILE-INPUTS B15).
    s, code, resp = external(d, subject_pki["alice"])
    assert (code, resp[:5]) == (235, b"2.7.0"), resp
    code, resp = s.mail(ALICE)
    assert code == 250, resp
    s.rset()
    code, resp = s.mail(BOB)
    assert (code, resp[:5]) == (553, b"5.7.1"), resp
    s.quit()
    # Only a CN: it names the mailbox.
    s, code, resp = external(d, subject_pki["bob"])
    assert (code, resp[:5]) == (235, b"2.7.0"), resp
    code, resp = s.mail(BOB)
    assert code == 250, resp
    s.rset()
    code, resp = s.mail(ALICE)
    assert code == 553, resp
    s.quit()
    # The authorization identity may repeat the mapped mailbox, not name another one.
    s, code, resp = external(d, subject_pki["bob"], b64(BOB))
    assert code == 235, resp
    s.quit()
    s, code, resp = external(d, subject_pki["bob"], b64(ALICE))
    assert (code, resp[:5]) == (535, b"5.7.8"), resp
    s.quit()
    assert len(auth_events(d, mech="EXTERNAL", result="ok", user=ALICE)) == 1
    assert len(auth_events(d, mech="EXTERNAL", result="ok", user=BOB)) == 2


@pytest.mark.parametrize("cert,reason", [
    ("rogue", "certificate not verified"),
    ("anonymous", "certificate names no address"),
    ("carol", "certificate maps to no enabled mailbox"),
])
def test_rfc4422_appa_external_subject_refused_certificates_are_535_5_7_8(subject_daemon,
                                                                          subject_pki, cert,
                                                                          reason):
    """A certificate of another CA (even naming alice), a subject with no emailAddress and
    no CN, and one naming an address that is no mailbox: EXTERNAL is offered (the TLS
    handshake takes any certificate) but the exchange fails 535 5.7.8, and the session stays
    unauthenticated."""
    d = subject_daemon
    s, code, resp = external(d, subject_pki[cert])
    assert (code, resp[:5]) == (535, b"5.7.8"), resp
    code, resp = s.mail(ALICE)
    assert (code, resp[:5]) == (530, b"5.7.0"), resp
    s.quit()
    assert auth_events(d, mech="EXTERNAL", result="fail", reason=reason), d.log_events("auth")
    assert not auth_events(d, result="ok")


def test_rfc4422_appa_external_subject_without_certificate_is_535(subject_daemon):
    s = submission(subject_daemon)
    assert "EXTERNAL" in mechanisms(s)
    code, resp = s.docmd("AUTH", "EXTERNAL =")
    assert (code, resp[:5]) == (535, b"5.7.8"), resp
    s.quit()


# ---- 2. the failure delay -------------------------------------------------------------------

def test_rfc4954_s4_failure_delay_is_a_timer_before_535_and_zero_makes_it_fast(make_daemon):
    """doc/sluice.conf.md: `failure-delay` (default 1s) is waited before each 535 5.7.8. It is
    a timer: another session is served meanwhile. With 0ms the 535 comes at once."""
    slow = auth_daemon(make_daemon, delay="1s")
    fast = auth_daemon(make_daemon, delay="0ms")
    with raw_submission(slow) as a, raw_submission(slow) as b:
        a.send(plain_ir(ALICE, "wrong password") + "\r\n")
        t0 = time.monotonic()
        # While a waits for its 535, b is answered.
        time.sleep(0.2)
        (code, lines), noop = timed(b, "NOOP")
        assert code == 250, lines
        # a's 535 has not come yet, so the read below times its arrival.
        assert not a.buf and not select.select([a.sock], [], [], 0)[0]
        code, lines = a.reply()
        slow_dt = time.monotonic() - t0
        assert code == 535 and lines[-1].startswith("535 5.7.8"), lines
    assert slow_dt >= 0.8, slow_dt
    assert noop < slow_dt / 2, (noop, slow_dt)
    with raw_submission(fast) as c:
        (code, lines), fast_dt = timed(c, plain_ir(ALICE, "wrong password"))
        assert code == 535 and lines[-1].startswith("535 5.7.8"), lines
        c.expect(plain_ir(ALICE, PW), 235)
    assert fast_dt < slow_dt / 2, (fast_dt, slow_dt)


# ---- 3. G11: unknown users cost a password check ------------------------------------------------

def test_g11_unknown_user_costs_the_same_password_check_as_a_known_one(make_daemon):
    """session_auth.c checks an unknown user against a dummy yescrypt hash of the same cost as
    the CLI's. Medians of interleaved failures (failure-delay 0, so only the lookup and the
    check are timed): without the dummy check the unknown user answers some 10-100 times
    faster; the bound asked is only 1/3."""
    # Each 535 is also a protocol error (limits `errors`, default 20, then 421).
    d = auth_daemon(make_daemon, delay="0ms", auth="session-failures 1000\n",
                    extra="limits { errors 1000 }\n")
    known, unknown = [], []
    with raw_submission(d) as c:
        for user in [ALICE, "nobody@mx.test"]:  # warm up both paths
            (code, lines), _ = timed(c, plain_ir(user, "wrong password"))
            assert code == 535, lines
        for _ in range(9):
            for user, out in [(ALICE, known), ("nobody@mx.test", unknown)]:
                (code, lines), dt = timed(c, plain_ir(user, "wrong password"))
                assert code == 535 and lines[-1].startswith("535 5.7.8"), lines
                out.append(dt)
        c.expect(plain_ir(ALICE, PW), 235)
    k, u = statistics.median(known), statistics.median(unknown)
    assert u >= k / 3, "unknown %.4fs vs known %.4fs (%r / %r)" % (u, k, unknown, known)
    assert len(auth_events(d, reason="unknown or disabled user")) == 10
    assert len(auth_events(d, reason="bad password")) == 10


# ---- 4. password checks off the event loop ---------------------------------------------------

def slow_yescrypt(password):
    """A yescrypt hash made by libcrypt of a setting costlier than the CLI's: one check takes
    over a second (about 1.3 s here; libcrypt is not instrumented, so ASan does not change it).
    The setting is yescrypt's own "$y$" encoding: flavor 'j', N 'B' (64 MiB, where the CLI's
    crypt_gensalt default 'j9T' uses 16 MiB), r 'T' (32), then '/' (a t parameter follows)
    and t 'T' (32 more passes). Returns (hash, seconds it took here)."""
    name = ctypes.util.find_library("crypt") or "libcrypt.so.1"
    lc = ctypes.CDLL(name)
    lc.crypt_gensalt.restype = ctypes.c_char_p
    lc.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    lc.crypt.restype = ctypes.c_char_p
    lc.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    salt = lc.crypt_gensalt(b"$y$", 5, None, 0).split(b"$")[3]
    setting = b"$y$jBT/T$" + salt
    t0 = time.monotonic()
    h = lc.crypt(password.encode(), setting)
    dt = time.monotonic() - t0
    assert h is not None and h.startswith(setting + b"$"), h
    return h.decode(), dt


def set_hash(d, address, password_hash):
    db = sqlite3.connect(os.path.join(d.dir, "dir.db"), timeout=10)
    try:
        n = db.execute("UPDATE mailboxes SET password_hash = ? WHERE address = ?",
                       (password_hash, address)).rowcount
        db.commit()
    finally:
        db.close()
    assert n == 1


def test_design_password_check_runs_on_the_pool_not_the_event_loop(make_daemon):
    """One worker; A's AUTH PLAIN checks a hash that costs over a second. B, a session already
    past EHLO on the same worker, sends NOOP while A waits: its 250 comes long before A's 235.
    Were the check done on the event loop, B's NOOP would wait for the rest of it (at least
    A's latency less B's head start), and the last bound below would fail."""
    d = auth_daemon(make_daemon)
    h, cost = slow_yescrypt(PW)
    assert cost >= 0.5, cost
    set_hash(d, ALICE, h)
    with raw_submission(d) as a, Client(d.port) as b:
        b.expect("EHLO other.test", 250)
        a.send(plain_ir(ALICE, PW) + "\r\n")
        t0 = time.monotonic()
        time.sleep(min(0.3, cost / 5))
        (code, lines), noop = timed(b, "NOOP")
        assert code == 250, lines
        # A has had no answer yet: checked while well inside the hash's cost as measured
        # here, so a daemon that runs the hash faster than this process did cannot fail it.
        if time.monotonic() - t0 < cost / 2:
            assert not a.buf and not select.select([a.sock], [], [], 0)[0]
        code, lines = a.reply()
        auth_dt = time.monotonic() - t0
        assert code == 235, lines
        a.expect("MAIL FROM:<%s>" % ALICE, 250)
    assert auth_dt >= 0.5, auth_dt
    assert noop < auth_dt / 2, (noop, auth_dt)


# ---- 5. AUTH LOGIN through smtplib ------------------------------------------------------------

def test_rfc4954_s4_login_with_smtplib_then_delivered_wrong_password_535(make_daemon):
    """smtplib's login() restricted to LOGIN: the user name as initial response, the password
    after the 334 "Password:" challenge; the message reaches alice's Maildir."""
    d = auth_daemon(make_daemon, delivery="")
    s = submission(d)
    assert "LOGIN" in mechanisms(s)
    s.esmtp_features["auth"] = "LOGIN"
    code, resp = s.login(ALICE, PW)
    assert (code, resp[:5]) == (235, b"2.7.0"), resp
    refused = s.sendmail(ALICE, [ALICE], b"Subject: via LOGIN\r\n\r\nsent by smtplib\r\n")
    assert refused == {}
    s.quit()
    assert len(auth_events(d, mech="LOGIN", result="ok", user=ALICE)) == 1
    s = submission(d)
    s.esmtp_features["auth"] = "LOGIN"
    with pytest.raises(smtplib.SMTPAuthenticationError) as e:
        s.login(ALICE, "not the password")
    assert e.value.smtp_code == 535 and e.value.smtp_error.startswith(b"5.7.8"), e.value
    s.close()
    assert auth_events(d, mech="LOGIN", result="fail", reason="bad password")
    wait_for(lambda: d.delivered(ALICE), 15, what="the message in alice's Maildir")
    [msg] = d.delivered(ALICE)
    assert b"Subject: via LOGIN" in msg and b"sent by smtplib" in msg


# ---- 6. argon2id ------------------------------------------------------------------------------

def test_rfc4616_plain_against_an_argon2id_hash(make_daemon):
    d = auth_daemon(make_daemon)
    d.cli("user", "add", BOB, "--scheme", "argon2id", "--stdin", stdin=BOB_PW + "\n")
    db = sqlite3.connect(os.path.join(d.dir, "dir.db"), timeout=10)
    try:
        (stored,) = db.execute("SELECT password_hash FROM mailboxes WHERE address = ?",
                               (BOB,)).fetchone()
    finally:
        db.close()
    assert stored.startswith("$argon2id$"), stored
    s = submission(d)
    s.user, s.password = BOB, BOB_PW
    code, resp = s.auth("PLAIN", s.auth_plain)
    assert (code, resp[:5]) == (235, b"2.7.0"), resp
    code, resp = s.mail(BOB)
    assert code == 250, resp
    s.quit()
    assert login_code(d, BOB, "not bob's password") == 535
    assert login_code(d, BOB, BOB_PW[:-1]) == 535
    assert auth_events(d, mech="PLAIN", user=BOB, result="fail", reason="bad password")


# ---- 7. G12 for SCRAM, OAUTHBEARER and EXTERNAL ----------------------------------------------

def test_g12_directory_unavailable_scram_oauthbearer_external_454_4_7_0_then_recover(
        make_daemon, keys, client_certs):
    d = auth_daemon(make_daemon, auth=token_auth(keys) + "external fingerprint\n")
    d.cli("user", "cert", "add", ALICE, client_certs["alice"][2])
    scram = submission(d)
    bearer = submission(d)
    ext = submission(d, cert_context(client_certs["alice"]))
    assert "OAUTHBEARER" in mechanisms(bearer) and "EXTERNAL" in mechanisms(ext)
    token = jwt(keys, "HS256")

    def attempt_all():
        return [scram_exchange(scram.docmd, "SCRAM-SHA-256", ALICE, PW)[:2],
                bearer_exchange(bearer, "OAUTHBEARER", token)[:2],
                ext.docmd("AUTH", "EXTERNAL =")]

    break_directory(d, True)
    try:
        got = attempt_all()
    finally:
        break_directory(d, False)
    for mech, (code, resp) in zip(["SCRAM-SHA-256", "OAUTHBEARER", "EXTERNAL"], got):
        assert (code, resp[:5]) == (454, b"4.7.0"), (mech, code, resp)
        assert auth_events(d, mech=mech, result="tempfail", reason="directory unavailable"), mech
    # 454 is no failure: the same sessions log in once the directory is back.
    for mech, (code, resp) in zip(["SCRAM-SHA-256", "OAUTHBEARER", "EXTERNAL"], attempt_all()):
        assert (code, resp[:5]) == (235, b"2.7.0"), (mech, code, resp)
    for s in (scram, bearer, ext):
        code, resp = s.mail(ALICE)
        assert code == 250, resp
        s.quit()
    assert not auth_events(d, result="fail")


# ---- 8. tls-exporter is for TLS 1.3 only --------------------------------------------------------

EXPORTER_LABEL = "EXPORTER-Channel-Binding"
SMTP_LINE = re.compile(r"^(\d{3})([ -])(.*)$")


class SClient:
    """SMTP over `openssl s_client -starttls smtp`, which also prints the RFC 5705 keying
    material for RFC 9266's label: the true tls-exporter value of the connection, computed by
    OpenSSL's client side (Python's ssl cannot export keying material)."""

    def __init__(self, port, version):
        self.proc = subprocess.Popen(
            ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-starttls", "smtp",
             "-name", "client.test", "-" + version, "-crlf", "-ign_eof", "-nocommands",
             "-keymatexport", EXPORTER_LABEL, "-keymatexportlen", "32"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.lines = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.exporter = None
        self.protocol = None
        try:
            while self.exporter is None:
                ln = self._line()
                m = re.match(r"\s*Keying material: ([0-9A-Fa-f]+)\s*$", ln)
                if m:
                    self.exporter = bytes.fromhex(m.group(1))
                m = re.match(r"(?:New|Reused), (TLSv1\.\d),", ln)
                if m:
                    self.protocol = m.group(1)
        except BaseException:
            self.close()
            raise

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.put(raw.decode("utf-8", "replace").rstrip("\r\n"))
        self.lines.put(None)

    def _line(self, timeout=20):
        ln = self.lines.get(timeout=timeout)
        if ln is None:
            raise AssertionError("openssl s_client ended")
        return ln

    def docmd(self, cmd, args=""):
        """Like smtplib's docmd: send a line, return (code, text of the reply as bytes);
        the lines s_client prints itself are skipped."""
        self.proc.stdin.write(((cmd + " " + args) if args else cmd).encode() + b"\n")
        self.proc.stdin.flush()
        text = []
        while True:
            m = SMTP_LINE.match(self._line())
            if m is None:
                continue
            text.append(m.group(3))
            if m.group(2) == " ":
                return int(m.group(1)), "\n".join(text).encode()

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def tls12_context():
    ctx = tls_client_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def test_rfc9266_s3_tls_exporter_binding_refused_under_tls_1_2(make_daemon):
    """RFC 9266 §3: tls-exporter MUST NOT be used unless TLS 1.3 was negotiated (before it the
    exporter is not bound to the handshake without extended master secret). -PLUS is still
    offered under TLS 1.2 (for tls-server-end-point, RFC 5929 §4.1, which works there), but
    a tls-exporter exchange fails 535 5.7.8 even with the connection's true exporter value,
    which under TLS 1.3 logs in."""
    d = auth_daemon(make_daemon)
    s = submission(d, tls12_context())
    assert s.sock.version() == "TLSv1.2"
    assert mechanisms(s)[:2] == ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"], mechanisms(s)
    cert_hash = hashlib.sha256(s.sock.getpeercert(binary_form=True)).digest()
    code, resp = scram_exchange(s.docmd, "SCRAM-SHA-256-PLUS", ALICE, PW,
                                "p=tls-server-end-point,,", cert_hash)
    assert (code, resp[:5]) == (235, b"2.7.0"), resp
    s.quit()

    results = {}
    for version in ["tls1_3", "tls1_2"]:
        c = SClient(d.port_required, version)
        try:
            assert len(c.exporter) == 32
            code, resp = c.docmd("EHLO", "client.test")
            assert code == 250 and b"SCRAM-SHA-256-PLUS" in resp, resp
            results[version] = (c.protocol,) + scram_exchange(
                c.docmd, "SCRAM-SHA-256-PLUS", ALICE, PW, "p=tls-exporter,,", c.exporter)
            c.docmd("QUIT")
        finally:
            c.close()
    protocol, code, resp = results["tls1_3"]
    assert (protocol, code, resp[:5]) == ("TLSv1.3", 235, b"2.7.0"), results
    protocol, code, resp = results["tls1_2"]
    assert (protocol, code, resp[:5]) == ("TLSv1.2", 535, b"5.7.8"), results
    assert auth_events(d, mech="SCRAM-SHA-256-PLUS", result="fail",
                       reason="channel binding unavailable")
