"""Remote and LMTP delivery end to end (issue #3): the queue manager's SMTP client against a
second Sluice found through DNS (dnsmasq), Postfix, Dovecot LMTP, and scripted fake servers
for the failures (HOSTILE-INPUTS J1-J10). Every test runs real daemons on loopback.

Mail reaches a remote domain through an alias of the sending daemon (relaying is not open
to SMTP clients), so what is sent is exactly what an SMTP client handed over."""

import base64
import os
import re
import signal
import socket
import threading

import pytest

import peers
from e2e_helpers import Client, send_message, split_received, wait_for
from peers import CLOSE, CLOSE_IN_DATA, FakeSmtp

FAST = "retry-min 1s\nretry-max 1s\nrescan 1s"

BODY = (b"Subject: over the wire\r\nFrom: <s@example.org>\r\n\r\n"
        b"..a line that began with a dot\r\n"
        b"8-bit: \xc3\xa9\xff\xfe\r\n.\r\n. lone dot above\r\n"
        b"\r\n"
        b"last line\r\n")


def stuffed(body):
    """RFC 5321 §4.5.2: what a client puts on the wire for body."""
    out = body.replace(b"\r\n.", b"\r\n..")
    return b"." + out if out.startswith(b".") else out


@pytest.fixture(scope="module")
def dns(tmp_path_factory):
    d = peers.Dnsmasq(tmp_path_factory.mktemp("dns"), [
        "--mx-host=remote.test,mx.remote.test,10",
        "--host-record=mx.remote.test,127.0.0.1",
        "--mx-host=null.test,.,0",
        "--mx-host=loop.test,self.loop.test,10",
        "--host-record=self.loop.test,127.0.0.1",
        "--mx-host=named.test,mx.test,10",
        "--host-record=mx.test,127.0.0.1",
    ])
    yield d
    d.stop()


@pytest.fixture
def fakes():
    made = []

    def make(*a, **kw):
        f = FakeSmtp(*a, **kw)
        made.append(f)
        return f

    yield make
    for f in made:
        f.stop()
    errors = [e for f in made for e in f.errors]
    assert not errors, errors


def sender(make_daemon, dns_server, port, aliases="", delivery="", extra="", mailboxes="",
           fast=FAST):
    """The sending daemon (hostname mx.test): its remote hosts listen on port, its DNS is
    dns_server; aliases are added to its aliases file."""
    d = make_daemon(delivery="%s\ndns %s\nremote-port %d\n%s" % (fast, dns_server, port, delivery),
                    extra=extra, start=False, sub="sender")
    with open(os.path.join(d.dir, "aliases"), "a") as f:
        f.write(aliases)
    with open(os.path.join(d.dir, "mailboxes"), "a") as f:
        f.write(mailboxes)
    d.start()
    return d


def submit(d, rcpts, body=BODY, sender_addr="alice@mx.test", params=" BODY=8BITMIME"):
    with Client(d.port) as c:
        c.expect("EHLO client.test", 250)
        qid = send_message(c, stuffed(body), sender=sender_addr, rcpts=rcpts,
                           mail_params=params)
        c.expect("QUIT", 221)
    return qid


def wait_delivered(d, addr, n=1, timeout=15.0):
    return wait_for(lambda: (lambda f: f if len(f) >= n else None)(d.delivered(addr)), timeout,
                    what="%d message(s) in %s's Maildir" % (n, addr))


def wait_queue_empty(d, timeout=15.0):
    wait_for(lambda: not d.queued(), timeout, what="queue/ to be empty")


def wait_event(d, event, pred=lambda ln: True, timeout=15.0):
    return wait_for(lambda: [ln for ln in d.log_events(event) if pred(ln)], timeout,
                    what="event=%s in the log" % event)


def dsn_fields(dsn):
    """The per-recipient fields of a DSN's message/delivery-status part, unfolded."""
    return dsn.replace(b"\r\n ", b" ").replace(b"\r\n\t", b" ")


# ---- Sluice -> Sluice -------------------------------------------------------------------

