"""The queue tools (`sluice queue ...`, mailq, `sluice sendmail`/sendmail) against the control
socket protocol of src/queue/ctl.h.

These tests run today against a FAKE queue manager: a Python unix-socket server in the test
that speaks the protocol (one request per connection; "msg"/"rcpt" lines then "ok" for list
and show; "ok [TEXT]" or "err CODE TEXT" for the rest; submit = "from", "rcpt"..., "data N",
N octets, then "ok QUEUEID" or "err ..."). They check the requests on the wire, the output
formats and the exit statuses. When the real queue manager answers on <spool>/public/control,
the same assertions about the client side hold; the daemon-backed variants belong in a test
that starts sluiced (the `daemon` fixture).

Wire words (every value that may hold a space is xtext, RFC 3461 §4; an empty optional last
field is left out):
    list | show ID | flush [ID] | hold ID | release ID | delete ID | submit
    msg ID ARRIVAL SIZE held|queued [SENDER]
    rcpt ADDR pending|deferred|delivered|failed ATTEMPTS NEXT_TRY [REASON]
    ok [TEXT] | err CODE [TEXT]
    from [SENDER] | rcpt ADDR | data N
"""

import json
import os
import re
import socket
import subprocess
import tempfile
import threading

import pytest

from e2e_helpers import SLUICE

QID = "0ABCDEFGHIJ0123456XY"
QID2 = "0ABCDEFGHIK0123456XY"
T0 = 1700000000  # Tue Nov 14 22:13:20 2023 UTC


def xtext(s):
    b = s.encode() if isinstance(s, str) else s
    return "".join(chr(c) if 0x21 <= c <= 0x7E and c not in (0x2B, 0x3D) else "+%02X" % c
                   for c in b)


def unxtext(s):
    return re.sub(r"\+([0-9A-F]{2})", lambda m: chr(int(m.group(1), 16)), s)


class FakeQueueManager:
    """Accepts connections on <spool>/public/control; records each request (its lines and,
    for submit, the message) and answers with reply(request) -> bytes."""

    def __init__(self, spool, reply):
        self.spool = spool
        self.reply = reply
        self.requests = []
        pub = os.path.join(spool, "public")
        os.makedirs(pub, exist_ok=True)
        self.path = os.path.join(pub, "control")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if len(self.path) < 100:
            self.sock.bind(self.path)
        else:
            dfd = os.open(pub, os.O_PATH | os.O_DIRECTORY)
            self.sock.bind("/proc/self/fd/%d/control" % dfd)
            os.close(dfd)
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                f = conn.makefile("rb")
                req = {"lines": [], "data": None}
                first = f.readline().decode().rstrip("\n")
                req["lines"].append(first)
                if first == "submit":
                    while True:
                        line = f.readline().decode().rstrip("\n")
                        req["lines"].append(line)
                        if line.startswith("data ") or not line:
                            break
                    if line.startswith("data "):
                        req["data"] = f.read(int(line[5:]))
                self.requests.append(req)
                try:
                    conn.sendall(self.reply(req))
                except OSError:
                    pass
                f.close()  # the makefile holds the socket open otherwise

    def close(self):
        self.stop = True
        self.sock.close()
        self.thread.join(5)


@pytest.fixture
def env(tmp_path):
    d = tempfile.mkdtemp(prefix="qc", dir="/tmp")
    spool = os.path.join(d, "spool")
    conf = os.path.join(d, "sluice.conf")
    with open(conf, "w") as f:
        f.write("hostname mx.test\nspool %s\nlisten smtp { address 127.0.0.1:2525 }\n"
                "domain mx.test\nlimits { message-size 2K }\n" % spool)
    e = {"dir": d, "spool": spool, "conf": conf, "fake": None}
    yield e
    if e["fake"]:
        e["fake"].close()
    subprocess.run(["rm", "-rf", d])


def serve(env, reply):
    if isinstance(reply, (bytes, str)):
        data = reply.encode() if isinstance(reply, str) else reply
        reply = lambda req: data  # noqa: E731
    env["fake"] = FakeQueueManager(env["spool"], reply)
    return env["fake"]


