"""Helpers for the end-to-end tests: a running sluiced, a raw SMTP client, and a reader
for the queue files (doc/QUEUE.md: header, envelope record, message bytes, end record with
a CRC-32 over everything before it).

The tests drive a real daemon on loopback; every helper here is stdlib only."""

import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import time
import zlib

BUILD = os.environ.get("SLUICE_BUILD", "build-test")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def build_path(*parts):
    base = BUILD if os.path.isabs(BUILD) else os.path.join(ROOT, BUILD)
    return os.path.join(base, *parts)


SLUICED = build_path("src", "daemon", "sluiced")
SLUICE = build_path("src", "cli", "sluice")

SANITIZER_MARKERS = ("AddressSanitizer", "runtime error:", "LeakSanitizer")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n):
    """n distinct free ports: the sockets stay bound until all are picked, so two calls in a
    row can never hand out the same port (a daemon with two listeners on one port refuses
    to start)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_for(pred, timeout, interval=0.05, what="condition"):
    """Poll pred() until it returns a true value; return it, or raise AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def tls_client_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# ---- queue files ------------------------------------------------------------------------

QF_MAGIC = b"SLUICEQF"
QF_HEAD = 16 + 4  # magic, version, flags; envelope length


class CorruptQueueFile(ValueError):
    pass


def read_queue_file(path):
    """Return (envelope_bytes, message_bytes) of a committed queue file; raise
    CorruptQueueFile when any length, magic or the end record's CRC-32 disagrees."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < QF_HEAD + 8 + 8:
        raise CorruptQueueFile("%s: %d bytes, too short" % (path, len(data)))
    if data[:8] != QF_MAGIC:
        raise CorruptQueueFile("%s: bad magic" % path)
    version, flags, elen = struct.unpack(">III", data[8:QF_HEAD])
    if version != 1 or flags != 0:
        raise CorruptQueueFile("%s: version %d flags %d" % (path, version, flags))
    if QF_HEAD + elen + 8 + 8 > len(data):
        raise CorruptQueueFile("%s: envelope length %d past the end" % (path, elen))
    env = data[QF_HEAD:QF_HEAD + elen]
    (blen,) = struct.unpack(">Q", data[QF_HEAD + elen:QF_HEAD + elen + 8])
    boff = QF_HEAD + elen + 8
    if boff + blen + 8 != len(data):
        raise CorruptQueueFile("%s: body length %d does not match the file size" % (path, blen))
    end = data[boff + blen:]
    if end[:4] != b"QEND":
        raise CorruptQueueFile("%s: no end record" % path)
    (crc,) = struct.unpack(">I", end[4:])
    if zlib.crc32(data[:boff + blen]) & 0xFFFFFFFF != crc:
        raise CorruptQueueFile("%s: CRC mismatch" % path)
    return env, data[boff:boff + blen]


RECEIVED_RE = re.compile(
    rb"\AReceived: from (?P<helo>[^ ]+) \(\[(?P<ip>[^\]]+)\]\)\r\n"
    rb"\tby (?P<host>[^ ]+) \(Sluice\) with (?P<proto>[A-Z0-9]+) id (?P<id>[0-9A-Z]{20})\r\n"
    rb"(?:\t\((?P<tls>version=[^)]*)\)\r\n)?"
    rb"\t(?:for <(?P<rcpt>[^>]*)>)?; (?P<date>[^\r\n]+)\r\n")


def split_received(message):
    """Split the stored message bytes into (match of the Received header, the rest)."""
    m = RECEIVED_RE.match(message)
    if m is None:
        raise AssertionError("stored message does not start with our Received header: %r"
                             % message[:300])
    return m, message[m.end():]


# ---- a raw SMTP client --------------------------------------------------------------------

class Closed(Exception):
    """The server closed the connection (EOF or reset)."""


class Client:
    """A line-oriented SMTP client over a plain or TLS socket, for tests that need exact
    control over what is sent when."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0, tls=False, source=None,
                 rcvbuf=None, read_greeting=True):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if source is not None:
            self.sock.bind((source, 0))
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.buf = b""
        self.greeting = None
        if tls:
            self.sock = tls_client_context().wrap_socket(self.sock)
        if read_greeting:
            self.greeting = self.reply()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError) as e:
            raise Closed(str(e))
        if not chunk:
            raise Closed("EOF")
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln.decode("utf-8", "replace")

    def reply(self):
        """Read one (possibly multi-line) reply; return (code, [lines])."""
        lines = []
        while True:
            ln = self.line()
            lines.append(ln)
            if len(ln) < 4 or ln[3] != "-":
                break
        return int(lines[-1][:3]), lines

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.reply()

    def expect(self, text, code, contains=None):
        c, lines = self.cmd(text)
        assert c == code, "%s: expected %d, got %r" % (text, code, lines)
        if contains is not None:
            assert contains in lines[-1], "%s: expected %r in %r" % (text, contains, lines)
        return lines

    def starttls(self):
        self.expect("STARTTLS", 220)
        assert not self.buf
        self.sock = tls_client_context().wrap_socket(self.sock)

    def wait_closed(self, timeout):
        """Read (and drop) whatever arrives until the server closes; return the lines
        received. Raise AssertionError when the connection is still open after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("connection still open after %.1fs (got %r)"
                                     % (timeout, self.buf[-300:]))
            self.sock.settimeout(left)
            try:
                self._fill()
            except Closed:
                return self.buf.decode("utf-8", "replace").split("\r\n")
            except socket.timeout:
                continue

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def reset(self):
        """Close with a TCP RST (SO_LINGER on, timeout 0)."""
        raw = self.sock
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


QUEUED_RE = re.compile(r"queued as ([0-9A-Z]{20})")


def read_maildir_new(new):
    """The files of a Maildir's new/ directory, oldest first ([] when it does not exist)."""
    try:
        names = sorted(os.listdir(new), key=lambda n: os.stat(os.path.join(new, n)).st_mtime_ns)
    except FileNotFoundError:
        return []
    out = []
    for n in names:
        with open(os.path.join(new, n), "rb") as f:
            out.append(f.read())
    return out


