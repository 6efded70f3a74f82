"""Durability (HOSTILE-INPUTS I): what is on disk after a client or the server goes away at
each step of a message, after crash points injected in the queue store, on a full disk, with
no inode left, and on a failing fsync. The invariant everywhere: a message is in queue/ complete and readable
once a 250 was sent; nothing partial is ever left in queue/ or incoming/."""

import errno
import os
import shutil
import signal
import subprocess
import time
import uuid

import pytest

from e2e_helpers import (SLUICED, Client, Closed, CorruptQueueFile, queued_id,
                         read_queue_file, send_message, split_received, wait_for)

BODY = b"Subject: durable\r\n\r\n" + (b"0123456789abcdef" * 4 + b"\r\n") * 16


def start_transaction(c, rcpt="alice@mx.test"):
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<sender@example.org>", 250)
    c.expect("RCPT TO:<%s>" % rcpt, 250)
    c.expect("DATA", 354)


def new_in_queue(daemon, before, marker):
    """Names in queue/ that were not in before and whose message holds marker."""
    found = []
    for qid in set(daemon.queued()) - set(before):
        try:
            _, msg = daemon.message(qid)
        except (FileNotFoundError, CorruptQueueFile):
            continue
        if marker in msg:
            found.append(qid)
    return found


def assert_queue_complete(daemon):
    """Every file in queue/ is a complete, readable message."""
    for qid in daemon.queued():
        _, msg = read_queue_file(daemon.queue_path(qid))
        split_received(msg)


def test_I1_disconnect_mid_data_leaves_nothing(daemon):
    before = daemon.queued()
    marker = uuid.uuid4().hex.encode()
    c = Client(daemon.port)
    start_transaction(c)
    c.send(b"Subject: " + marker + b"\r\n\r\n" + b"partial line\r\n" * 5000)
    wait_for(lambda: daemon.incoming(), 3.0, what="the message file in incoming/")
    c.close()
    daemon.wait_incoming_empty()
    time.sleep(0.3)
    assert daemon.queued() == before
    daemon.assert_healthy()


def test_I2_dot_then_close_without_reading_is_queued(daemon):
    before = daemon.queued()
    marker = uuid.uuid4().hex.encode()
    body = b"Subject: " + marker + b"\r\n\r\nsent and gone\r\n"
    c = Client(daemon.port)
    start_transaction(c)
    c.send(body + b".\r\n")
    c.close()
    qids = wait_for(lambda: new_in_queue(daemon, before, marker), 5.0,
                    what="the message in queue/")
    assert len(qids) == 1
    assert daemon.body(qids[0]) == body
    daemon.wait_incoming_empty()


def test_I3_sigkill_during_data_leaves_nothing_after_restart(make_daemon):
    d = make_daemon()
    c = Client(d.port)
    start_transaction(c)
    c.send(b"Subject: killed\r\n\r\n" + b"x" * 200000 + b"\r\n")
    wait_for(lambda: d.incoming(), 3.0, what="the message file in incoming/")
    d.kill()
    c.close()
    assert d.incoming(), "the unfinished message should still be in incoming/"
    d.close_log()
    d.start()
    assert d.incoming() == []
    assert d.queued() == []
    d.assert_healthy()


def test_I4_sigkill_right_after_250_message_survives_restart(make_daemon):
    d = make_daemon()
    c = Client(d.port)
    c.expect("EHLO client.example", 250)
    qid = send_message(c, BODY)
    d.kill()
    c.close()
    d.close_log()
    d.start()
    assert qid in d.queued()
    assert d.body(qid) == BODY
    assert d.incoming() == []


@pytest.mark.parametrize("fault", ["crash-before-rename", "crash-after-rename",
                                   "crash-in-checkpoint"])
def test_I6_crash_point_injection(make_daemon, fault):
    d = make_daemon(env={"SLUICE_FAULT": fault})
    c = Client(d.port)
    start_transaction(c)
    c.send(BODY + b".\r\n")
    try:
        code, lines = c.reply()
    except Closed:
        code, lines = None, []
    c.close()
    if fault != "crash-in-checkpoint":
        assert code is None, "the client got a reply although the worker crashed: %r" % lines
    else:
        assert code == 250, lines
    wait_for(lambda: d.log_events("worker_crash"), 3.0, what="event=worker_crash")
    rc = d.stop()
    assert rc == 0, d.log()[-2000:]
    d.close_log()
    d.env.pop("SLUICE_FAULT")
    d.start()
    assert d.incoming() == []
    queued = d.queued()
    assert len(queued) <= 1, queued
    for qid in queued:
        assert d.body(qid) == BODY
    if code == 250:
        # Acknowledged before the crash: recovered at start (I4).
        assert queued == [queued_id(lines[-1])]
    d.assert_healthy()


def test_I8_checkpoint_eio_once_message_still_reaches_queue(make_daemon):
    d = make_daemon(env={"SLUICE_FAULT": "checkpoint-eio-once"})
    with Client(d.port) as c:
        c.expect("EHLO client.example", 250)
        qid = send_message(c, BODY)
    assert d.body(qid, timeout=5.0) == BODY
    d.wait_incoming_empty(5.0)