def run(env, *args, stdin=b"", prog=None):
    cmd = [prog or SLUICE, "-c", env["conf"]] + list(args)
    e = dict(os.environ, TZ="UTC")
    r = subprocess.run(cmd, input=stdin, capture_output=True, timeout=60, env=e)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def alias(name):
    """The sluice binary under another name (the build makes these links too)."""
    d = tempfile.mkdtemp(prefix="qa", dir="/tmp")
    p = os.path.join(d, name)
    os.symlink(os.path.abspath(SLUICE), p)
    return p


LISTING = (
    "msg %s %d 1500 queued %s\n" % (QID, T0, xtext("alice@example.org"))
    + "rcpt bob@example.net deferred 3 %d %s\n" % (T0 + 300, xtext("4.4.1 connect to mx: refused"))
    + "rcpt carol@example.net pending 0 0\n"
    + "rcpt done@example.net delivered 1 0\n"
    + "msg %s %d 600 held\n" % (QID2, T0 + 60)
    + "rcpt %s failed 1 0 %s\n" % (xtext("dave+x@example.com"), xtext("5.1.1 no \"such\" user"))
    + "rcpt erin@example.com pending 0 0\n"
    + "ok\n")


# ---- queue list / mailq --------------------------------------------------------------------

def test_list_sends_list_and_prints_postfix_listing(env):
    fake = serve(env, LISTING)
    rc, out, err = run(env, "queue", "list")
    assert rc == 0, err
    assert fake.requests[0]["lines"] == ["list"]
    ind = " " * 52
    assert out.splitlines() == [
        "-Queue ID-            --Size-- ----Arrival Time---- -Sender/Recipient-------",
        "%s      1500 Tue Nov 14 22:13:20  alice@example.org" % QID,
        ind + "(4.4.1 connect to mx: refused)",
        ind + "bob@example.net",
        ind + "carol@example.net",
        "",
        "%s!      600 Tue Nov 14 22:14:20  MAILER-DAEMON" % QID2,
        ind + "erin@example.com",
        "",
        "-- 3 Kbytes in 2 Requests.",
    ]


def test_mailq_names_all_print_the_same_listing(env):
    serve(env, LISTING)
    rc, want, _ = run(env, "queue", "list")
    assert rc == 0
    rc, out, err = run(env, "mailq")
    assert (rc, out) == (0, want), err
    mailq = alias("mailq")
    r = subprocess.run([mailq, "-C", env["conf"]], capture_output=True, timeout=30,
                       env=dict(os.environ, TZ="UTC"))
    assert (r.returncode, r.stdout.decode()) == (0, want), r.stderr
    sendmail = alias("sendmail")
    r = subprocess.run([sendmail, "-C", env["conf"], "-bp"], capture_output=True, timeout=30,
                       env=dict(os.environ, TZ="UTC"))
    assert (r.returncode, r.stdout.decode()) == (0, want), r.stderr
    for d in (os.path.dirname(mailq), os.path.dirname(sendmail)):
        subprocess.run(["rm", "-rf", d])


def test_mailq_empty_and_one_request(env):
    fake = serve(env, "ok\n")
    rc, out, _ = run(env, "queue", "list")
    assert (rc, out) == (0, "Mail queue is empty\n")
    fake.reply = lambda req: ("msg %s %d 1 queued a@b\nrcpt c@d pending 0 0\nok\n"
                              % (QID, T0)).encode()
    rc, out, _ = run(env, "queue", "list")
    assert rc == 0 and out.endswith("\n-- 1 Kbytes in 1 Request.\n"), out


