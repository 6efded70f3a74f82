"""Local delivery end to end (issue #3): the queue manager picks up what the workers
commit, delivers it into Maildirs byte for byte, expands aliases, retries, bounces with
RFC 3464 reports, records each recipient's outcome durably (HOSTILE-INPUTS I13), and sets
corrupt queue files aside (I10). Every test runs a real sluiced on loopback."""

import os
import re
import shutil
import signal
import time

from e2e_helpers import Client, send_message, wait_for

FAST = "retry-min 1s\nretry-max 2s\nrescan 1s"


def headers_and_rest(data):
    """Split a delivered file into our two leading header lines and the rest."""
    first, second, rest = data.split(b"\r\n", 2)
    return first, second, rest


def wait_delivered(d, addr, n=1, timeout=10.0):
    return wait_for(lambda: (lambda f: f if len(f) >= n else None)(d.delivered(addr)), timeout,
                    what="%d message(s) in %s's Maildir" % (n, addr))


def wait_queue_empty(d, timeout=10.0):
    wait_for(lambda: not d.queued(), timeout, what="queue/ to be empty")


def test_local_delivery_is_byte_exact(make_daemon):
    d = make_daemon(delivery=FAST)
    body = (b"Subject: bytes\r\n\r\n..a line that began with a dot\r\n"
            b"8-bit: \xc3\xa9\xff\r\n.\r\n. lone dot above\r\nlast line\r\n")
    with Client(d.port) as c:
        c.expect("EHLO client.test", 250)
        qid = send_message(c, body.replace(b"\r\n.", b"\r\n.."), sender="s@example.org",
                           rcpts=("alice@mx.test",), mail_params=" BODY=8BITMIME")
        c.expect("QUIT", 221)
    [got] = wait_delivered(d, "alice@mx.test")
    rp, dt, rest = headers_and_rest(got)
    assert rp == b"Return-Path: <s@example.org>"
    assert dt == b"Delivered-To: alice@mx.test"
    assert rest.startswith(b"Received: from ")
    assert ("id %s" % qid).encode() in rest.split(b"\r\n\r\n", 1)[0]
    assert rest.endswith(body)
    assert rest[rest.index(b"Subject: bytes"):] == body
    wait_queue_empty(d)
    assert d.log_events("delivered") and d.log_events("removed")
    # The outcome log was compacted or holds records, never a message file.
    assert not d.listdir("corrupt")


def test_binary_bdat_body_delivered_byte_exact(make_daemon):
    d = make_daemon(delivery=FAST)
    body = b"Subject: bin\r\n\r\n" + bytes(range(256)) * 4 + b"\r\n.\r\n..\r\nend"
    with Client(d.port) as c:
        c.expect("EHLO client.test", 250)
        c.expect("MAIL FROM:<s@example.org> BODY=BINARYMIME", 250)
        c.expect("RCPT TO:<bob@mx.test>", 250)
        c.send(b"BDAT %d LAST\r\n" % len(body) + body)
        code, lines = c.reply()
        assert code == 250, lines
        c.expect("QUIT", 221)
    [got] = wait_delivered(d, "bob@mx.test")
    assert got.endswith(body)


def test_alias_expands_to_each_member_once(make_daemon):
    d = make_daemon(delivery=FAST, start=False)
    with open(os.path.join(d.dir, "aliases"), "w") as f:
        # team lists alice twice over (directly and through crew), crew points back at team.
        f.write("team@mx.test: alice@mx.test, bob@mx.test, crew@mx.test\n"
                "crew@mx.test: team@mx.test, alice@mx.test\n")
    d.start()
    with Client(d.port) as c:
        c.expect("EHLO client.test", 250)
        send_message(c, b"Subject: team\r\n\r\nhello team\r\n", rcpts=("team@mx.test",))
        c.expect("QUIT", 221)
    wait_delivered(d, "alice@mx.test")
    wait_delivered(d, "bob@mx.test")
    wait_queue_empty(d)
    time.sleep(0.5)
    assert len(d.delivered("alice@mx.test")) == 1
    assert len(d.delivered("bob@mx.test")) == 1
    assert len(d.log_events("expanded")) == 2


