"""Directory routing carried through to delivery: relocated addresses (RFC 5321 §3.4: 251
forwards and the message really reaches the new mailbox, 551 refuses and nothing is queued)
and the alias nesting limit of the queue manager (doc/sluice.conf.md "## domain NAME":
"nesting stops at 10 levels (5.4.6)"; src/queue/sched_priv.h SCHED_ALIAS_DEPTH), with the
SQLite directory changed through the `sluice` command line while the daemon runs, and local
delivery into Maildirs under the test directory."""

import os
import time

from e2e_helpers import Client, send_message, wait_for

FAST = "retry-min 1s\nretry-max 2s\nrescan 1s"
ALICE = "alice@mx.test"
BOB = "bob@mx.test"


def dir_daemon(make_daemon):
    """A delivering daemon with a SQLite directory: domain mx.test, mailboxes alice and bob."""
    d = make_daemon(sqlite=True, delivery=FAST)
    d.cli("domain", "add", "mx.test")
    d.cli("user", "add", ALICE, "--name", "Alice Example", "--stdin", stdin="alice pw\n")
    d.cli("user", "add", BOB, "--stdin", stdin="bob pw\n")
    return d


def wait_delivered(d, addr, n=1, timeout=15.0):
    return wait_for(lambda: (lambda f: f if len(f) >= n else None)(d.delivered(addr)), timeout,
                    what="%d message(s) in %s's Maildir" % (n, addr))


def wait_queue_empty(d, timeout=15.0):
    wait_for(lambda: not d.queued() and not d.incoming(), timeout,
             what="queue/ and incoming/ to be empty")


def subjects(msgs):
    out = []
    for m in msgs:
        head = m.split(b"\r\n\r\n", 1)[0]
        out += [ln for ln in head.split(b"\r\n") if ln.startswith(b"Subject: ")]
    return sorted(out)


# ---- RFC 5321 §3.4: relocated users -------------------------------------------------------

def test_rfc5321_s3_4_251_forward_is_delivered_to_the_new_mailbox_551_queues_nothing(
        make_daemon):
    """`sluice relocated add OLD NEW --forward` with NEW a local mailbox: RCPT is
    `251 2.1.5 User not local; will forward to <NEW>` and the message lands in NEW's Maildir,
    never in one named after OLD, even when OLD still has a mailbox of its own (relocated is
    looked up first). `--refuse`: `551 5.1.6 User not local; please try <NEW>`, DATA has no
    valid recipient, nothing is queued and nothing is delivered or bounced."""
    d = dir_daemon(make_daemon)
    d.cli("user", "add", "old@mx.test", "--stdin", stdin="old pw\n")
    d.cli("relocated", "add", "old@mx.test", BOB, "--forward")
    d.cli("relocated", "add", "moved@mx.test", BOB, "--forward")
    d.cli("relocated", "add", "gone@mx.test", ALICE, "--refuse")
    with Client(d.port) as c:
        c.expect("EHLO client.test", 250)
        for rcpt in ["moved@mx.test", "old@mx.test"]:
            c.expect("MAIL FROM:<sender@example.org>", 250)
            lines = c.expect("RCPT TO:<%s>" % rcpt, 251)
            assert lines == ["251 2.1.5 User not local; will forward to <bob@mx.test>"], lines
            c.expect("DATA", 354)
            c.send(("Subject: to %s\r\n\r\nrelocated\r\n.\r\n" % rcpt).encode())
            code, lines = c.reply()
            assert code == 250, (rcpt, lines)
        # Refused: 551 names the new address, and the transaction has no recipient.
        c.expect("MAIL FROM:<alice@mx.test>", 250)
        lines = c.expect("RCPT TO:<gone@mx.test>", 551)
        assert lines == ["551 5.1.6 User not local; please try <alice@mx.test>"], lines
        lines = c.expect("DATA", 554)
        assert lines == ["554 5.5.1 Error: no valid recipients"], lines
        c.expect("RSET", 250)
        # A marker after it: once it is delivered, anything the refusal had queued would be.
        send_message(c, b"Subject: marker\r\n\r\nafter the refusal\r\n", sender="bob@mx.test",
                     rcpts=(ALICE,))
        c.expect("QUIT", 221)
    wait_delivered(d, BOB, 2)
    wait_delivered(d, ALICE, 1)
    wait_queue_empty(d)
    time.sleep(0.3)
    bob = d.delivered(BOB)
    assert subjects(bob) == [b"Subject: to moved@mx.test", b"Subject: to old@mx.test"], bob
    for m in bob:
        assert m.startswith(b"Return-Path: <sender@example.org>\r\n"), m[:200]
        assert b"\r\nDelivered-To: bob@mx.test\r\n" in m.split(b"\r\n\r\n", 1)[0], m[:300]
    # Nothing for the old addresses, and nothing but the marker for alice: no copy of the
    # refused transaction, no bounce to its sender.
    assert not os.path.exists(d.maildir("old@mx.test"))
    assert not os.path.exists(d.maildir("moved@mx.test"))
    assert not os.path.exists(d.maildir("gone@mx.test"))
    assert subjects(d.delivered(ALICE)) == [b"Subject: marker"]
    # The queue manager expanded each relocated address like an alias to its new address.
    expanded = d.log_events("expanded")
    assert len(expanded) == 2 and all("targets=1" in e for e in expanded), expanded
    assert sorted(e.split("to=")[1].split()[0] for e in expanded) == [
        "<moved@mx.test>", "<old@mx.test>"], expanded
    # Only the two forwarded messages and the marker were ever stored; nothing bounced.
    assert len(d.log_events("queued")) == 3, d.log_events("queued")
    assert not d.log_events("bounce") and not d.log_events("failed")