def test_sluice_to_sluice_through_mx(make_daemon, dns):
    """The second daemon is remote.test's MX (found through dnsmasq); both recipients go in
    one transaction, and each delivered file holds, after the two Received headers, the
    bytes the first daemon was given (dot lines and 8-bit included)."""
    d2 = make_daemon(delivery=FAST, hostname="mx.remote.test", extra="domain remote.test\n",
                     start=False, sub="receiver")
    with open(os.path.join(d2.dir, "mailboxes"), "a") as f:
        f.write("a@remote.test\nb@remote.test\n")
    d2.start()
    d1 = sender(make_daemon, dns.server, d2.port,
                aliases="pair@mx.test: a@remote.test, b@remote.test\n")
    qid = submit(d1, ("pair@mx.test",), sender_addr="s@example.org")
    for rcpt in ("a@remote.test", "b@remote.test"):
        [got] = wait_delivered(d2, rcpt)
        rp, dt, rest = got.split(b"\r\n", 2)
        assert rp == b"Return-Path: <s@example.org>"
        assert dt == ("Delivered-To: %s" % rcpt).encode()
        outer, rest = split_received(rest)
        inner, rest = split_received(rest)
        assert outer.group("host") == b"mx.remote.test" and outer.group("helo") == b"mx.test"
        assert outer.group("tls") is not None  # STARTTLS was offered and used
        assert inner.group("host") == b"mx.test" and inner.group("id") == qid.encode()
        assert rest == BODY
    wait_queue_empty(d1)
    [txn] = d1.log_events("smtp_client_txn")
    assert "rcpts=2 ok=2" in txn and "chunking=1" in txn  # Sluice offers CHUNKING: BDAT
    assert len(d1.log_events("smtp_client_connect")) == 1
    assert all("relay=mx.remote.test" in ln for ln in d1.log_events("delivered"))


# ---- Sluice -> Postfix ------------------------------------------------------------------

@pytest.fixture
def postfix():
    pf = peers.Postfix()
    yield pf
    pf.stop()


def test_sluice_to_postfix(make_daemon, dns, postfix):
    d = sender(make_daemon, dns.server, postfix.port, aliases="pf@mx.test: user@remote.test\n")
    submit(d, ("pf@mx.test",), sender_addr="s@example.org")
    [qid] = wait_for(lambda: postfix.held(), 30.0, what="the message held in Postfix")
    env, msg = postfix.message(qid)
    assert "sender: s@example.org" in env
    assert "recipient: user@remote.test" in env
    # Postfix adds the Date and Message-ID this message lacks to the end of its header.
    head, text = BODY.replace(b"\r\n", b"\n").split(b"\n\n", 1)
    assert msg.endswith(b"\n\n" + text), msg
    assert msg.split(b"\n\n", 1)[0].count(head) == 1, msg
    assert b"by mx.test (Sluice)" in msg
    wait_queue_empty(d)


# ---- Sluice -> Dovecot LMTP -------------------------------------------------------------

@pytest.fixture
def dovecot():
    dc = peers.Dovecot(["known@lmtp.test"])
    yield dc
    dc.stop()


@pytest.mark.parametrize("via", ["tcp", "unix"])
def test_lmtp_to_dovecot_per_recipient_replies(make_daemon, dns, dovecot, via):
    """RFC 2033 §4.2: Dovecot refuses the recipient it does not know (a DSN to the sender
    with its reply) and delivers the other; over TCP and over its unix socket."""
    where = "127.0.0.1:%d" % dovecot.port if via == "tcp" else "unix:" + dovecot.socket
    d = sender(make_daemon, dns.server, 9, extra="domain lmtp.test { lmtp %s }\n" % where,
               mailboxes="known@lmtp.test\nghost@lmtp.test\n")
    submit(d, ("known@lmtp.test", "ghost@lmtp.test"))
    [got] = wait_for(lambda: dovecot.delivered("known@lmtp.test"), 15.0,
                     what="delivery by Dovecot")
    assert got.endswith(BODY.replace(b"\r\n", b"\n"))  # Dovecot stores LF line ends
    assert b"by mx.test (Sluice)" in got
    [dsn] = wait_delivered(d, "alice@mx.test")
    f = dsn_fields(dsn)
    assert b"Final-Recipient: rfc822; ghost@lmtp.test" in f
    assert b"Action: failed" in f and b"Status: 5.1.1" in f
    assert re.search(rb"Diagnostic-Code: smtp; 550 5\.1\.1 ", f), f
    assert b"known@lmtp.test" not in f.split(b"message/delivery-status", 1)[1].split(
        b"message/rfc822", 1)[0]
    wait_queue_empty(d)