def queued_id(text):
    m = QUEUED_RE.search(text)
    assert m is not None, "no queue id in %r" % text
    return m.group(1)


def send_message(client, body, sender="sender@example.org", rcpts=("alice@mx.test",),
                 mail_params=""):
    """MAIL, RCPT..., DATA, the (already dot-stuffed) body bytes and the final dot; return
    the queue id from the 250."""
    client.expect("MAIL FROM:<%s>%s" % (sender, mail_params), 250)
    for r in rcpts:
        client.expect("RCPT TO:<%s>" % r, 250)
    client.expect("DATA", 354)
    client.send(body + b".\r\n")
    code, lines = client.reply()
    assert code == 250, "end of data: %r" % lines
    return queued_id(lines[-1])


# ---- the daemon --------------------------------------------------------------------------

class Daemon:
    """One sluiced in a temp directory: config, spool, mailboxes, TLS pair, log file."""

    def __init__(self, tmp, extra="", workers=1, env=None, spool=None, wrapper=None,
                 hostname="mx.test", delivery=None, sqlite=False, listeners=None):
        """delivery: None keeps every message in queue/ (the queue manager holds them,
        for the receiver's tests); otherwise the statements of the delivery block, to which
        a Maildir under the test directory and a DNS server that never answers are added
        unless given."""
        self.dir = str(tmp)
        os.makedirs(self.dir, exist_ok=True)
        self.spool = spool or os.path.join(self.dir, "spool")
        self.extra = extra
        self.delivery = delivery
        self.dns_port = None
        self.workers = workers
        self.hostname = hostname
        self.env = dict(os.environ)
        self.env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        self.env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        self.env.update(env or {})
        self.wrapper = wrapper or []
        self.sqlite = sqlite
        self.listeners = listeners or {}
        self.port, self.port_required, self.port_implicit = free_ports(3)
        self.conf = os.path.join(self.dir, "sluice.conf")
        self.log_path = os.path.join(self.dir, "sluiced.log")
        self.proc = None
        self.logf = None
        with open(os.path.join(self.dir, "mailboxes"), "w") as f:
            f.write("# test mailboxes\nalice@mx.test Alice Example\nbob@mx.test\n")
        with open(os.path.join(self.dir, "aliases"), "w") as f:
            f.write("team@mx.test: alice@mx.test, bob@mx.test\n")
        self.write_conf()

    def conf_text(self):
        d = self.dir
        return (
            "hostname %s\n"
            "spool %s\n"
            "workers %d\n"
            "listen smtp { address 127.0.0.1:%d; tls starttls; %s }\n"
            "listen submission { address 127.0.0.1:%d; tls required; %s }\n"
            "listen submissions { address 127.0.0.1:%d; tls implicit; %s }\n"
            "tls { certificate %s/cert.pem; key %s/key.pem; self-signed yes }\n"
            "domain mx.test\n"
            "domain localhost\n"
            "%s\n"
            "delivery {\n%s\n}\n"
            "%s\n" % (self.hostname, self.spool, self.workers,
                      self.port, self.listeners.get("smtp", ""),
                      self.port_required, self.listeners.get("submission", ""),
                      self.port_implicit, self.listeners.get("submissions", ""),
                      d, d, self.directory_text(), self.delivery_text(), self.extra))

    def directory_text(self):
        if self.sqlite:
            return "directory { sqlite %s/dir.db }" % self.dir
        return "directory { mailboxes %s/mailboxes; aliases %s/aliases }" % (self.dir, self.dir)

    def cli(self, *args, stdin=None, check=True):
        """Runs `sluice -c <conf> args...`; returns the CompletedProcess."""
        r = subprocess.run([SLUICE, "-c", self.conf] + list(args), input=stdin,
                           capture_output=True, text=True, env=self.env, timeout=60)
        if check:
            assert r.returncode == 0, "sluice %s: %d %s" % (" ".join(args), r.returncode,
                                                             r.stderr)
        return r

    def delivery_text(self):
        if self.delivery is None:
            return "hold yes"
        text = self.delivery
        if "maildir" not in text:
            text += "\nmaildir %s/mail/%%d/%%u" % self.dir
        if "dns " not in text:
            # Nothing listens there: lookups time out, and no query leaves loopback.
            if self.dns_port is None:
                self.dns_port = free_port()
            text += "\ndns 127.0.0.1@%d" % self.dns_port
        return text

    def maildir(self, addr):
        """The Maildir of addr under the default template."""
        local, domain = addr.rsplit("@", 1)
        return os.path.join(self.dir, "mail", domain, local.lower())

    def delivered(self, addr):
        """Contents of the files in addr's new/, oldest first."""
        return read_maildir_new(os.path.join(self.maildir(addr), "new"))

    def write_conf(self):
        with open(self.conf, "w") as f:
            f.write(self.conf_text())

    # -- lifecycle --

    def start(self, timeout=10.0):
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.wrapper + [SLUICED, "-c", self.conf],
                                     stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=self.logf, env=self.env, cwd=self.dir)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("sluiced exited with %d at start:\n%s"
                                     % (self.proc.returncode, self.log()))
            try:
                with Client(self.port, timeout=2.0) as c:
                    assert c.greeting[0] == 220, c.greeting
                    c.send("QUIT\r\n")
                    c.wait_closed(2.0)
                break
            except (OSError, Closed, AssertionError):
                if time.monotonic() >= deadline:
                    raise AssertionError("sluiced did not serve within %.0fs:\n%s"
                                         % (timeout, self.log()))
                time.sleep(0.05)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def control_path(self, timeout=10.0):
        """The queue manager's control socket, once it exists: the queue manager makes it
        after the workers already serve SMTP, which is all start() waits for."""
        path = os.path.join(self.spool, "public", "control")
        wait_for(lambda: os.path.exists(path), timeout, what="the control socket")
        return path

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_events(self, event):
        return [ln for ln in self.log().splitlines() if "event=%s " % event in ln + " "]

    def children(self):
        try:
            with open("/proc/%d/task/%d/children" % (self.pid, self.pid)) as f:
                return [int(p) for p in f.read().split()]
        except OSError:
            return []

    def qmgr_pids(self):
        """Queue manager processes ever spawned (from the master's log)."""
        out = []
        for ln in self.log_events("qmgr_spawn"):
            m = re.search(r"pid=(\d+)", ln)
            if m:
                out.append(int(m.group(1)))
        return out

    def qmgr_pid(self, timeout=5.0):
        """The live queue manager."""
        return wait_for(lambda: next((p for p in self.children() if p in self.qmgr_pids()), None),
                        timeout, what="the queue manager")

    def worker_pids(self):
        """Live worker processes (children of the master but the queue manager)."""
        q = set(self.qmgr_pids())
        return [p for p in self.children() if p not in q]

    def wait_workers(self, n, timeout=5.0, exclude=()):
        return wait_for(lambda: (lambda p: p if len(p) >= n and not set(p) & set(exclude)
                                 else None)(self.worker_pids()),
                        timeout, what="%d worker(s)" % n)

    def stop(self, timeout=10.0):
        """SIGTERM; the daemon must exit 0 within timeout."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("sluiced did not exit within %.0fs of SIGTERM:\n%s"
                                 % (timeout, self.log()[-3000:]))
        return rc

    def kill(self):
        """SIGKILL the master and wait until its workers (PDEATHSIG) are gone too."""
        workers = self.children()
        self.proc.kill()
        self.proc.wait()
        for p in workers:
            wait_for(lambda: _is_gone(p), 5.0, what="worker %d to die with its master" % p)

    def close_log(self):
        if self.logf is not None:
            self.logf.close()
            self.logf = None

    def check_sanitizers(self):
        log = self.log()
        for m in SANITIZER_MARKERS:
            assert m not in log, "sanitizer report in the daemon log:\n%s" % log[-6000:]

    def shutdown(self):
        """Teardown: SIGTERM, exit 0 within 10 s, no sanitizer report."""
        try:
            if self.proc is not None and self.proc.poll() is None:
                rc = self.stop()
                assert rc == 0, "sluiced exited %d after SIGTERM:\n%s" % (rc, self.log()[-3000:])
        finally:
            self.close_log()
        self.check_sanitizers()

    # -- spool --

    def listdir(self, sub):
        try:
            return sorted(os.listdir(os.path.join(self.spool, sub)))
        except FileNotFoundError:
            return []

    def queued(self):
        return self.listdir("queue")

    def incoming(self):
        """Files in incoming/: each worker's store writes in incoming/<pid>/."""
        out = []
        for name in self.listdir("incoming"):
            sub = os.path.join("incoming", name)
            if os.path.isdir(os.path.join(self.spool, sub)) and \
                    not os.path.islink(os.path.join(self.spool, sub)):
                out += [name + "/" + f for f in self.listdir(sub)]
            else:
                out.append(name)
        return sorted(out)

    def queue_path(self, qid):
        return os.path.join(self.spool, "queue", qid)

    def message(self, qid, timeout=3.0):
        """Envelope bytes and stored message bytes of a queued message (checked). An
        acknowledged message may wait in the store's log for a checkpoint (doc/QUEUE.md)
        before it appears in queue/: wait that long."""
        path = self.queue_path(qid)
        wait_for(lambda: os.path.exists(path), timeout, what="%s in queue/" % qid)
        return read_queue_file(path)

    def body(self, qid, timeout=3.0):
        """The stored bytes after our Received header."""
        _, msg = self.message(qid, timeout)
        return split_received(msg)[1]

    def wait_incoming_empty(self, timeout=3.0):
        wait_for(lambda: not self.incoming(), timeout, what="incoming/ to be empty")

    def assert_healthy(self):
        """The daemon still runs and a new session can queue a message."""
        assert self.proc.poll() is None, "sluiced exited:\n%s" % self.log()[-3000:]
        with Client(self.port) as c:
            assert c.greeting[0] == 220, c.greeting
            c.expect("EHLO health.test", 250)
            qid = send_message(c, b"Subject: health\r\n\r\nstill alive\r\n")
            c.expect("QUIT", 221)
        assert self.body(qid) == b"Subject: health\r\n\r\nstill alive\r\n"
        return qid

    def cpu_seconds(self):
        """utime+stime of the master and its live workers, in seconds."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for p in [self.pid] + self.worker_pids():
            try:
                with open("/proc/%d/stat" % p) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
            except OSError:
                pass
        return total / tick


def _is_gone(pid):
    """Dead and its files closed: a killed process whose main thread is a zombie still
    holds its descriptors (the spool lock among them) until its last thread has exited."""
    if not os.path.exists("/proc/%d" % pid):
        return True
    if not _is_zombie(pid):
        return False
    try:
        return len(os.listdir("/proc/%d/task" % pid)) <= 1
    except OSError:
        return True


def _is_zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def proc_status(pid, key):
    """A kB value from /proc/PID/status (VmRSS, VmHWM...)."""
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith(key + ":"):
                return int(ln.split()[1])
    raise KeyError(key)


class BioTls:
    """TLS client over memory BIOs on a connected socket, with the sendall/recv interface
    Client uses, so that a test can put exact TLS records (a close_notify) and then raw
    bytes on the wire."""

    def __init__(self, sock):
        self.raw = sock
        self.inc = ssl.MemoryBIO()
        self.out = ssl.MemoryBIO()
        self.obj = tls_client_context().wrap_bio(self.inc, self.out, server_side=False)

    def _flush(self):
        data = self.out.read()
        if data:
            self.raw.sendall(data)

    def _pump(self):
        chunk = self.raw.recv(65536)
        if not chunk:
            raise Closed("EOF during TLS")
        self.inc.write(chunk)

    def handshake(self):
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                self._pump()
        self._flush()
        return self

    def sendall(self, data):
        self.obj.write(data)
        self._flush()

    def recv(self, n):
        while True:
            try:
                return self.obj.read(n)
            except ssl.SSLWantReadError:
                try:
                    self._pump()
                except Closed:
                    return b""
            except ssl.SSLZeroReturnError:
                return b""

    def close_notify(self):
        """Send our close_notify without waiting for the peer's."""
        try:
            self.obj.unwrap()
        except (ssl.SSLWantReadError, ssl.SSLError):
            pass
        self._flush()

    def settimeout(self, t):
        self.raw.settimeout(t)

    def setsockopt(self, *a):
        self.raw.setsockopt(*a)

    def close(self):
        self.raw.close()


def tcp_state(sock):
    """The kernel's TCP state of a socket (1 = ESTABLISHED, 7 = CLOSE, 8 = CLOSE_WAIT)."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
    return info[0]
