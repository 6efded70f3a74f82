"""Real clients against a real daemon: Python smtplib (plain, STARTTLS, implicit TLS, BDAT
by raw commands), swaks and curl. Every accepted message is read back from the queue and
its bytes after our Received header must equal what the client meant to send."""

import re
import shutil
import smtplib
import subprocess

import pytest

from e2e_helpers import Client, queued_id, split_received, tls_client_context

BODY = (b"From: Sender <sender@example.org>\r\n"
        b"To: Alice <alice@mx.test>\r\n"
        b"Subject: e2e\r\n"
        b"\r\n"
        b"Hello Alice.\r\n"
        b".leading dot, stuffed by the client\r\n"
        b"Bye.\r\n")


def smtplib_send(s, body, rcpts=("alice@mx.test",), options=()):
    """MAIL/RCPT/DATA through smtplib's primitives, returning the queue id of the 250."""
    code, resp = s.mail("sender@example.org", list(options))
    assert code == 250, resp
    for r in rcpts:
        code, resp = s.rcpt(r)
        assert code == 250, (r, resp)
    code, resp = s.data(body)
    assert code == 250, resp
    return queued_id(resp.decode())


def check_stored(daemon, qid, body, proto, rcpt=None, helo=None):
    _, msg = daemon.message(qid)
    m, rest = split_received(msg)
    assert rest == body
    assert m.group("id").decode() == qid
    assert m.group("host") == b"mx.test"
    assert m.group("ip") == b"127.0.0.1"
    assert m.group("proto").decode() == proto
    assert (m.group("rcpt").decode() if m.group("rcpt") else None) == rcpt
    if helo is not None:
        assert m.group("helo").decode() == helo
    if proto.endswith("S"):
        assert m.group("tls") is not None and b"version=TLSv1." in m.group("tls")
    else:
        assert m.group("tls") is None
    return m


# ---- smtplib -----------------------------------------------------------------------------

def test_rfc5321_smtplib_plain_alice(daemon):
    with smtplib.SMTP("127.0.0.1", daemon.port, local_hostname="client.example", timeout=10) as s:
        code, _ = s.ehlo()
        assert code == 250
        assert s.has_extn("pipelining") and s.has_extn("chunking") and s.has_extn("8bitmime")
        qid = smtplib_send(s, BODY)
    check_stored(daemon, qid, BODY, "ESMTP", rcpt="alice@mx.test", helo="client.example")


def test_rfc5321_4_5_1_smtplib_postmaster_and_alice(daemon):
    # Two recipients: the Received header has no "for" clause (RFC 5321 §4.4).
    with smtplib.SMTP("127.0.0.1", daemon.port, timeout=10) as s:
        s.ehlo("client.example")
        qid = smtplib_send(s, BODY, rcpts=("postmaster", "alice@mx.test"))
    env, _ = daemon.message(qid)
    assert b"postmaster" in env and b"alice@mx.test" in env
    check_stored(daemon, qid, BODY, "ESMTP", rcpt=None)


def test_rfc5321_4_5_1_smtplib_postmaster_only(daemon):
    with smtplib.SMTP("127.0.0.1", daemon.port, timeout=10) as s:
        s.ehlo("client.example")
        qid = smtplib_send(s, BODY, rcpts=("Postmaster@mx.test",))
    check_stored(daemon, qid, BODY, "ESMTP", rcpt="Postmaster@mx.test")


def test_rfc5321_helo_smtplib_protocol_smtp(daemon):
    with smtplib.SMTP("127.0.0.1", daemon.port, timeout=10) as s:
        code, _ = s.helo("old.example")
        assert code == 250
        qid = smtplib_send(s, BODY)
    check_stored(daemon, qid, BODY, "SMTP", rcpt="alice@mx.test", helo="old.example")


def test_rfc3207_smtplib_starttls(daemon):
    with smtplib.SMTP("127.0.0.1", daemon.port, timeout=10) as s:
        s.ehlo("client.example")
        assert s.has_extn("starttls")
        code, _ = s.starttls(context=tls_client_context())
        assert code == 220
        s.ehlo("client.example")
        assert not s.has_extn("starttls")
        qid = smtplib_send(s, BODY, rcpts=("alice@mx.test", "postmaster"))
    check_stored(daemon, qid, BODY, "ESMTPS")