# ---- failures with fake peers -----------------------------------------------------------

def test_5xx_on_rcpt_bounces_with_remote_mta_and_diagnostic(make_daemon, dns, fakes):
    def hook(ev, s, arg):
        if ev == "rcpt" and b"bad@" in arg:
            return "550 5.1.1 <bad@remote.test>: no such user here"
        return None

    fake = fakes(hook)
    d = sender(make_daemon, dns.server, fake.port,
               aliases="pair@mx.test: good@remote.test, bad@remote.test\n")
    qid = submit(d, ("pair@mx.test",))
    [txn] = fake.wait_txns(1)
    assert [r for r in txn.rcpts] == [b"RCPT TO:<good@remote.test>"]
    assert split_received(txn.message)[1] == BODY
    [dsn] = wait_delivered(d, "alice@mx.test")
    f = dsn_fields(dsn)
    assert b"Final-Recipient: rfc822; bad@remote.test" in f
    assert b"Action: failed" in f and b"Status: 5.1.1" in f
    assert b"Remote-MTA: dns; mx.remote.test" in f
    assert b"Diagnostic-Code: smtp; 550 5.1.1 <bad@remote.test>: no such user here" in f
    assert ("Message-ID: <%s.bounce." % qid).encode() in dsn
    wait_queue_empty(d)


def test_5xx_greeting_bounce_names_the_remote_mta(make_daemon, dns, fakes):
    """RFC 3464 §2.3.5: a refusal at the greeting still says which host gave it."""
    fake = fakes(lambda ev, s, arg: "554 5.7.1 no mail from you" if ev == "connect" else None)
    d = sender(make_daemon, dns.server, fake.port, aliases="fwd@mx.test: u@remote.test\n")
    submit(d, ("fwd@mx.test",))
    [dsn] = wait_delivered(d, "alice@mx.test")
    f = dsn_fields(dsn)
    assert b"Status: 5.7.1" in f
    assert b"Remote-MTA: dns; mx.remote.test" in f
    assert b"Diagnostic-Code: smtp; 554 5.7.1 no mail from you" in f
    wait_queue_empty(d)


def test_i13_killed_after_the_remote_took_it_is_sent_again(make_daemon, dns, fakes):
    """HOSTILE-INPUTS I13: the queue manager dies after the peer has the whole message but
    before its 250 is recorded: the restarted one sends it again (a duplicate, never a
    loss), and the message leaves the queue only then."""
    release = threading.Event()

    def hook(ev, s, arg):
        if ev == "end" and not release.is_set():
            release.wait(10.0)  # hold the 250 while the queue manager is killed
        return None

    fake = fakes(hook)
    d = sender(make_daemon, dns.server, fake.port, aliases="fwd@mx.test: u@remote.test\n")
    qid = submit(d, ("fwd@mx.test",))
    fake.wait_txns(1)
    first = d.qmgr_pid()
    os.kill(first, signal.SIGKILL)
    wait_event(d, "qmgr_crash")
    release.set()
    txns = fake.wait_txns(2, timeout=20.0)
    assert all(split_received(t.message)[1] == BODY for t in txns)
    wait_queue_empty(d)
    assert not d.log_events("bounce")
    assert qid not in d.queued()


def test_4xx_then_success_on_retry(make_daemon, dns, fakes):
    tries = []

    def hook(ev, s, arg):
        if ev == "rcpt":
            tries.append(arg)
            if len(tries) == 1:
                return "451 4.3.0 greylisted, try later"
        return None

    fake = fakes(hook)
    d = sender(make_daemon, dns.server, fake.port, aliases="fwd@mx.test: u@remote.test\n")
    submit(d, ("fwd@mx.test",))
    [txn] = fake.wait_txns(1)
    assert split_received(txn.message)[1] == BODY
    deferred = wait_event(d, "deferred")
    assert "status=4.3.0" in deferred[0]
    wait_event(d, "delivered")
    wait_queue_empty(d)
    assert len(tries) == 2
    assert not d.delivered("alice@mx.test")  # no DSN


