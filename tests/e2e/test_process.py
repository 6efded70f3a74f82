"""Process model (DESIGN §1): SIGHUP reload, SIGTERM drain, a crashed worker restarted by
the master, and several workers serving the same listeners."""

import os
import signal
import subprocess
import time

import pytest

from e2e_helpers import Client, Closed, queued_id, send_message, wait_for

BODY = b"Subject: process\r\n\r\nbody\r\n"
SHUTDOWN = "421 4.3.2 Service shutting down; closing"


def test_sighup_reload_keeps_live_session_and_applies_new_config(make_daemon):
    d = make_daemon()
    c = Client(d.port)
    assert c.greeting[1] == ["220 mx.test ESMTP Sluice"]
    c.expect("EHLO client.example", 250)
    d.hostname = "reloaded.test"
    d.write_conf()
    os.kill(d.pid, signal.SIGHUP)
    wait_for(lambda: d.log_events("reload"), 5.0, what="event=reload")
    wait_for(lambda: len(d.log_events("worker_start")) >= 2, 5.0, what="the new worker")
    # The session opened before the reload goes on as if nothing happened.
    qid = send_message(c, BODY)
    c.expect("QUIT", 221)
    c.close()
    assert d.body(qid) == BODY

    def greeting():
        with Client(d.port) as n:
            return n.greeting[1] if n.greeting[1] == ["220 reloaded.test ESMTP Sluice"] else None
    wait_for(greeting, 5.0, interval=0.2, what="the new hostname in the greeting")


def test_sighup_reload_keeps_session_inside_transaction(make_daemon):
    d = make_daemon()
    c = Client(d.port)
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<sender@example.org>", 250)
    c.expect("RCPT TO:<alice@mx.test>", 250)
    d.hostname = "reloaded.test"
    d.write_conf()
    os.kill(d.pid, signal.SIGHUP)
    wait_for(lambda: d.log_events("reload"), 5.0, what="event=reload")
    wait_for(lambda: len(d.log_events("worker_start")) >= 2, 5.0, what="the new worker")
    c.expect("DATA", 354)
    c.send(BODY + b".\r\n")
    code, lines = c.reply()
    assert code == 250, lines
    assert d.body(queued_id(lines[-1])) == BODY
    c.close()


def test_sigterm_right_after_sighup_exits_0(make_daemon):
    # A SIGTERM that reaches a worker forked by the reload before it has set up its own
    # handlers must not be lost: the daemon still drains and exits 0.
    for i in range(5):
        d = make_daemon(sub="r%d" % i)
        os.kill(d.pid, signal.SIGHUP)
        os.kill(d.pid, signal.SIGTERM)
        try:
            rc = d.proc.wait(10)
        except subprocess.TimeoutExpired:
            d.kill()
            pytest.fail("sluiced ignored SIGTERM sent during a reload (try %d):\n%s"
                        % (i, d.log()[-1500:]))
        assert rc == 0


def test_sighup_bad_config_keeps_serving(make_daemon):
    d = make_daemon()
    with open(d.conf, "a") as f:
        f.write("no-such-directive 1\n")
    os.kill(d.pid, signal.SIGHUP)
    wait_for(lambda: d.log_events("reload_error"), 5.0, what="event=reload_error")
    d.assert_healthy()


def test_sigterm_drains_transaction_then_421_and_exits_0(make_daemon):
    d = make_daemon()
    busy = Client(d.port)
    busy.expect("EHLO busy.example", 250)
    busy.expect("MAIL FROM:<sender@example.org>", 250)
    busy.expect("RCPT TO:<alice@mx.test>", 250)
    busy.expect("DATA", 354)
    busy.send(b"Subject: drain\r\n\r\nfirst half\r\n")
    idle = Client(d.port)
    idle.expect("EHLO idle.example", 250)
    fresh = Client(d.port)
    time.sleep(0.2)
    d.proc.send_signal(signal.SIGTERM)
    # Idle sessions (greeted or not) are told at once.
    for c in (idle, fresh):
        lines = c.wait_closed(5.0)
        assert SHUTDOWN in lines, lines
    # The one inside a transaction finishes it, then hears the 421.
    busy.send(b"second half\r\n.\r\n")
    code, lines = busy.reply()
    assert code == 250, lines
    qid = queued_id(lines[-1])
    lines = busy.wait_closed(5.0)
    assert SHUTDOWN in lines, lines
    rc = d.proc.wait(10)
    assert rc == 0, d.log()[-2000:]
    assert d.body(qid) == b"Subject: drain\r\n\r\nfirst half\r\nsecond half\r\n"


def test_sigterm_drain_refuses_a_new_transaction(make_daemon):
    # While draining, a session may finish the transaction it has, but RSET and a new MAIL do
    # not buy it another message: MAIL gets 421 4.3.2 and the connection closes.
    d = make_daemon()
    c = Client(d.port)
    c.expect("EHLO busy.example", 250)
    c.expect("MAIL FROM:<sender@example.org>", 250)
    time.sleep(0.2)
    d.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    c.expect("RSET", 250)
    code, lines = c.cmd("MAIL FROM:<sender@example.org>")
    assert code == 421 and SHUTDOWN in lines, lines
    c.wait_closed(5.0)
    assert d.proc.wait(10) == 0


def test_sigkill_of_worker_is_restarted(make_daemon):
    d = make_daemon()
    (old,) = d.wait_workers(1)
    os.kill(old, signal.SIGKILL)
    t0 = time.monotonic()
    wait_for(lambda: d.log_events("worker_crash"), 3.0, what="event=worker_crash")
    d.wait_workers(1, timeout=3.0, exclude=(old,))

    def serves():
        try:
            with Client(d.port, timeout=1.0) as c:
                return c.greeting[0] == 220
        except (OSError, Closed):
            return False
    wait_for(serves, 3.0, interval=0.1, what="a new worker serving")
    assert time.monotonic() - t0 < 3.5
    d.assert_healthy()


def test_two_workers_both_serve(make_daemon):
    d = make_daemon(workers=2)
    pids = d.wait_workers(2)
    assert len(pids) == 2
    # Stop one worker: the other alone must serve; then the other way round.
    for stopped, serving in ((pids[0], pids[1]), (pids[1], pids[0])):
        os.kill(stopped, signal.SIGSTOP)
        try:
            with Client(d.port, timeout=5.0) as c:
                assert c.greeting[0] == 220
                c.expect("EHLO client.example", 250)
                qid = send_message(c, BODY)
                c.expect("QUIT", 221)
        finally:
            os.kill(stopped, signal.SIGCONT)
        assert d.body(qid) == BODY
        assert any("sluiced/worker[%d]" % serving in ln and qid in ln
                   for ln in d.log_events("queued")), "queued by the wrong worker"