def test_I8_checkpoint_eio_acknowledged_message_survives_restart(make_daemon):
    d = make_daemon(env={"SLUICE_FAULT": "checkpoint-eio"})
    with Client(d.port) as c:
        c.expect("EHLO client.example", 250)
        qid = send_message(c, BODY)
        c.expect("NOOP", 250)
    rc = d.stop()
    assert rc == 0, d.log()[-2000:]
    d.close_log()
    d.env.pop("SLUICE_FAULT")
    d.start()
    assert d.body(qid) == BODY
    assert d.queued() == [qid]
    assert d.incoming() == []


@pytest.mark.parametrize("fault,code,text", [
    ("write-enospc", 452, "452 4.3.1 Error: insufficient system storage"),
    ("sync-eio", 451, "451 4.3.0 Error: queue file write error"),
])
def test_I7_I8_store_fault_is_a_4xx_and_leaves_nothing(make_daemon, fault, code, text):
    d = make_daemon(env={"SLUICE_FAULT": fault})
    with Client(d.port) as c:
        start_transaction(c)
        c.send(BODY + b".\r\n")
        got, lines = c.reply()
        assert (got, lines[-1]) == (code, text)
        # The transaction is over and the session goes on.
        c.expect("RCPT TO:<alice@mx.test>", 503, "need MAIL command")
        c.expect("NOOP", 250)
        c.expect("QUIT", 221)
    d.wait_incoming_empty()
    assert d.queued() == []
    assert d.proc.poll() is None


@pytest.fixture
def small_tmpfs(tmp_path):
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2M", "tmpfs", str(mnt)],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs: %s" % r.stderr.decode().strip())
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_I7_disk_full_452_nothing_partial_and_recovers(make_daemon, small_tmpfs):
    spool = str(small_tmpfs / "spool")
    d = make_daemon(spool=spool)
    filler = small_tmpfs / "filler"
    # Leave a little room, then send 300 KB messages until the disk is full.
    st = os.statvfs(str(small_tmpfs))
    free = st.f_bavail * st.f_frsize
    filler.write_bytes(b"\0" * max(0, free - 700 * 1024))
    body = b"Subject: fill\r\n\r\n" + (b"y" * 998 + b"\r\n") * 300
    accepted, refused = [], None
    with Client(d.port) as c:
        c.expect("EHLO client.example", 250)
        for _ in range(10):
            c.expect("MAIL FROM:<sender@example.org>", 250)
            c.expect("RCPT TO:<alice@mx.test>", 250)
            code, lines = c.cmd("DATA")
            if code != 354:
                refused = lines
                break
            c.send(body + b".\r\n")
            code, lines = c.reply()
            if code == 250:
                accepted.append(lines[-1].rsplit(" ", 1)[1])
                continue
            refused = lines
            break
        assert refused is not None, "the disk never filled up"
        assert refused[-1] in ("452 4.3.1 Error: insufficient system storage",
                               "451 4.3.0 Error: queue file write error"), refused
        d.wait_incoming_empty()
        assert_queue_complete(d)
        assert sorted(accepted) == d.queued()
        # Room again: the same session can queue a message.
        filler.unlink()
        c.expect("RSET", 250)
        qid = send_message(c, body)
        c.expect("QUIT", 221)
    assert d.body(qid) == body
    d.assert_healthy()
    for qid in d.queued():
        os.unlink(d.queue_path(qid))


def test_I9_inode_exhaustion_is_a_4xx_no_crash_and_recovers(make_daemon, tmp_path):
    """HOSTILE-INPUTS I9: the spool's filesystem has no inode left (a tmpfs with few). The
    message cannot be created or committed: 451 4.3.0 or 452 4.3.1, nothing half-queued, the
    daemon stays up, and the same session queues once inodes are free again."""
    mnt = tmp_path / "inodes"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64M,nr_inodes=400", "tmpfs",
                        str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs: %s" % r.stderr.decode().strip())
    try:
        d = make_daemon(spool=str(mnt / "spool"))
        filler = mnt / "filler"
        filler.mkdir()
        made = 0
        try:
            while True:
                (filler / str(made)).touch()
                made += 1
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
        assert made > 0
        with Client(d.port) as c:
            c.expect("EHLO client.example", 250)
            code, lines = c.cmd("MAIL FROM:<sender@example.org>")
            if code == 250:
                c.expect("RCPT TO:<alice@mx.test>", 250)
                code, lines = c.cmd("DATA")
                if code == 354:
                    c.send(BODY + b".\r\n")
                    code, lines = c.reply()
            assert lines[-1] in ("452 4.3.1 Error: insufficient system storage",
                                 "451 4.3.0 Error: queue file write error"), lines
            d.wait_incoming_empty()
            assert d.queued() == []
            assert d.proc.poll() is None
            assert any("No space left on device" in ln for ln in d.log_events("store_error"))
            shutil.rmtree(str(filler))
            c.expect("RSET", 250)
            qid = send_message(c, BODY)
            c.expect("QUIT", 221)
        assert d.body(qid) == BODY
        d.assert_healthy()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_I7_spool_min_free_refuses_at_mail(make_daemon, small_tmpfs):
    d = make_daemon("limits { spool-min-free 1M }", spool=str(small_tmpfs / "spool"))
    filler = small_tmpfs / "filler"
    st = os.statvfs(str(small_tmpfs))
    filler.write_bytes(b"\0" * max(0, st.f_bavail * st.f_frsize - 512 * 1024))
    with Client(d.port) as c:
        c.expect("EHLO client.example", 250)
        c.expect("MAIL FROM:<sender@example.org>", 452,
                 "452 4.3.1 Error: insufficient system storage")
        filler.unlink()
        # The free-space figure may be cached for a second.
        wait_for(lambda: c.cmd("MAIL FROM:<sender@example.org>")[0] == 250, 3.0,
                 interval=0.3, what="MAIL to be accepted once space is free")
        c.expect("RCPT TO:<alice@mx.test>", 250)
        c.expect("DATA", 354)
        c.send(BODY + b".\r\n")
        code, lines = c.reply()
        assert code == 250, lines
        c.expect("QUIT", 221)
    qid = queued_id(lines[-1])
    assert d.body(qid) == BODY
    os.unlink(d.queue_path(qid))