def test_rfc3207_smtplib_submission_requires_tls(daemon):
    with smtplib.SMTP("127.0.0.1", daemon.port_required, timeout=10) as s:
        s.ehlo("client.example")
        code, resp = s.mail("sender@example.org")
        assert (code, resp) == (530, b"5.7.0 Must issue a STARTTLS command first")
        s.starttls(context=tls_client_context())
        s.ehlo("client.example")
        qid = smtplib_send(s, BODY)
    check_stored(daemon, qid, BODY, "ESMTPS", rcpt="alice@mx.test")


def test_rfc8314_smtplib_implicit_tls(daemon):
    with smtplib.SMTP_SSL("127.0.0.1", daemon.port_implicit, context=tls_client_context(),
                          timeout=10) as s:
        s.ehlo("client.example")
        assert not s.has_extn("starttls")
        qid = smtplib_send(s, BODY)
    m = check_stored(daemon, qid, BODY, "ESMTPS", rcpt="alice@mx.test")
    assert re.match(rb"version=TLSv1\.[23] cipher=\S+$", m.group("tls")), m.group("tls")


def test_rfc5321_4_5_2_dot_unstuffing_raw(daemon):
    # The client stuffs: "..x" on the wire is ".x" in the message; "..." is "..".
    wire = b"Subject: dots\r\n\r\n..x\r\n...\r\n..\r\nend\r\n"
    want = b"Subject: dots\r\n\r\n.x\r\n..\r\n.\r\nend\r\n"
    with Client(daemon.port) as c:
        c.expect("EHLO client.example", 250)
        c.expect("MAIL FROM:<sender@example.org>", 250)
        c.expect("RCPT TO:<alice@mx.test>", 250)
        c.expect("DATA", 354)
        c.send(wire + b".\r\n")
        code, lines = c.reply()
        assert code == 250, lines
        qid = queued_id(lines[0])
        c.expect("QUIT", 221)
    assert daemon.body(qid) == want


def test_rfc6152_8bitmime_bytes_stored_exactly(daemon):
    body = (b"Subject: =?utf-8?q?8bit?=\r\nContent-Type: text/plain; charset=latin1\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n\r\n"
            + bytes(range(0x80, 0x100)) + b"\r\nGr\xfc\xdfe, \xe9t\xe9\r\n")
    with smtplib.SMTP("127.0.0.1", daemon.port, timeout=10) as s:
        s.ehlo("client.example")
        qid = smtplib_send(s, body, options=("BODY=8BITMIME",))
    check_stored(daemon, qid, body, "ESMTP", rcpt="alice@mx.test")


def bdat(s, chunk, last=False):
    s.send(b"BDAT %d%s\r\n" % (len(chunk), b" LAST" if last else b"") + chunk)
    return s.getreply()


def test_rfc3030_bdat_binarymime_byte_exact(daemon):
    # NUL, bare CR, bare LF, a lone "." line and 8-bit bytes: BINARYMIME stores them as sent.
    part1 = b"Subject: binary\r\nContent-Type: application/octet-stream\r\n\r\n\x00\x01\r"
    part2 = b"bare\rcr and bare\nlf\r\n.\r\n\x00" + bytes(range(256)) * 40
    part3 = b"tail without CRLF\x00"
    with smtplib.SMTP("127.0.0.1", daemon.port, timeout=10) as s:
        s.ehlo("client.example")
        assert s.has_extn("binarymime")
        code, resp = s.mail("sender@example.org", ["BODY=BINARYMIME"])
        assert code == 250, resp
        code, resp = s.rcpt("alice@mx.test")
        assert code == 250, resp
        assert bdat(s, part1) == (250, b"2.0.0 Ok: %d octets received" % len(part1))
        assert bdat(s, part2) == (250, b"2.0.0 Ok: %d octets received" % len(part2))
        code, resp = bdat(s, part3, last=True)
        assert code == 250, resp
        qid = queued_id(resp.decode())
    check_stored(daemon, qid, part1 + part2 + part3, "ESMTP", rcpt="alice@mx.test")