def test_k4_alias_loop_without_a_mailbox_bounces(make_daemon):
    """HOSTILE-INPUTS K4: loop1 -> loop2 -> loop1 reaches no mailbox: the sender gets a
    5.4.6 report instead of the mail vanishing or fanning out forever."""
    d = make_daemon(delivery=FAST, start=False)
    with open(os.path.join(d.dir, "aliases"), "w") as f:
        f.write("loop1@mx.test: loop2@mx.test\nloop2@mx.test: loop1@mx.test\n")
    d.start()
    with Client(d.port) as c:
        c.expect("EHLO client.test", 250)
        send_message(c, b"Subject: loop\r\n\r\nround and round\r\n", sender="alice@mx.test",
                     rcpts=("loop1@mx.test",))
        c.expect("QUIT", 221)
    [dsn] = wait_delivered(d, "alice@mx.test")
    assert b"Status: 5.4.6" in dsn and b"Final-Recipient: rfc822; loop2@mx.test" in dsn
    wait_queue_empty(d)


def test_k1_symlinked_maildir_bounces_with_a_dsn(make_daemon, tmp_path):
    """HOSTILE-INPUTS K1: a Maildir that is a symlink is refused (5.2.0), nothing is written
    through it, and the sender gets an RFC 3464 report."""
    d = make_daemon(delivery=FAST)
    target = tmp_path / "elsewhere"
    target.mkdir()
    os.makedirs(os.path.dirname(d.maildir("bob@mx.test")), exist_ok=True)
    os.symlink(str(target), d.maildir("bob@mx.test"))
    with Client(d.port) as c:
        c.expect("EHLO client.test", 250)
        qid = send_message(c, b"Subject: k1\r\n\r\nto a symlink\r\n", sender="alice@mx.test",
                           rcpts=("bob@mx.test",), mail_params=" ENVID=env-k1")
        c.expect("QUIT", 221)
    [dsn] = wait_delivered(d, "alice@mx.test")
    assert os.listdir(str(target)) == []
    assert b"Return-Path: <>" in dsn
    assert b"Content-Type: multipart/report; report-type=delivery-status" in dsn
    assert b"Final-Recipient: rfc822; bob@mx.test" in dsn
    assert b"Action: failed" in dsn and b"Status: 5.2.0" in dsn
    assert b"Original-Envelope-Id: env-k1" in dsn
    assert b"Subject: k1" in dsn  # the original attached (RET default: full)
    assert ("Message-ID: <%s.bounce." % qid).encode() in dsn
    wait_queue_empty(d)
    assert d.log_events("bounce")


def test_k6_failed_bounce_goes_to_the_postmaster_once(make_daemon, tmp_path):
    """A message from the null sender that fails is reported to the postmaster; when that
    report fails too it is dropped and logged, never bounced again (no loop)."""
    d = make_daemon(delivery=FAST)
    target = tmp_path / "t"
    target.mkdir()
    os.makedirs(os.path.dirname(d.maildir("bob@mx.test")), exist_ok=True)
    os.symlink(str(target), d.maildir("bob@mx.test"))
    with Client(d.port) as c:
        c.expect("EHLO client.test", 250)
        send_message(c, b"Subject: dsn\r\n\r\na bounce\r\n", sender="", rcpts=("bob@mx.test",))
        c.expect("QUIT", 221)
    [report] = wait_delivered(d, "postmaster@mx.test")
    assert b"To: <postmaster@mx.test>" in report and b"Status: 5.2.0" in report
    wait_queue_empty(d)
    # Now the postmaster's own Maildir is broken as well.
    shutil.rmtree(d.maildir("postmaster@mx.test"))
    os.symlink(str(target), d.maildir("postmaster@mx.test"))
    with Client(d.port) as c:
        c.expect("EHLO client.test", 250)
        send_message(c, b"Subject: dsn2\r\n\r\nanother\r\n", sender="", rcpts=("bob@mx.test",))
        c.expect("QUIT", 221)
    wait_for(lambda: d.log_events("bounce_dropped"), 10.0, what="the dropped double bounce")
    wait_queue_empty(d)
    assert len(d.log_events("bounce_dropped")) == 1
    assert os.listdir(str(target)) == []


def test_tempfail_is_retried_then_delivered(make_daemon):
    d = make_daemon(delivery=FAST)
    mail = os.path.join(d.dir, "mail")
    wait_for(lambda: os.path.isdir(mail), 5.0, what="the mail directory")
    shutil.rmtree(mail)  # an "unmounted" mail tree: defer, never recreate the configured root
    with Client(d.port) as c:
        c.expect("EHLO client.test", 250)
        send_message(c, b"Subject: retry\r\n\r\nlater\r\n", rcpts=("alice@mx.test",))
        c.expect("QUIT", 221)
    wait_for(lambda: d.log_events("deferred"), 10.0, what="a deferral")
    assert "status=4.2.0" in d.log_events("deferred")[0]
    assert not os.path.exists(mail)
    os.mkdir(mail)
    wait_delivered(d, "alice@mx.test", timeout=15.0)
    wait_queue_empty(d)