def test_peer_vanishes_mid_data_then_retry_delivers(make_daemon, dns, fakes):
    datas = []

    def hook(ev, s, arg):
        if ev == "data":
            datas.append(1)
            if len(datas) == 1:
                return CLOSE_IN_DATA
        return None

    fake = fakes(hook)
    d = sender(make_daemon, dns.server, fake.port, aliases="fwd@mx.test: u@remote.test\n")
    submit(d, ("fwd@mx.test",), body=BODY + (b"x" * 70 + b"\r\n") * 4000)
    [txn] = fake.wait_txns(1)
    assert split_received(txn.message)[1] == BODY + (b"x" * 70 + b"\r\n") * 4000
    assert "status=4.4.2" in wait_event(d, "deferred")[0]
    wait_event(d, "delivered")
    wait_queue_empty(d)
    assert fake.connections == 2


def test_j8_close_after_dot_before_reply_is_retried(make_daemon, dns, fakes):
    """HOSTILE-INPUTS J8 (RFC 5321 §4.1.1.4): the peer read the whole message and closed
    without a reply: not delivered, so it is sent again (a possible duplicate)."""
    ends = []

    def hook(ev, s, arg):
        if ev == "end":
            ends.append(arg)
            if len(ends) == 1:
                return CLOSE
        return None

    fake = fakes(hook)
    d = sender(make_daemon, dns.server, fake.port, aliases="fwd@mx.test: u@remote.test\n")
    submit(d, ("fwd@mx.test",))
    first, second = fake.wait_txns(2)
    assert first.message == second.message
    assert "status=4.4.2" in wait_event(d, "deferred")[0]
    wait_event(d, "delivered")
    wait_queue_empty(d)
    assert len(d.log_events("delivered")) == 1


def test_j7_dns_servfail_defers(make_daemon):
    """HOSTILE-INPUTS J7: SERVFAIL is a temporary error: deferred (4.4.3), never bounced."""
    bad = peers.ServfailDns()
    try:
        d = sender(make_daemon, bad.server, 25, aliases="fwd@mx.test: u@remote.test\n",
                   delivery="lifetime 1h")
        qid = submit(d, ("fwd@mx.test",))
        line = wait_event(d, "deferred", timeout=20.0)[0]
        assert "status=4.4.3" in line and "to=<u@remote.test>" in line
        assert bad.queries > 0
        assert d.queued() == [qid]
        assert not d.delivered("alice@mx.test")
        assert not d.log_events("failed")
    finally:
        bad.stop()


def test_j6_null_mx_bounces_5_1_10(make_daemon, dns):
    """HOSTILE-INPUTS J6 (RFC 7505): a domain with MX 0 "." accepts no mail: one try, and
    the sender gets a 5.1.10 report."""
    d = sender(make_daemon, dns.server, 25, aliases="fwd@mx.test: u@null.test\n")
    submit(d, ("fwd@mx.test",))
    [dsn] = wait_delivered(d, "alice@mx.test")
    f = dsn_fields(dsn)
    assert b"Final-Recipient: rfc822; u@null.test" in f
    assert b"Action: failed" in f and b"Status: 5.1.10" in f
    wait_queue_empty(d)
    assert not d.log_events("smtp_client_connect")


def test_destinations_are_forgotten_when_idle(make_daemon, dns):
    """Each remote domain gets a destination (its concurrency, idle connections); one with
    nothing to do is forgotten at the next rescan, so a queue manager that has seen many
    domains does not keep them all."""
    d = sender(make_daemon, dns.server, 25, aliases="fwd@mx.test: u@null.test, v@nx.test\n")
    submit(d, ("fwd@mx.test",))
    wait_delivered(d, "alice@mx.test")
    wait_queue_empty(d)
    closed = wait_for(lambda: (lambda ls: ls if len(ls) >= 2 else None)(
        d.log_events("destination_closed")), 10.0, what="both destinations forgotten")
    assert {ln.split("key=")[1] for ln in closed} == {"smtp:null.test", "smtp:nx.test"}