def test_I11_second_instance_on_same_spool_refuses(make_daemon):
    first = make_daemon(sub="first")
    second = make_daemon(sub="second", start=False, spool=first.spool)
    logf = open(second.log_path, "wb")
    p = subprocess.Popen([SLUICED, "-c", second.conf], stdout=logf, stderr=logf,
                         env=second.env)
    try:
        rc = p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        pytest.fail("a second sluiced on the same spool kept running")
    finally:
        logf.close()
    assert rc != 0
    assert "spool" in second.log(), second.log()
    first.assert_healthy()


def worker_files(d, pid):
    """What worker pid left in the spool: its incoming/<pid>/ and its wal/<pid>-* segments."""
    left = [os.path.join("incoming", str(pid))] if os.path.lexists(
        os.path.join(d.spool, "incoming", str(pid))) else []
    return left + [os.path.join("wal", n) for n in d.listdir("wal")
                   if n.startswith("%d-" % pid)]


@pytest.mark.parametrize("fault", [None, "checkpoint-eio"])
def test_I4_worker_sigkill_after_250_recovered_while_master_runs(make_daemon, fault):
    """A worker killed right after its 250s while the master keeps running: the master puts
    every acknowledged message in queue/ at once (not at its next start), drops the message
    the worker was still receiving, and the restarted worker serves new mail. With
    checkpoint-eio no checkpoint can have moved anything: the messages were only in the
    dead worker's log."""
    d = make_daemon(env={"SLUICE_FAULT": fault} if fault else None)
    [worker] = d.wait_workers(1)
    bodies = {}
    receiving = Client(d.port)
    start_transaction(receiving)
    receiving.send(b"Subject: never finished\r\n\r\n" + b"z" * 5000 + b"\r\n")
    with Client(d.port) as c:
        c.expect("EHLO client.example", 250)
        for i in range(5):
            body = b"Subject: acked %d\r\n\r\n" % i + BODY
            bodies[send_message(c, body)] = body
        wait_for(lambda: len(d.incoming()) >= 1, 3.0, what="the unfinished message's file")
        if fault:
            assert not set(bodies) & set(d.queued()), "a checkpoint ran despite the fault"
        os.kill(worker, signal.SIGKILL)
    receiving.close()
    wait_for(lambda: set(bodies) <= set(d.queued()), 3.0,
             what="the acknowledged messages in queue/ while the master runs")
    assert d.proc.poll() is None, d.log()[-2000:]
    for qid, body in bodies.items():
        assert d.body(qid) == body
    assert sorted(d.queued()) == sorted(bodies), "the unfinished message was delivered"
    # Without a fault the worker's own checkpoints may have moved every message before the
    # kill, so queue/ can be complete before the master has reaped the worker: wait for it.
    recovered = wait_for(lambda: [ln for ln in d.log_events("worker_recovered")
                                  if "pid=%d " % worker in ln], 5.0,
                         what="the master's recovery of the killed worker")
    assert len(recovered) == 1, d.log()[-2000:]
    if fault:
        assert "replayed=5 " in recovered[0], recovered
    assert worker_files(d, worker) == []
    # The restarted worker serves new mail.
    [new] = d.wait_workers(1, timeout=5.0, exclude=[worker])
    with Client(d.port) as c:
        c.expect("EHLO client.example", 250)
        qid = send_message(c, BODY)
        c.expect("QUIT", 221)
    if fault:
        # Its checkpoints fail too: the message waits in its log until it exits 0 at stop,
        # and the master then finds its segment and recovers it.
        rc = d.stop()
        assert rc == 0, d.log()[-2000:]
        assert [ln for ln in d.log_events("worker_recovered") if "pid=%d " % new in ln]
    assert d.body(qid) == BODY
    assert worker_files(d, worker) == []