# ---- alias nesting limit ------------------------------------------------------------------

def alias_chain(d, prefix, n, target):
    """prefix1 -> prefix2 -> ... -> prefixN -> target; returns prefix1's address."""
    names = ["%s%d@mx.test" % (prefix, i) for i in range(1, n + 1)]
    for a, b in zip(names, names[1:] + [target]):
        d.cli("alias", "add", a, b)
    return names[0]


def test_k4_alias_nesting_past_10_levels_bounces_5_4_6_within_it_delivers(make_daemon):
    """HOSTILE-INPUTS K4 (no infinite fan-out; bounce 5.4.6) and doc/sluice.conf.md "nesting
    stops at 10 levels (5.4.6)". The envelope recipient is level 0 and each alias expansion
    one level more; a recipient reached through 10 aliases (level SCHED_ALIAS_DEPTH = 10) is
    not routed but fails 5.4.6 "alias nesting too deep" (RFC 3463 X.4.6: routing loop
    detected), and the sender, a local mailbox, gets an RFC 3464 report. Through 9 aliases
    the same mailbox is reached and the message delivered. Both chains are 250 at RCPT
    (expansion is the queue manager's)."""
    d = dir_daemon(make_daemon)
    within = alias_chain(d, "in", 9, ALICE)
    deep = alias_chain(d, "deep", 10, ALICE)
    with Client(d.port) as c:
        c.expect("EHLO client.test", 250)
        send_message(c, b"Subject: nine levels\r\n\r\nwithin the limit\r\n", sender=BOB,
                     rcpts=(within,))
        deep_id = send_message(c, b"Subject: ten levels\r\n\r\ntoo deep\r\n", sender=BOB,
                               rcpts=(deep,))
        c.expect("QUIT", 221)
    [dsn] = wait_delivered(d, BOB, 1)
    wait_delivered(d, ALICE, 1)
    wait_queue_empty(d)
    time.sleep(0.3)
    alice = d.delivered(ALICE)
    assert subjects(alice) == [b"Subject: nine levels"], alice
    assert b"Delivered-To: alice@mx.test\r\n" in alice[0]
    assert len(d.delivered(BOB)) == 1
    assert dsn.startswith(b"Return-Path: <>\r\n"), dsn[:200]
    assert b"Content-Type: multipart/report; report-type=delivery-status" in dsn
    assert b"Action: failed" in dsn and b"Status: 5.4.6" in dsn
    assert b"nesting too deep" in dsn
    assert b"Final-Recipient: rfc822; alice@mx.test" in dsn
    assert ("Message-ID: <%s.bounce." % deep_id).encode() in dsn
    assert b"Subject: ten levels" in dsn  # the original attached (RET default: full)
    assert b"nine levels" not in dsn
    # 9 + 10 expansions: the deep chain was followed to its tenth alias before alice, at
    # level 10, failed; one failure, two deliveries (alice's copy, bob's report).
    assert len(d.log_events("expanded")) == 19, d.log_events("expanded")
    [failed] = d.log_events("failed")
    assert "id=%s " % deep_id in failed and "to=<alice@mx.test>" in failed, failed
    assert "status=5.4.6" in failed, failed
    assert len(d.log_events("delivered")) == 2, d.log_events("delivered")
    # No Maildir was made for any alias of either chain.
    for prefix, n in (("in", 9), ("deep", 10)):
        for i in range(1, n + 1):
            assert not os.path.exists(d.maildir("%s%d@mx.test" % (prefix, i)))