def test_list_json(env):
    serve(env, LISTING)
    rc, out, err = run(env, "queue", "list", "--json")
    assert rc == 0, err
    got = json.loads(out)
    assert [m["id"] for m in got] == [QID, QID2]
    assert got[0] == {
        "id": QID, "arrival": T0, "size": 1500, "held": False, "sender": "alice@example.org",
        "recipients": [
            {"address": "bob@example.net", "state": "deferred", "attempts": 3,
             "next_try": T0 + 300, "reason": "4.4.1 connect to mx: refused"},
            {"address": "carol@example.net", "state": "pending", "attempts": 0, "next_try": 0,
             "reason": ""},
            {"address": "done@example.net", "state": "delivered", "attempts": 1, "next_try": 0,
             "reason": ""},
        ]}
    assert got[1]["held"] is True and got[1]["sender"] == ""
    assert got[1]["recipients"][0]["address"] == "dave+x@example.com"
    assert got[1]["recipients"][0]["reason"] == "5.1.1 no \"such\" user"


def test_list_json_empty_and_escapes(env):
    fake = serve(env, "ok\n")
    rc, out, _ = run(env, "queue", "list", "--json")
    assert (rc, json.loads(out)) == (0, [])
    # Quotes, backslashes, UTF-8 and an octet that is not UTF-8 still give valid JSON.
    sender = "\"q\\\"@ex\xe9.org".encode("utf-8")
    fake.reply = lambda req: ("msg %s %d 1 queued %s\nok\n"
                              % (QID, T0, xtext(sender + b"\xff"))).encode()
    rc, out, _ = run(env, "queue", "list", "--json")
    assert rc == 0
    assert json.loads(out)[0]["sender"] == "\"q\\\"@ex\xe9.org\ufffd"


# ---- show ----------------------------------------------------------------------------------

def test_show_sends_id_and_prints_detail(env):
    fake = serve(env, LISTING.split("msg %s" % QID2)[0] + "ok\n")
    rc, out, err = run(env, "queue", "show", QID)
    assert rc == 0, err
    assert fake.requests[0]["lines"] == ["show " + QID]
    assert "Queue ID:  %s\n" % QID in out
    assert "Sender:    alice@example.org\n" in out
    assert "Recipient: bob@example.net\n  State:   deferred, 3 attempts\n" in out
    assert "  Reason:  4.4.1 connect to mx: refused\n" in out
    assert "Recipient: done@example.net\n  State:   delivered, 1 attempt\n" in out
    rc, out, err = run(env, "queue", "show", QID, "--json")
    assert rc == 0, err
    m = json.loads(out)
    assert m["id"] == QID and len(m["recipients"]) == 3


def test_show_unknown_id_is_server_err(env):
    serve(env, "err 5.1.0 %s\n" % xtext("no such message"))
    rc, out, err = run(env, "queue", "show", QID)
    assert (rc, out) == (1, "")
    assert "5.1.0 no such message" in err


# ---- actions -------------------------------------------------------------------------------

@pytest.mark.parametrize("args,wire", [
    (["flush"], "flush"),
    (["flush", QID], "flush " + QID),
    (["hold", QID], "hold " + QID),
    (["release", QID], "release " + QID),
    (["delete", QID], "delete " + QID),
])
def test_action_requests_on_the_wire(env, args, wire):
    fake = serve(env, "ok %s\n" % xtext("done: 1 message"))
    rc, out, err = run(env, "queue", *args)
    assert rc == 0, err
    assert fake.requests[0]["lines"] == [wire]
    assert out == "done: 1 message\n"


@pytest.mark.parametrize("code,text", [("4.3.0", "queue manager busy"), ("5.1.0", "no such")])
def test_action_err_exit_1(env, code, text):
    serve(env, "err %s %s\n" % (code, xtext(text)))
    rc, _, err = run(env, "queue", "hold", QID)
    assert rc == 1
    assert "%s %s" % (code, text) in err


@pytest.mark.parametrize("args", [
    [], ["purge"], ["show"], ["hold"], ["delete", "../../etc/passwd"], ["show", QID.lower()],
    ["list", QID], ["flush", QID, QID], ["hold", QID, "--json"], ["list", "--json", "--json"],
])
def test_usage_errors_exit_2_send_nothing(env, args):
    fake = serve(env, "ok\n")
    rc, _, err = run(env, "queue", *args)
    assert rc == 2, err
    assert fake.requests == []


def test_no_socket_exit_75(env):
    rc, _, err = run(env, "queue", "list")
    assert rc == 75
    assert "public/control" in err
    rc, _, _ = run(env, "sendmail", "a@b", stdin=b"hi\n")
    assert rc == 75