def test_rfc3030_bdat_over_starttls(daemon):
    body = b"Subject: bdat tls\r\n\r\n" + b"line of text\r\n" * 5000
    with smtplib.SMTP("127.0.0.1", daemon.port, timeout=10) as s:
        s.ehlo("client.example")
        s.starttls(context=tls_client_context())
        s.ehlo("client.example")
        code, resp = s.mail("sender@example.org")
        assert code == 250, resp
        code, resp = s.rcpt("bob@mx.test")
        assert code == 250, resp
        assert bdat(s, body[:30000])[0] == 250
        code, resp = bdat(s, body[30000:], last=True)
        assert code == 250, resp
        qid = queued_id(resp.decode())
    check_stored(daemon, qid, body, "ESMTPS", rcpt="bob@mx.test")


# ---- swaks -------------------------------------------------------------------------------

SWAKS_DATA = "From: x@y.z\nTo: alice@mx.test\nSubject: swaks\n\nbody line\n.dot line\nend"
SWAKS_BODY = (b"From: x@y.z\r\nTo: alice@mx.test\r\nSubject: swaks\r\n\r\n"
              b"body line\r\n.dot line\r\nend\r\n")


def swaks(daemon, *args, port=None):
    if shutil.which("swaks") is None:
        pytest.skip("swaks is not installed")
    cmd = ["swaks", "--server", "127.0.0.1:%d" % (port or daemon.port), "--to", "alice@mx.test",
           "--from", "x@y.z", "--helo", "swaks.example", "--data", SWAKS_DATA,
           "--timeout", "10"] + list(args)
    r = subprocess.run(cmd, capture_output=True, timeout=30)
    out = r.stdout.decode("utf-8", "replace") + r.stderr.decode("utf-8", "replace")
    if "requires Net::SSLeay" in out or "Net/SSLeay.pm" in out:
        pytest.skip("swaks cannot do TLS here: Perl Net::SSLeay is not installed")
    assert r.returncode == 0, out
    return queued_id(out)


def test_rfc5321_swaks_plain(daemon):
    qid = swaks(daemon)
    check_stored(daemon, qid, SWAKS_BODY, "ESMTP", rcpt="alice@mx.test", helo="swaks.example")


def test_rfc2920_swaks_pipeline(daemon):
    qid = swaks(daemon, "--pipeline")
    check_stored(daemon, qid, SWAKS_BODY, "ESMTP", rcpt="alice@mx.test")


def test_rfc3207_swaks_starttls(daemon):
    qid = swaks(daemon, "--tls")
    check_stored(daemon, qid, SWAKS_BODY, "ESMTPS", rcpt="alice@mx.test")


def test_rfc8314_swaks_implicit_tls(daemon):
    qid = swaks(daemon, "--tlsc", port=daemon.port_implicit)
    check_stored(daemon, qid, SWAKS_BODY, "ESMTPS", rcpt="alice@mx.test")


# ---- curl --------------------------------------------------------------------------------

CURL_BODY = (b"From: a@b.c\r\nTo: alice@mx.test\r\nSubject: curl\r\n\r\n"
             b"first\r\n.dot line\r\n..two dots\r\nlast\r\n")


def curl(daemon, tmp_path, url, *args):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    f = tmp_path / "mail.eml"
    f.write_bytes(CURL_BODY)
    r = subprocess.run(["curl", "-sS", "-v", url, "--mail-from", "a@b.c", "--mail-rcpt",
                        "alice@mx.test", "-T", str(f), "--max-time", "20"] + list(args),
                       capture_output=True, timeout=30)
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == 0, err
    return queued_id(err)


def test_rfc5321_curl_plain(daemon, tmp_path):
    qid = curl(daemon, tmp_path, "smtp://127.0.0.1:%d" % daemon.port)
    check_stored(daemon, qid, CURL_BODY, "ESMTP", rcpt="alice@mx.test")


def test_rfc3207_curl_starttls(daemon, tmp_path):
    qid = curl(daemon, tmp_path, "smtp://127.0.0.1:%d" % daemon.port, "--ssl-reqd", "-k")
    check_stored(daemon, qid, CURL_BODY, "ESMTPS", rcpt="alice@mx.test")


def test_rfc8314_curl_implicit_tls(daemon, tmp_path):
    qid = curl(daemon, tmp_path, "smtps://127.0.0.1:%d" % daemon.port_implicit, "-k")
    check_stored(daemon, qid, CURL_BODY, "ESMTPS", rcpt="alice@mx.test")
