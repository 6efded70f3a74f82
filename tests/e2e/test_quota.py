"""Mailbox quotas end to end (issue #4): `sluice user add --quota` and `sluice user quota` set
a mailbox's limit in the SQLite directory while the daemon runs; the queue manager passes it
to the Maildir agent, which keeps the Maildir++ "maildirsize" file (the one Courier and
Dovecot read) and defers a message that does not fit with RFC 3463 4.2.2 "mailbox full".
Nothing is lost: the queue retries, and the message is delivered once the quota allows it;
one larger than the whole quota bounces at once (5.2.3).
Delivered files are named with ",S=<octets>"."""

import os
import re

from e2e_helpers import Client, send_message, wait_for

ALICE = "alice@mx.test"
FAST = "retry-min 1s\nretry-max 1s"


def quota_daemon(make_daemon, quota):
    """A running daemon with a SQLite directory, the domain mx.test and alice@mx.test added
    with the given --quota."""
    d = make_daemon(sqlite=True, delivery=FAST)
    d.cli("domain", "add", "mx.test")
    d.cli("user", "add", ALICE, "--stdin", "--quota", quota, stdin="alice's password\n")
    return d


def send(d, rcpt, subject, size, sender="sender@example.org"):
    """One message of about size octets of body to rcpt; its queue id."""
    body = ("Subject: %s\r\n\r\n" % subject).encode() + (b"x" * 70 + b"\r\n") * (size // 72)
    with Client(d.port) as c:
        c.expect("EHLO client.test", 250)
        qid = send_message(c, body, sender=sender, rcpts=(rcpt,))
        c.expect("QUIT", 221)
    return qid


def maildirsize(d):
    with open(os.path.join(d.maildir(ALICE), "maildirsize")) as f:
        return f.read()


def new_files(d):
    new = os.path.join(d.maildir(ALICE), "new")
    return {n: os.path.getsize(os.path.join(new, n)) for n in os.listdir(new)}


def wait_delivered(d, n, what):
    return wait_for(lambda: (lambda f: f if len(f) >= n else None)(d.delivered(ALICE)), 15,
                    what=what)


def deferred_full(d, qid):
    """The log's deferrals of qid as 4.2.2 "mailbox full" (the log escapes the space)."""
    return [ln for ln in d.log_events("deferred")
            if "id=%s " % qid in ln and "status=4.2.2" in ln
            and 'reason="mailbox\\x20full"' in ln]


def test_quota_full_defers_4_2_2_then_delivers_when_raised(make_daemon):
    d = quota_daemon(make_daemon, "2K")
    send(d, ALICE, "small", 1200)
    wait_delivered(d, 1, "the small message")
    [(name, size)] = new_files(d).items()
    assert name.endswith(",S=%d" % size), name
    assert maildirsize(d) == "2048S\n0 0\n%d 1\n" % size

    # Through a subaddress: still alice's mailbox and alice's quota. It would fit an empty
    # mailbox, not this one.
    qid = send(d, "alice+big@mx.test", "big", 1000)
    wait_for(lambda: len(deferred_full(d, qid)) >= 2, 15,
             what="two deferrals with 4.2.2 mailbox full")
    assert len(d.delivered(ALICE)) == 1
    assert not os.listdir(os.path.join(d.maildir(ALICE), "tmp"))
    assert maildirsize(d) == "2048S\n0 0\n%d 1\n" % size
    assert d.queued(), "the deferred message left the queue"

    # A bigger quota: the changed limit makes the agent recalculate maildirsize.
    d.cli("user", "quota", ALICE, "1M")
    got = wait_delivered(d, 2, "the big message once the quota is raised")
    assert b"Subject: big" in got[1]
    sizes = new_files(d)
    big = [s for n, s in sizes.items() if s != size][0]
    assert maildirsize(d) == "1048576S\n%d 1\n%d 1\n" % (size, big)
    assert all(re.search(r",S=%d$" % s, n) for n, s in sizes.items()), sizes
    assert [ln for ln in d.log_events("delivered") if "status=2.0.0" in ln]


def test_quota_none_lifts_it_and_keeps_counting(make_daemon):
    d = quota_daemon(make_daemon, "1K")
    send(d, ALICE, "first", 600)
    wait_delivered(d, 1, "the first message")
    qid = send(d, ALICE, "second", 600)
    wait_for(lambda: deferred_full(d, qid), 15, what="a deferral with 4.2.2")
    assert len(d.delivered(ALICE)) == 1
    before = maildirsize(d)
    assert re.fullmatch(r"1024S\n0 0\n\d+ 1\n", before), before
    d.cli("user", "quota", ALICE, "none")
    wait_delivered(d, 2, "the message once the quota is removed")
    # With no quota the file is not read (it said full), but it still counts what arrives,
    # so a quota set again starts from the truth.
    got = maildirsize(d)
    assert got.startswith(before) and re.fullmatch(r"\d+ 1\n", got[len(before):]), got


def test_quota_of_another_mailbox_is_its_own(make_daemon):
    d = quota_daemon(make_daemon, "1K")
    d.cli("user", "add", "bob@mx.test", "--stdin", stdin="bob's password\n")
    send(d, "bob@mx.test", "for bob", 3000)
    wait_for(lambda: d.delivered("bob@mx.test"), 15, what="bob's message, no quota")
    assert not os.path.exists(os.path.join(d.maildir("bob@mx.test"), "maildirsize"))


def test_rfc3463_x_2_3_larger_than_the_whole_quota_bounces_at_once(make_daemon):
    """A message no deletion could make room for bounces at its first attempt (5.2.3), not
    after the queue lifetime; nothing reaches the Maildir."""
    d = quota_daemon(make_daemon, "1K")
    d.cli("user", "add", "bob@mx.test", "--stdin", stdin="bob's password\n")
    qid = send(d, ALICE, "huge", 3000, sender="bob@mx.test")
    [dsn] = wait_for(lambda: d.delivered("bob@mx.test"), 15, what="the bounce to bob")
    assert b"Status: 5.2.3" in dsn and b"Final-Recipient: rfc822; alice@mx.test" in dsn, dsn
    assert b"larger than the mailbox quota" in dsn
    assert d.delivered(ALICE) == []
    assert not deferred_full(d, qid)
    wait_for(lambda: not d.queued(), 10, what="an empty queue")