@pytest.mark.parametrize("reply", [
    b"",                                   # closed without an answer
    b"ok",                                 # no LF
    b"msg %s 1 2 queued\nok\n" % QID.encode(),  # a listing for an action
    b"ok a+0D+0Ab\n",                      # B4: CR/LF smuggled through xtext
    b"garbage\n",
    b"rcpt a@b pending 0 0\nok\n",         # rcpt before any msg
    b"ok " + b"a" * 5000 + b"\n",          # A1: over CTL_LINE_MAX
])
def test_broken_server_exit_75(env, reply):
    serve(env, reply)
    rc, out, err = run(env, "queue", "flush")
    assert rc == 75, (out, err)
    assert "\r" not in out


def test_long_spool_path_reached(env):
    """A socket path longer than sun_path is reached through the directory."""
    long_spool = os.path.join(env["dir"], "s" * 60, "t" * 60)
    with open(env["conf"]) as f:
        text = f.read().replace("spool %s" % env["spool"], "spool %s" % long_spool)
    with open(env["conf"], "w") as f:
        f.write(text)
    env["spool"] = long_spool
    fake = serve(env, "ok\n")
    assert len(fake.path) > 108
    rc, out, err = run(env, "queue", "list")
    assert (rc, out) == (0, "Mail queue is empty\n"), err


# ---- sendmail ------------------------------------------------------------------------------

def ok_submit(req):
    return ("ok %s\n" % QID).encode()


def submitted(fake):
    req = fake.requests[-1]
    lines = req["lines"]
    assert lines[0] == "submit"
    assert lines[1] == "from" or lines[1].startswith("from ")
    sender = unxtext(lines[1][5:])
    rcpts = [unxtext(l[5:]) for l in lines[2:-1]]
    assert all(l.startswith("rcpt ") for l in lines[2:-1])
    assert lines[-1] == "data %d" % len(req["data"])
    return sender, rcpts, req["data"]


def header_names(msg):
    head = msg.split(b"\r\n\r\n", 1)[0].decode()
    return [l.split(":", 1)[0] for l in head.split("\r\n") if l and l[0] not in " \t"]


def test_sendmail_plain_adds_headers_and_crlf(env):
    fake = serve(env, ok_submit)
    rc, out, err = run(env, "sendmail", "bob@mx.test", stdin=b"Subject: hi\n\nline 1\nline 2\n")
    assert (rc, out) == (0, ""), err
    sender, rcpts, msg = submitted(fake)
    assert sender.endswith("@mx.test")
    assert rcpts == ["bob@mx.test"]
    assert header_names(msg) == ["From", "Date", "Message-ID", "Subject"]
    assert msg.startswith(b"From: %s\r\n" % sender.encode())
    assert re.search(rb"\r\nMessage-ID: <[0-9A-Z]{20}@mx\.test>\r\n", msg)
    assert msg.endswith(b"Subject: hi\r\n\r\nline 1\r\nline 2\r\n")
    assert b"\n" not in msg.replace(b"\r\n", b"")


def test_sendmail_t_union_and_bcc_removed(env):
    fake = serve(env, ok_submit)
    message = (b"From: Me <me@mx.test>\nTo: Bob <bob@mx.test>, carol@mx.test\n"
               b"Cc: dave@mx.test\nBcc: secret@mx.test,\n  hidden@mx.test\nSubject: t\n\n"
               b"To: notme@mx.test\n")
    rc, _, err = run(env, "sendmail", "-t", "-i", "extra@mx.test", "bob@mx.test", stdin=message)
    assert rc == 0, err
    _, rcpts, msg = submitted(fake)
    assert rcpts == ["extra@mx.test", "bob@mx.test", "carol@mx.test", "dave@mx.test",
                     "secret@mx.test", "hidden@mx.test"]
    assert b"secret" not in msg and b"hidden" not in msg and b"Bcc" not in msg
    assert header_names(msg) == ["Date", "Message-ID", "From", "To", "Cc", "Subject"]


