"""The queue tools against the real queue manager (issue #3): `sluice queue list/show/hold/
release/flush/delete`, mailq and `sluice sendmail` talking to <spool>/public/control, and the
permission rule (administration for root and the daemon's user only, submission for every
local user). tests/e2e/test_queue_cli.py checks the client side against a fake server."""

import json
import os
import shutil
import subprocess
import tempfile

from e2e_helpers import SLUICE, Client, send_message, wait_for

SENDMAIL = os.path.join(os.path.dirname(SLUICE), "sendmail")
MAILQ = os.path.join(os.path.dirname(SLUICE), "mailq")


def sluice(d, *args, user=None, stdin=None):
    cmd = [SLUICE, "-c", getattr(d, "conf_for_cli", d.conf)] + list(args)
    if user is not None:
        cmd = ["setpriv", "--reuid=%d" % user, "--regid=%d" % user, "--clear-groups"] + cmd
    return subprocess.run(cmd, input=stdin, capture_output=True, timeout=30)


def queue_json(d):
    r = sluice(d, "queue", "list", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def accept_one(d, rcpts=("alice@mx.test",), body=b"Subject: q\r\n\r\nqueued\r\n"):
    with Client(d.port) as c:
        c.expect("EHLO client.test", 250)
        qid = send_message(c, body, rcpts=rcpts)
        c.expect("QUIT", 221)
    wait_for(lambda: qid in [m["id"] for m in queue_json(d)], 5.0, what="%s listed" % qid)
    return qid


def test_list_show_hold_release_delete_on_a_held_queue(make_daemon):
    d = make_daemon()  # delivery hold: messages stay queued
    a = accept_one(d, rcpts=("alice@mx.test", "bob@mx.test"))
    b = accept_one(d)
    listing = queue_json(d)
    assert [m["id"] for m in listing] == sorted([a, b])
    first = next(m for m in listing if m["id"] == a)
    assert first["sender"] == "sender@example.org" and not first["held"]
    assert [r["address"] for r in first["recipients"]] == ["alice@mx.test", "bob@mx.test"]
    assert all(r["state"] == "pending" for r in first["recipients"])

    out = subprocess.run([MAILQ, "-C", d.conf], capture_output=True, timeout=30)
    assert out.returncode == 0
    assert a.encode() in out.stdout and b"in 2 Requests." in out.stdout

    assert sluice(d, "queue", "hold", a).returncode == 0
    assert next(m for m in queue_json(d) if m["id"] == a)["held"]
    assert (a + "!").encode() in subprocess.run([MAILQ, "-C", d.conf], capture_output=True,
                                                 timeout=30).stdout
    show = sluice(d, "queue", "show", a)
    assert show.returncode == 0 and b"held" in show.stdout
    assert sluice(d, "queue", "release", a).returncode == 0
    assert not next(m for m in queue_json(d) if m["id"] == a)["held"]

    assert sluice(d, "queue", "delete", b).returncode == 0
    assert [m["id"] for m in queue_json(d)] == [a]
    assert b not in d.queued()
    gone = sluice(d, "queue", "show", b)
    assert gone.returncode == 1 and b"no such message" in gone.stdout + gone.stderr
    assert d.log_events("deleted")


def test_hold_survives_a_restart_and_release_delivers(make_daemon):
    d = make_daemon(delivery="retry-min 1s\nretry-max 1s", start=False)
    mail = os.path.join(d.dir, "mail")
    d.start()
    wait_for(lambda: os.path.isdir(mail), 5.0, what="the mail directory")
    shutil.rmtree(mail)  # deliveries defer until it is back
    qid = accept_one(d)
    assert sluice(d, "queue", "hold", qid).returncode == 0
    assert d.stop() == 0
    os.mkdir(mail)
    d.start()
    wait_for(lambda: qid in [m["id"] for m in queue_json(d)], 5.0, what="the message")
    assert next(m for m in queue_json(d) if m["id"] == qid)["held"]
    assert d.delivered("alice@mx.test") == []
    assert sluice(d, "queue", "release", qid).returncode == 0
    wait_for(lambda: d.delivered("alice@mx.test"), 10.0, what="delivery after release")


def test_flush_retries_a_deferred_message_now(make_daemon):
    d = make_daemon(delivery="retry-min 1h\nretry-max 1h", start=False)
    mail = os.path.join(d.dir, "mail")
    d.start()
    wait_for(lambda: os.path.isdir(mail), 5.0, what="the mail directory")
    shutil.rmtree(mail)
    qid = accept_one(d)
    wait_for(lambda: d.log_events("deferred"), 10.0, what="a deferral")
    [m] = [m for m in queue_json(d) if m["id"] == qid]
    assert m["recipients"][0]["state"] == "deferred"
    assert "4.2.0" in m["recipients"][0]["reason"]
    os.mkdir(mail)
    assert sluice(d, "queue", "flush", qid).returncode == 0
    wait_for(lambda: d.delivered("alice@mx.test"), 10.0, what="delivery after flush")
    wait_for(lambda: not d.queued(), 10.0, what="an empty queue")


def test_sendmail_submits_through_the_queue_manager(make_daemon):
    d = make_daemon(delivery="retry-min 1s")
    r = subprocess.run([SENDMAIL, "-C", d.conf, "-f", "cron@mx.test", "-F", "Cron Daemon",
                        "alice@mx.test"], input=b"Subject: nightly\n\nall good\n.\nignored\n",
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    [got] = wait_for(lambda: d.delivered("alice@mx.test") or None, 10.0, what="the delivery")
    assert got.startswith(b"Return-Path: <cron@mx.test>\r\nDelivered-To: alice@mx.test\r\n")
    assert b"Received: by mx.test (Sluice, from userid 0)" in got
    assert b"From: \"Cron Daemon\" <cron@mx.test>\r\n" in got
    assert b"Subject: nightly\r\n" in got and b"all good\r\n" in got
    assert b"ignored" not in got  # without -i a lone dot ends the input
    assert d.log_events("submitted")


def test_other_users_may_submit_but_not_administer(make_daemon, tmp_path):
    # The spool and a copy of the configuration where user nobody can reach them (the
    # test's own directory is private to root).
    public = tempfile.mkdtemp(prefix="sluice-public-", dir="/tmp")
    try:
        os.chmod(public, 0o711)
        d = make_daemon(spool=os.path.join(public, "spool"))
        conf = os.path.join(public, "sluice.conf")
        shutil.copy(d.conf, conf)
        os.chmod(conf, 0o644)
        _other_users(d, conf)
    finally:
        shutil.rmtree(public, ignore_errors=True)


def _other_users(d, conf):
    qid = accept_one(d)
    nobody = 65534
    d.conf_for_cli = conf
    denied = sluice(d, "queue", "delete", qid, user=nobody)
    assert denied.returncode == 1
    assert b"permission denied" in denied.stdout + denied.stderr
    assert qid in d.queued()
    listing = sluice(d, "queue", "list", user=nobody)
    assert listing.returncode == 1
    sent = subprocess.run(["setpriv", "--reuid=%d" % nobody, "--regid=%d" % nobody,
                           "--clear-groups", SENDMAIL, "-C", conf, "alice@mx.test"],
                          input=b"Subject: from nobody\n\nhi\n", capture_output=True, timeout=30)
    assert sent.returncode == 0, sent.stderr
    wait_for(lambda: len(queue_json(d)) == 2, 5.0, what="the submitted message")
    assert any("uid=%d" % nobody in ln for ln in d.log_events("submitted"))
    assert d.log_events("ctl_refused")


def ctl_exchange(d, text):
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(d.control_path())
    s.sendall(text)
    s.shutdown(socket.SHUT_WR)
    out = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        out += chunk
    s.close()
    return out


def test_submit_refuses_what_smtp_would_refuse(make_daemon):
    """The control socket applies the SMTP path rules (RFC 5321 §4.1.2) to submitted
    addresses, bounds the size by limits.message-size, and queues nothing it refused."""
    d = make_daemon(extra="limits { message-size 2K }")
    for bad in (b"a@@b.test", b"x", b"@route:a@b.test", b"a\\b@c"):
        out = ctl_exchange(d, b"submit\nfrom s@mx.test\nrcpt " + bad + b"\n")
        assert out.startswith(b"err 5.1.3"), (bad, out)
    out = ctl_exchange(d, b"submit\nfrom s@mx.test\nrcpt alice@mx.test\ndata 4096\n")
    assert out.startswith(b"err 5.3.4"), out
    out = ctl_exchange(d, b"submit\nfrom s@mx.test\nrcpt alice@mx.test\ndata 100\nonly part")
    assert out == b""  # the client went away mid-message: nothing queued, no answer owed
    out = ctl_exchange(d, b"submit\nfrom <>\n")
    assert out.startswith(b"err"), out
    out = ctl_exchange(d, b"bogus\n")
    assert out.startswith(b"err 5.5.2"), out
    assert queue_json(d) == []
    assert d.queued() == []