def test_deferred_state_survives_a_restart(make_daemon):
    d = make_daemon(delivery="retry-min 1h\nretry-max 1h")
    mail = os.path.join(d.dir, "mail")
    wait_for(lambda: os.path.isdir(mail), 5.0, what="the mail directory")
    shutil.rmtree(mail)
    with Client(d.port) as c:
        c.expect("EHLO client.test", 250)
        qid = send_message(c, b"Subject: restart\r\n\r\nkept\r\n", rcpts=("alice@mx.test",))
        c.expect("QUIT", 221)
    wait_for(lambda: d.log_events("deferred"), 10.0, what="a deferral")
    assert d.stop() == 0
    os.mkdir(mail)
    d.start()
    # The recorded next try is an hour away: the restart must not forget it and retry now.
    time.sleep(2.0)
    assert d.delivered("alice@mx.test") == []
    assert d.queued() == [qid]


def test_delay_warning_and_expiry_bounce(make_daemon):
    """A deferred recipient whose NOTIFY asks for DELAY gets one delay DSN after
    delay-warning; past the lifetime the message bounces with 4.4.7 (RFC 3463)."""
    d = make_daemon(delivery="retry-min 1s\nretry-max 1s\ndelay-warning 1s\nlifetime 4s\n"
                             "maildir %s/mail/%%d/%%u" % "MAILROOT", start=False)
    # alice's mail lives in another tree than bob's, which is missing: bob's defers.
    d.delivery = d.delivery.replace("MAILROOT", d.dir)
    d.extra = "domain other.test { maildir %s/gone/%%d/%%u }\n" % d.dir
    d.write_conf()
    with open(os.path.join(d.dir, "mailboxes"), "a") as f:
        f.write("bob@other.test\n")
    d.start()
    gone = os.path.join(d.dir, "gone")
    wait_for(lambda: os.path.isdir(gone), 5.0, what="the configured mail root")
    shutil.rmtree(gone)
    with Client(d.port) as c:
        c.expect("EHLO client.test", 250)
        c.expect("MAIL FROM:<alice@mx.test>", 250)
        c.expect("RCPT TO:<bob@other.test> NOTIFY=DELAY,FAILURE", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: slow\r\n\r\nslow\r\n.\r\n")
        assert c.reply()[0] == 250
        c.expect("QUIT", 221)
    msgs = wait_delivered(d, "alice@mx.test", n=2, timeout=20.0)
    assert b"Action: delayed" in msgs[0] and b"Status: 4.2.0" in msgs[0]
    assert b"Action: failed" in msgs[1] and b"Status: 4.4.7" in msgs[1]
    wait_queue_empty(d)
    assert len(d.log_events("delay_notice")) == 1


def test_i10_corrupt_queue_file_is_set_aside(make_daemon):
    d = make_daemon(delivery=FAST, start=False)
    os.makedirs(os.path.join(d.spool, "queue"), exist_ok=True)
    bogus = "HOF75XLKZ10OGR000009"
    with open(os.path.join(d.spool, "queue", bogus), "wb") as f:
        f.write(b"SLUICEQF" + b"\x00" * 40)
    d.start()
    with Client(d.port) as c:
        c.expect("EHLO client.test", 250)
        send_message(c, b"Subject: fine\r\n\r\nfine\r\n", rcpts=("alice@mx.test",))
        c.expect("QUIT", 221)
    wait_delivered(d, "alice@mx.test")
    wait_queue_empty(d)
    assert d.listdir("corrupt") == [bogus]
    assert any(bogus in ln for ln in d.log_events("queue_corrupt"))


def test_i13_queue_manager_killed_during_delivery(make_daemon):
    """HOSTILE-INPUTS I13: SIGKILL the queue manager while it delivers; the master starts
    a new one, and every acknowledged recipient is delivered at least once."""
    d = make_daemon(delivery=FAST + "\nlocal-concurrency 1")
    n = 300
    rcpts = ("alice@mx.test", "bob@mx.test")
    first = d.qmgr_pid()
    # Stopped while the mail arrives, so that it finds all of it at once and is killed in
    # the middle of delivering it, one thread, 64 recipients a batch.
    os.kill(first, signal.SIGSTOP)
    for start in range(0, n, 50):  # limits.messages is 100 per connection
        with Client(d.port) as c:
            c.expect("EHLO client.test", 250)
            for i in range(start, start + 50):
                send_message(c, b"Subject: m%d\r\n\r\nbody %d\r\n" % (i, i), rcpts=rcpts)
            c.expect("QUIT", 221)
    wait_for(lambda: len(d.queued()) == n, 10.0, what="every message in queue/")
    os.kill(first, signal.SIGCONT)
    wait_for(lambda: d.log_events("delivered"), 10.0, what="deliveries to start", interval=0.001)
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: d.log_events("qmgr_crash"), 5.0, what="the master to notice")
    wait_for(lambda: len(d.log_events("qmgr_spawn")) == 2, 5.0, what="a new queue manager")
    wait_queue_empty(d, timeout=60.0)
    loaded = [ln for ln in d.log_events("queue_loaded")]
    assert len(loaded) == 2 and "messages=0" not in loaded[1], loaded
    for r in rcpts:
        got = d.delivered(r)
        subjects = set(re.findall(rb"Subject: (m\d+)", b"".join(got)))
        assert subjects == {b"m%d" % i for i in range(n)}, r
        assert len(got) >= n