@pytest.mark.parametrize("how", ["address", "name", "greeting"])
def test_j5_mx_pointing_at_ourselves_bounces_5_4_6(make_daemon, dns, fakes, how):
    """HOSTILE-INPUTS J5 (RFC 5321 §5.1): the best MX is this server, found by its address
    and port (self.loop.test is 127.0.0.1 and remote-port our own port), by its name
    (named.test's MX is our hostname), or by the greeting of the host reached (a peer that
    calls itself mx.test): "mail loops back to myself", 5.4.6."""
    if how == "greeting":
        fake = fakes(name="mx.test")
        d = sender(make_daemon, dns.server, fake.port, aliases="fwd@mx.test: u@remote.test\n")
    elif how == "name":
        fake = fakes()
        d = sender(make_daemon, dns.server, fake.port, aliases="fwd@mx.test: u@named.test\n")
    else:
        fake = None
        d = make_daemon(delivery=FAST + "\ndns %s" % dns.server, start=False, sub="sender")
        d.delivery += "\nremote-port %d" % d.port
        d.write_conf()
        with open(os.path.join(d.dir, "aliases"), "a") as f:
            f.write("fwd@mx.test: u@loop.test\n")
        d.start()
    submit(d, ("fwd@mx.test",))
    [dsn] = wait_delivered(d, "alice@mx.test")
    f = dsn_fields(dsn)
    assert b"Action: failed" in f and b"Status: 5.4.6" in f
    wait_queue_empty(d)
    if fake is not None:
        assert not fake.txns
        assert all(not ln.startswith(b"MAIL") for s in fake.sessions for _, ln in s.lines)
    if how == "address":
        # Found before any connection: nothing was opened to ourselves.
        assert len(d.log_events("smtp_client_connect")) == 0