def test_sendmail_f_and_F(env):
    fake = serve(env, ok_submit)
    rc, _, err = run(env, "sendmail", "-f", "robot@example.org", "-F", "Cron \"Daemon\"",
                     "bob@mx.test", stdin=b"Subject: x\n\nbody\n")
    assert rc == 0, err
    sender, _, msg = submitted(fake)
    assert sender == "robot@example.org"
    assert msg.startswith(b"From: \"Cron \\\"Daemon\\\"\" <robot@example.org>\r\n")
    rc, _, err = run(env, "sendmail", "-f<>", "bob@mx.test", stdin=b"x\n")
    assert rc == 0, err
    assert fake.requests[-1]["lines"][1] == "from"


def test_sendmail_existing_headers_kept(env):
    fake = serve(env, ok_submit)
    message = (b"From: a@b\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <x@y>\r\n"
               b"\r\nbody\r\n")
    rc, _, err = run(env, "sendmail", "-oi", "bob@mx.test", stdin=message)
    assert rc == 0, err
    assert submitted(fake)[2] == message


@pytest.mark.parametrize("flags,body_has_rest", [([], False), (["-i"], True), (["-oi"], True)])
def test_sendmail_lone_dot(env, flags, body_has_rest):
    fake = serve(env, ok_submit)
    rc, _, err = run(env, "sendmail", *flags, "bob@mx.test",
                     stdin=b"Subject: d\n\nbefore\n..stuffed\n.\nafter\n")
    assert rc == 0, err
    msg = submitted(fake)[2]
    assert msg.count(b"\r\nbefore\r\n..stuffed\r\n") == 1
    assert (b"after" in msg) == body_has_rest
    assert (b"\r\n.\r\n" in msg) == body_has_rest


@pytest.mark.parametrize("code,status", [("4.3.0", 75), ("4.2.2", 75), ("5.1.1", 69),
                                         ("5.7.1", 69)])
def test_sendmail_err_exit_codes(env, code, status):
    serve(env, "err %s %s\n" % (code, xtext("refused by the fake")))
    rc, _, err = run(env, "sendmail", "bob@mx.test", stdin=b"x\n")
    assert rc == status
    assert "%s refused by the fake" % code in err


def test_sendmail_C8_too_big_refused_nothing_sent(env):
    fake = serve(env, ok_submit)
    rc, _, err = run(env, "sendmail", "bob@mx.test", stdin=b"x" * 3000 + b"\n")
    assert rc == 69
    assert "5.3.4" in err
    # Under the limit raw, over it once headers are added: also refused.
    rc, _, err = run(env, "sendmail", "bob@mx.test", stdin=b"y" * 1990 + b"\n")
    assert rc == 69
    assert fake.requests == []


@pytest.mark.parametrize("args,stdin", [
    ([], b"x\n"),                             # no recipients
    (["-t"], b"Subject: none\n\nx\n"),        # -t finds none
    (["-q"], b"x\n"),                         # unknown option
    (["-bs"], b"x\n"),                        # unsupported mode
    (["-f"], b"x\n"),                         # missing value
    (["-f", "a b@c", "x@y"], b"x\n"),         # bad sender
    (["-F", "Evil\rBcc: v@x", "x@y"], b"x\n"),  # B4 in the full name
    (["-t"], b"To: \"unclosed@x\n\nx\n"),     # malformed To:
])
def test_sendmail_usage_exit_64(env, args, stdin):
    fake = serve(env, ok_submit)
    rc, _, err = run(env, "sendmail", *args, stdin=stdin)
    assert rc == 64, err
    assert fake.requests == []


def test_sendmail_invoked_as_sendmail(env):
    fake = serve(env, ok_submit)
    sendmail = alias("sendmail")
    r = subprocess.run([sendmail, "-C", env["conf"], "-t"], input=b"To: root\n\nhi\n",
                       capture_output=True, timeout=30)
    subprocess.run(["rm", "-rf", os.path.dirname(sendmail)])
    assert r.returncode == 0, r.stderr
    assert submitted(fake)[1] == ["root@mx.test"]