def test_bare_postmaster_is_delivered_to_the_first_domain(make_daemon):
    """RFC 5321 §4.5.1: <postmaster> without a domain is always accepted and delivered."""
    d = make_daemon(delivery=FAST)
    with Client(d.port) as c:
        c.expect("EHLO client.test", 250)
        send_message(c, b"Subject: pm\r\n\r\nfor the postmaster\r\n", rcpts=("postmaster",))
        c.expect("QUIT", 221)
    [got] = wait_delivered(d, "postmaster@mx.test")
    assert b"Delivered-To: postmaster\r\n" in got and b"for the postmaster" in got
    wait_queue_empty(d)


def test_rescan_finds_what_inotify_missed_and_restart_compacts_the_log(make_daemon):
    """The periodic rescan is the safety net: a file that reaches queue/ without a rename
    (here a hard link, which inotify's IN_MOVED_TO does not report) is delivered anyway. And
    a restart compacts the outcome log into one segment."""
    donor = make_daemon(sub="donor")  # delivery held: its queue file stays
    with Client(donor.port) as c:
        c.expect("EHLO client.test", 250)
        qid = send_message(c, b"Subject: linked\r\n\r\nfound by the rescan\r\n",
                           rcpts=("alice@mx.test",))
        c.expect("QUIT", 221)
    wait_for(lambda: qid in donor.queued(), 5.0, what="the donor's queue file")
    d = make_daemon(delivery=FAST, sub="d")
    outside = os.path.join(d.spool, "linked-" + qid)
    shutil.copy(donor.queue_path(qid), outside)
    os.link(outside, d.queue_path(qid))
    os.unlink(outside)
    [got] = wait_delivered(d, "alice@mx.test", timeout=10.0)
    assert b"found by the rescan" in got
    wait_queue_empty(d)
    for _ in range(2):
        assert d.stop() == 0
        d.start()
    wait_for(lambda: len(d.listdir("state")) == 1, 5.0, what="one outcome log segment")


def test_binarymime_bounce_attaches_the_header_only(make_daemon, tmp_path):
    """RFC 3030: a BINARYMIME original cannot travel in a DSN sent as 8BITMIME, so the DSN
    carries its header section only (text/rfc822-headers)."""
    d = make_daemon(delivery=FAST)
    target = tmp_path / "elsewhere"
    target.mkdir()
    os.makedirs(os.path.dirname(d.maildir("bob@mx.test")), exist_ok=True)
    os.symlink(str(target), d.maildir("bob@mx.test"))
    body = b"Subject: binary\r\n\r\n" + bytes(range(256)) + b"\nbare lf\r\n"
    with Client(d.port) as c:
        c.expect("EHLO client.test", 250)
        c.expect("MAIL FROM:<alice@mx.test> BODY=BINARYMIME", 250)
        c.expect("RCPT TO:<bob@mx.test>", 250)
        c.send(b"BDAT %d LAST\r\n" % len(body) + body)
        assert c.reply()[0] == 250
        c.expect("QUIT", 221)
    [dsn] = wait_delivered(d, "alice@mx.test")
    assert b"Content-Type: text/rfc822-headers" in dsn
    assert b"Subject: binary" in dsn
    assert bytes(range(256)) not in dsn and b"bare lf" not in dsn