MALFORMED = {
    "j1_short_line_in_multiline": ("ehlo", b"250-mx.remote.test\r\n25\r\n"),
    "j2_one_megabyte_line": ("connect", b"220 " + b"x" * (1 << 20) + b"\r\n"),
    "j2_many_lines": ("ehlo", b"250-x\r\n" * 20000 + b"250 x\r\n"),
    "j2_non_numeric_code": ("mail", b"2x0 ok\r\n"),
    "j2_code_999": ("rcpt", b"999 what\r\n"),
    "j2_mixed_codes": ("ehlo", b"250-mx.remote.test\r\n550 PIPELINING\r\n"),
    "j2_nul_in_reply": ("end", b"250 ok\x00 really\r\n"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_j1_j2_malformed_replies_defer(make_daemon, dns, fakes, case):
    """HOSTILE-INPUTS J1, J2: replies that break the grammar (a line shorter than a code,
    1 MB, endless lines, no number, 999, codes that change within a reply, a NUL) are a
    protocol error: deferred, nothing delivered or bounced, no crash."""
    event, raw = MALFORMED[case]
    fake = fakes(lambda ev, s, arg: raw if ev == event else None)
    d = sender(make_daemon, dns.server, fake.port, aliases="fwd@mx.test: u@remote.test\n",
               delivery="lifetime 1h", fast="retry-min 1h\nretry-max 1h")
    qid = submit(d, ("fwd@mx.test",))
    line = wait_event(d, "deferred")[0]
    assert re.search(r"status=4\.\d+\.\d+", line), line
    assert d.queued() == [qid]
    assert not d.log_events("delivered") and not d.log_events("failed")
    assert len(d.log_events("qmgr_spawn")) == 1
    submit(d, ("bob@mx.test",), body=b"Subject: still alive\r\n\r\nyes\r\n")
    wait_delivered(d, "bob@mx.test")


def test_j3_bytes_after_starttls_220_are_discarded(make_daemon, dns, fakes, tmp_path):
    """HOSTILE-INPUTS J3: a peer that puts more replies after its STARTTLS 220 (plaintext,
    before the handshake) does not get them taken for the answer to the EHLO inside TLS:
    they are dropped, TLS proceeds, and the mail goes over TLS."""
    cert = peers.make_cert(str(tmp_path))
    fake = fakes(cert=cert, starttls_extra=b"250-mx.evil\r\n250 AUTH PLAIN\r\n")
    d = sender(make_daemon, dns.server, fake.port, aliases="fwd@mx.test: u@remote.test\n")
    submit(d, ("fwd@mx.test",))
    [txn] = fake.wait_txns(1)
    assert txn.tls
    assert split_received(txn.message)[1] == BODY
    [s] = fake.sessions
    ehlos = [(tls, ln) for tls, ln in s.lines if ln.startswith(b"EHLO")]
    assert ehlos == [(False, b"EHLO mx.test"), (True, b"EHLO mx.test")]
    wait_queue_empty(d)


def test_j3_plaintext_after_the_handshake_began_fails_closed(make_daemon, dns, fakes,
                                                             tmp_path):
    """HOSTILE-INPUTS J3, the other timing: the injected bytes arrive after the 220 was
    read, where they cannot be told from TLS records: the handshake fails, the message is
    deferred, and nothing goes out in plaintext instead."""
    cert = peers.make_cert(str(tmp_path))
    fake = fakes(cert=cert, starttls_extra=b"250-mx.evil\r\n250 AUTH PLAIN\r\n",
                 starttls_extra_delay=0.3)
    d = sender(make_daemon, dns.server, fake.port, aliases="fwd@mx.test: u@remote.test\n",
               delivery="lifetime 1h", fast="retry-min 1h\nretry-max 1h")
    qid = submit(d, ("fwd@mx.test",))
    assert "status=4.7.0" in wait_event(d, "deferred")[0]
    assert d.queued() == [qid]
    assert not fake.txns
    assert all(not ln.startswith(b"MAIL") for s in fake.sessions for _, ln in s.lines)


BARE = (b"Subject: bare\r\n\r\nbare LF\nthen a dot line\n.\nbare CR\rend\r\n"
        b"crlf dot\r\n.\r\nlast")


@pytest.mark.parametrize("chunking", [False, True], ids=["data", "bdat"])
def test_j10_bare_lf_body_goes_out_normalised_and_dot_stuffed(make_daemon, dns, fakes,
                                                               chunking):
    """HOSTILE-INPUTS J10: a stored body with bare LF, bare CR and "\\n.\\n" (handed to
    the queue manager as raw bytes on its control socket, which stores them as they are)
    leaves as CRLF lines only, and with DATA every line that starts with a dot is stuffed:
    the peer sees the end of data where we put it and nowhere else."""
    ehlo = ["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"] + (["CHUNKING"] if chunking else [])
    fake = fakes(ehlo=ehlo)
    d = sender(make_daemon, dns.server, fake.port)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(d.control_path())
    s.sendall(b"submit\nfrom s@mx.test\nrcpt u@remote.test\ndata %d\n" % len(BARE) + BARE)
    s.shutdown(socket.SHUT_WR)
    answer = s.recv(4096)
    s.close()
    assert answer.startswith(b"ok "), answer
    [txn] = fake.wait_txns(1)
    assert txn.mail.startswith(b"MAIL FROM:<s@mx.test>")
    [rcpt] = txn.rcpts
    assert rcpt.startswith(b"RCPT TO:<u@remote.test>")
    assert txn.verb == ("BDAT" if chunking else "DATA")
    wire = txn.wire
    # CRLF only: no CR without LF after it, no LF without CR before it.
    assert re.search(rb"\r(?!\n)|(?<!\r)\n", wire) is None
    lines = wire.split(b"\r\n")
    if not chunking:
        assert b"." not in lines  # the only lone dot is the terminator, not in wire
        assert b"then a dot line\r\n..\r\nbare CR\r\nend\r\ncrlf dot\r\n..\r\nlast" in wire
    else:
        assert b"then a dot line\r\n.\r\nbare CR\r\nend\r\ncrlf dot\r\n.\r\nlast" in wire
    assert wire.endswith(b"\r\n")
    wait_queue_empty(d)


def test_smarthost_auth_plain_over_starttls(make_daemon, fakes, tmp_path):
    """A smarthost replaces MX lookup; RFC 4954 AUTH PLAIN (RFC 4616: NUL user NUL
    password) is sent only once the connection is TLS."""
    cert = peers.make_cert(str(tmp_path))
    expect = b"AUTH PLAIN " + base64.b64encode(b"\0relay-user\0s3cret pass")
    fake = fakes(cert=cert, auth=expect)
    d = make_daemon(delivery=FAST + "\nsmarthost 127.0.0.1:%d\nsmarthost-user relay-user\n"
                    "smarthost-password \"s3cret pass\"" % fake.port, start=False, sub="sender")
    with open(os.path.join(d.dir, "aliases"), "a") as f:
        f.write("fwd@mx.test: u@anywhere.example\n")
    d.start()
    submit(d, ("fwd@mx.test",))
    [txn] = fake.wait_txns(1)
    assert txn.tls
    assert txn.rcpts == [b"RCPT TO:<u@anywhere.example>"]
    [s] = fake.sessions
    auths = [(tls, ln) for tls, ln in s.lines if ln.upper().startswith(b"AUTH")]
    assert auths == [(True, expect)]
    wait_queue_empty(d)


def test_smarthost_credentials_never_sent_without_tls(make_daemon, fakes):
    fake = fakes(ehlo=("PIPELINING", "AUTH PLAIN"))
    d = make_daemon(delivery=FAST + "\nlifetime 1h\nsmarthost 127.0.0.1:%d\n"
                    "smarthost-user u\nsmarthost-password p" % fake.port, start=False,
                    sub="sender")
    with open(os.path.join(d.dir, "aliases"), "a") as f:
        f.write("fwd@mx.test: u@anywhere.example\n")
    d.start()
    submit(d, ("fwd@mx.test",))
    assert "status=4.7.0" in wait_event(d, "deferred")[0]
    assert all(not ln.upper().startswith((b"AUTH", b"MAIL")) for s in fake.sessions
               for _, ln in s.lines)


def test_remote_tls_verify_with_untrusted_cert_defers_4_7_5(make_daemon, dns, fakes, tmp_path):
    """`remote remote.test { tls verify }`: a self-signed certificate is not good enough;
    the message waits (4.7.5) and nothing of it is sent."""
    cert = peers.make_cert(str(tmp_path))
    fake = fakes(cert=cert)
    d = sender(make_daemon, dns.server, fake.port, aliases="fwd@mx.test: u@remote.test\n",
               delivery="lifetime 1h", extra="remote remote.test { tls verify }\n")
    qid = submit(d, ("fwd@mx.test",))
    assert "status=4.7.5" in wait_event(d, "deferred")[0]
    assert d.queued() == [qid]
    assert all(not ln.startswith(b"MAIL") for s in fake.sessions for _, ln in s.lines)
    assert not fake.txns


def test_connection_reuse_for_the_same_destination(make_daemon, dns, fakes):
    fake = fakes()
    d = sender(make_daemon, dns.server, fake.port, aliases="fwd@mx.test: u@remote.test\n")
    submit(d, ("fwd@mx.test",), body=b"Subject: one\r\n\r\nfirst\r\n")
    fake.wait_txns(1)
    submit(d, ("fwd@mx.test",), body=b"Subject: two\r\n\r\nsecond\r\n")
    one, two = fake.wait_txns(2)
    assert split_received(one.message)[1] == b"Subject: one\r\n\r\nfirst\r\n"
    assert split_received(two.message)[1] == b"Subject: two\r\n\r\nsecond\r\n"
    assert fake.connections == 1 and one.conn == two.conn == 0
    assert len(d.log_events("smtp_client_connect")) == 1
    wait_queue_empty(d)


def test_idle_connection_closed_by_the_peer_is_not_reused(make_daemon, dns, fakes):
    """A peer may close a connection we keep for reuse (its idle timeout, RFC 5321
    §4.5.3.2.7): the next message opens a new one instead of failing on the dead one."""
    fake = fakes(lambda ev, s, arg: ("250 2.0.0 ok", CLOSE) if ev == "end" and s.index == 0
                 else None)
    d = sender(make_daemon, dns.server, fake.port, aliases="fwd@mx.test: u@remote.test\n",
               fast="retry-min 1h\nretry-max 1h")
    submit(d, ("fwd@mx.test",), body=b"Subject: one\r\n\r\nfirst\r\n")
    fake.wait_txns(1)
    wait_for(lambda: all(s.sock.fileno() < 0 for s in fake.sessions), 5.0,
             what="the fake to close")
    submit(d, ("fwd@mx.test",), body=b"Subject: two\r\n\r\nsecond\r\n")
    one, two = fake.wait_txns(2)
    assert split_received(two.message)[1] == b"Subject: two\r\n\r\nsecond\r\n"
    assert two.conn == 1
    wait_queue_empty(d)
    assert not d.log_events("deferred")
