#!/usr/bin/python3
"""SMTP transcript runner: replays tests/smtp/*.smtp against a live sluiced.

Called by scripts/run-tests (make test) and by hand:
    run.py --sluiced BUILD/src/daemon/sluiced [--jobs N] [--keep] [FILES...]
The transcript format is described in tests/smtp/README.md. Transcripts with the same
`# config:` lines share one daemon and run one after the other in it; different
configurations run in parallel. Python 3 standard library only.
"""

import argparse
import concurrent.futures
import glob
import os
import re
import selectors
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LINE_TIMEOUT = 10.0        # per expected reply line
CLOSE_TIMEOUT = 10.0       # CLOSED:
SEND_STALL = 10.0          # a write that makes no progress this long fails
POLL_TIMEOUT = 5.0         # QUEUED:, INCOMING:, LOG:
STARTUP_TIMEOUT = 30.0     # daemon listening (ASan and key generation are slow)
STOP_TIMEOUT = 10.0        # SIGTERM to exit
FLOOD_MAX = 10_000_000     # R*N: total bytes
SANITIZER_RE = re.compile(rb"AddressSanitizer|LeakSanitizer|runtime error:")

BASE_LISTENERS = {"smtp": ("PORT1", False), "submission": ("PORT2", False),
                  "submissions": ("PORT3", True)}

BASE_CONFIG = """\
# written by tests/smtp/run.py
hostname mx.test
spool {DIR}/spool
workers 1
listen smtp {{ address 127.0.0.1:{PORT1}; tls starttls }}
listen submission {{ address 127.0.0.1:{PORT2}; tls required }}
listen submissions {{ address 127.0.0.1:{PORT3}; tls implicit }}
tls {{ certificate {DIR}/cert.pem; key {DIR}/key.pem; self-signed yes }}
domain mx.test
domain localhost
directory {{ mailboxes {DIR}/mailboxes; aliases {DIR}/aliases }}
delivery {{ hold yes }}
"""

MAILBOXES = "# test mailboxes\nalice@mx.test Alice Example\nbob@mx.test\n"

# A transcript whose config has its own `directory { sqlite ... }` gets this store, filled
# with the sluice tool before the daemon starts (arguments; a password goes on stdin).
SQLITE_SETUP = [
    (["domain", "add", "mx.test"], None),
    (["user", "add", "alice@mx.test", "--name", "Alice Example", "--stdin"], "alice-secret"),
    (["user", "add", "bob@mx.test", "--stdin"], "bob-secret"),
    (["user", "add", "off@mx.test", "--stdin"], "off-secret"),
    (["user", "disable", "off@mx.test"], None),
    (["alias", "add", "list@mx.test", "alice@mx.test", "bob@mx.test"], None),
    (["alias", "add", "sales@mx.test", "alice@mx.test"], None),
    (["relocated", "add", "moved@mx.test", "moved@new.example", "--forward"], None),
    (["relocated", "add", "gone@mx.test", "gone@new.example", "--refuse"], None),
]
ALIASES = "# test aliases\nlist@mx.test: alice@mx.test, bob@mx.test\n"


class ParseError(Exception):
    pass


class Fail(Exception):
    """A transcript step failed; lineno 0 means the failure is not tied to a line."""

    def __init__(self, lineno, msg, expected=None, got=None):
        super().__init__(msg)
        self.lineno = lineno
        self.msg = msg
        self.expected = expected
        self.got = got


# ---------------------------------------------------------------- parsing

STEP_RE = re.compile(r"^([A-Z][A-Z-]*)(\*(\d*))?:(?: (.*))?$")
OPS = {"C", "R", "S", "TLS", "TLS-CLOSE", "WAIT", "CLOSED", "QUEUED", "INCOMING", "CONNECT",
       "USE", "LOG", "LOG-ALL", "QFILE", "QFILE-NOT", "RESET", "CLOSE", "SQL"}


def unescape(text, lineno):
    """R: escapes: \\r \\n \\t \\0 \\xHH \\\\; everything else is sent as UTF-8."""
    out = bytearray()
    i = 0
    simple = {"r": b"\r", "n": b"\n", "t": b"\t", "0": b"\0", "\\": b"\\"}
    while i < len(text):
        c = text[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
            continue
        if i + 1 >= len(text):
            raise ParseError(f"line {lineno}: dangling backslash")
        e = text[i + 1]
        if e in simple:
            out += simple[e]
            i += 2
        elif e == "x" and re.fullmatch(r"[0-9A-Fa-f]{2}", text[i + 2:i + 4]):
            out.append(int(text[i + 2:i + 4], 16))
            i += 4
        else:
            raise ParseError(f"line {lineno}: unknown escape \\{e}")
    return bytes(out)


class Step:
    def __init__(self, lineno, op, count, arg, text):
        self.lineno = lineno
        self.op = op
        self.count = count      # None, or N of R*N: / S*N:, or -1 for S*:
        self.arg = arg
        self.text = text        # the source line, for messages


class Transcript:
    def __init__(self, path):
        self.path = path
        self.name = os.path.splitext(os.path.basename(path))[0]
        self.config = []
        self.env = []
        self.listener = "smtp"
        self.steps = []
        self.error = None
        try:
            self._parse()
        except ParseError as e:
            self.error = str(e)
        except OSError as e:
            self.error = f"cannot read: {e}"

    def _parse(self):
        with open(self.path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        for n, raw in enumerate(lines, 1):
            line = raw.rstrip("\r")
            if not line.strip():
                continue
            if line.startswith("#"):
                m = re.match(r"#\s*(config|listener|greeting|env):\s?(.*)$", line)
                if m is None:
                    continue
                key, val = m.group(1), m.group(2)
                if key == "config":
                    self.config.append(val)
                elif key == "env":
                    m2 = re.fullmatch(r"([A-Z_][A-Z0-9_]*)=(.*)", val.strip())
                    if m2 is None:
                        raise ParseError(f"line {n}: # env: takes NAME=VALUE")
                    self.env.append((m2.group(1), m2.group(2)))
                elif key == "listener":
                    self.listener = val.strip()
                elif val.strip() not in ("no", "yes"):
                    raise ParseError(f"line {n}: # greeting: takes no or yes")
                continue
            m = STEP_RE.match(line)
            if m is None or m.group(1) not in OPS:
                raise ParseError(f"line {n}: not a transcript line: {line!r}")
            op, star, num, arg = m.group(1), m.group(2), m.group(3), m.group(4)
            arg = "" if arg is None else arg
            count = None
            if star is not None:
                if op not in ("R", "S"):
                    raise ParseError(f"line {n}: only R and S take *N")
                if op == "R" and not num:
                    raise ParseError(f"line {n}: R* needs a count")
                count = int(num) if num else -1
            data = arg
            if op in ("C", "R"):
                data = arg.encode("utf-8") + b"\r\n" if op == "C" else unescape(arg, n)
                if op == "R" and count is not None and len(data) * count > FLOOD_MAX:
                    raise ParseError(f"line {n}: R*N over {FLOOD_MAX} bytes")
                if op == "R" and not data:
                    raise ParseError(f"line {n}: R: with nothing to send")
            elif op in ("S", "LOG", "LOG-ALL", "QFILE", "QFILE-NOT"):
                try:
                    data = re.compile(arg.encode("utf-8"),
                                      re.MULTILINE if op.startswith("QFILE") else 0)
                except re.error as e:
                    raise ParseError(f"line {n}: bad regex: {e}") from None
            elif op == "WAIT":
                try:
                    data = float(arg)
                except ValueError:
                    raise ParseError(f"line {n}: WAIT needs seconds") from None
            elif op in ("QUEUED", "INCOMING", "USE"):
                if not arg.strip().isdigit():
                    raise ParseError(f"line {n}: {op} needs a number")
                data = int(arg)
            elif op == "TLS":
                data = None
                if arg:
                    m2 = re.fullmatch(r"sni=(.*)", arg)
                    if m2 is None:
                        raise ParseError(f"line {n}: TLS: takes nothing or sni=NAME")
                    data = m2.group(1)
            elif op == "SQL":
                if not arg.strip():
                    raise ParseError(f"line {n}: SQL: needs a statement")
                data = arg
            elif op == "CONNECT":
                words = arg.split()
                if len(words) > 2 or (len(words) == 2 and words[1] != "plain"):
                    raise ParseError(f"line {n}: CONNECT: [listener] [plain]")
                data = words
            elif op == "CLOSED":
                if arg not in ("", "any"):
                    raise ParseError(f"line {n}: CLOSED: takes nothing or any")
                data = arg == "any"
            elif arg:
                raise ParseError(f"line {n}: {op}: takes no argument")
            self.steps.append(Step(n, op, count, data, line))
        if not self.steps:
            raise ParseError("no steps")

    def config_key(self):
        return (tuple(self.config), tuple(self.env))


# ---------------------------------------------------------------- connections

def show(data, limit=160):
    """Printable form of bytes for the conversation log."""
    if isinstance(data, str):
        data = data.encode("utf-8", "replace")
    text = data[:limit].decode("latin-1").encode("unicode_escape").decode("ascii")
    if len(data) > limit:
        text += f"... ({len(data)} bytes)"
    return text


class Conn:
    def __init__(self, idx, port, implicit_tls, convo, lineno):
        self.idx = idx
        self.convo = convo
        self.buf = bytearray()
        self.eof = False            # nothing more will arrive
        self.write_closed = False   # peer refused more data (reset / broken pipe)
        self.closed = False         # we closed it
        self.tls = False
        try:
            self.sock = socket.create_connection(("127.0.0.1", port), timeout=LINE_TIMEOUT)
        except OSError as e:
            raise Fail(lineno, f"cannot connect to 127.0.0.1:{port}: {e}") from None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.note(f"-- connection {idx} to port {port}" + (" (implicit TLS)" if implicit_tls
                                                           else ""))
        if implicit_tls:
            self.starttls(lineno, "mx.test")

    def note(self, text):
        self.convo.append(f"[{self.idx}] {text}")

    def _wait(self, read, write, timeout):
        if timeout <= 0:
            timeout = 0
        sel = selectors.DefaultSelector()
        ev = (selectors.EVENT_READ if read else 0) | (selectors.EVENT_WRITE if write else 0)
        try:
            sel.register(self.sock, ev)
            return sel.select(timeout)
        finally:
            sel.close()

    def _read_available(self):
        """Reads whatever is there without blocking; marks EOF. Returns bytes read."""
        got = 0
        while not self.eof:
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError,
                    ssl.SSLWantWriteError):
                break
            except ssl.SSLZeroReturnError:
                self._set_eof("TLS close_notify")
                break
            except (ssl.SSLError, OSError) as e:
                self._set_eof(f"{type(e).__name__}: {e}")
                break
            if not data:
                self._set_eof("EOF")
                break
            self.buf += data
            got += len(data)
        return got

    def _set_eof(self, why):
        self.eof = True
        self.eof_reason = why

    def fill(self, deadline):
        """Waits until more data arrives or EOF; False on timeout."""
        while True:
            if self.eof:
                return True
            if self._read_available():
                return True
            if self.eof:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._wait(True, False, min(left, 1.0))

    def readline(self, lineno, deadline):
        """One reply line without its CRLF, or None at EOF."""
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                if not line.endswith(b"\r\n"):
                    self.note(f"S: {show(line)}")
                    raise Fail(lineno, "reply line ends with a bare LF", got=line)
                self.note(f"S: {show(line[:-2])}")
                return line[:-2]
            if self.eof:
                if self.buf:
                    part = bytes(self.buf)
                    raise Fail(lineno, "connection closed inside a reply line", got=part)
                self.note(f"-- {self.eof_reason}")
                return None
            if not self.fill(deadline):
                raise Timeout()

    def peekline(self, deadline):
        """The next complete line (CRLF kept) without consuming it; None at EOF or timeout."""
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                return bytes(self.buf[:i + 1])
            if self.eof:
                return None
            if not self.fill(deadline):
                return None

    def send(self, lineno, chunks, label):
        """Writes chunks (an iterable of bytes), reading replies meanwhile so that a server
        answering a flood never blocks against us."""
        self.note(label)
        if self.closed:
            raise Fail(lineno, "connection already closed by the test")
        for chunk in chunks:
            view = memoryview(chunk)
            pos = 0
            last = time.monotonic()
            while pos < len(view):
                if self.write_closed:
                    return
                try:
                    n = self.sock.send(view[pos:pos + 262144])
                    pos += n
                    last = time.monotonic()
                    continue
                except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError):
                    self._wait(True, True, 0.5)
                except ssl.SSLWantReadError:
                    self._wait(True, False, 0.5)
                except (ssl.SSLError, OSError) as e:
                    self.write_closed = True
                    self.note(f"-- write failed: {type(e).__name__}: {e}")
                    return
                self._read_available()
                if time.monotonic() - last > SEND_STALL:
                    raise Fail(lineno, f"send stalled for {SEND_STALL:.0f}s "
                               f"({pos} of {len(view)} bytes of a write sent)")

    def starttls(self, lineno, sni):
        if self.buf:
            raise Fail(lineno, "plaintext received before the TLS handshake",
                       got=bytes(self.buf))
        if self.eof:
            raise Fail(lineno, f"connection closed before TLS ({self.eof_reason})")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            s = ctx.wrap_socket(self.sock, server_hostname=sni, do_handshake_on_connect=False)
        except (ValueError, ssl.SSLError, OSError) as e:
            raise Fail(lineno, f"TLS setup failed: {e}") from None
        self.sock = s
        deadline = time.monotonic() + LINE_TIMEOUT
        while True:
            try:
                s.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._wait(True, False, 0.5)
            except ssl.SSLWantWriteError:
                self._wait(False, True, 0.5)
            except (ssl.SSLError, OSError) as e:
                self.note(f"-- TLS handshake failed: {e}")
                raise Fail(lineno, f"TLS handshake failed: {e}") from None
            if time.monotonic() > deadline:
                raise Fail(lineno, "TLS handshake timed out")
        self.tls = True
        self.note(f"-- TLS up: {s.version()} {s.cipher()[0]}")

    def tls_close(self, lineno):
        """Sends close_notify, waits briefly for the peer's, and goes back to plaintext."""
        if not self.tls:
            raise Fail(lineno, "TLS-CLOSE: without TLS")
        self.note("-- TLS close_notify sent")
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            try:
                self.sock._sslobj.shutdown()
                break
            except ssl.SSLWantReadError:
                self._wait(True, False, 0.2)
            except ssl.SSLWantWriteError:
                self._wait(False, True, 0.2)
            except (ssl.SSLError, OSError):
                break
        fd = self.sock.detach()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, fileno=fd)
        self.sock.setblocking(False)
        self.tls = False

    def reset(self):
        self.note("-- RST sent")
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        except OSError:
            pass
        self.close()

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass


class Timeout(Exception):
    pass


# ---------------------------------------------------------------- the daemon

def listening_ports():
    """Local ports in LISTEN state, from /proc (no probe connections: they would count
    as sessions in the daemon)."""
    ports = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for row in f:
                    cols = row.split()
                    if len(cols) > 3 and cols[3] == "0A":
                        ports.add(int(cols[1].rsplit(":", 1)[1], 16))
        except (OSError, StopIteration):
            pass
    return ports


def free_ports(n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Daemon:
    def __init__(self, sluiced, config_lines, keep, env):
        self.sluiced = sluiced
        self.config_lines = config_lines
        self.env = env
        self.keep = keep
        self.proc = None
        self.dir = None

    def start(self):
        """Starts the daemon; returns None or a reason it could not start."""
        why = None
        for _ in range(2):       # a second try with fresh ports, in case one was taken
            why = self._start_once()
            if why is None:
                return None
            exited = self.proc is not None and self.proc.poll() is not None
            self.cleanup()
            if not exited:       # it ran but never listened: trying again would not help
                break
        return why

    def fill_sqlite(self):
        """Fills the SQLite directory through the sluice tool; None or why it failed."""
        sluice = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(self.sluiced))),
                              "cli", "sluice")
        for args, stdin in SQLITE_SETUP:
            r = subprocess.run([sluice, "-c", self.conf] + args, input=stdin, text=True,
                               capture_output=True, timeout=60)
            if r.returncode != 0:
                return f"sluice {' '.join(args)}: {r.returncode} {r.stderr.strip()}"
        return None

    def _start_once(self):
        self.dir = tempfile.mkdtemp(prefix="sluice-smtp-")
        ports = free_ports(5)
        self.vars = {"DIR": self.dir}
        for i, p in enumerate(ports, 1):
            self.vars[f"PORT{i}"] = str(p)
        self.spool = os.path.join(self.dir, "spool")
        os.mkdir(self.spool)
        with open(os.path.join(self.dir, "mailboxes"), "w") as f:
            f.write(MAILBOXES)
        with open(os.path.join(self.dir, "aliases"), "w") as f:
            f.write(ALIASES)
        extra = [self.subst(line) for line in self.config_lines]
        self.conf = os.path.join(self.dir, "sluice.conf")
        base = BASE_CONFIG.format(**self.vars)
        own_directory = any(re.match(r"\s*directory\b", line) for line in extra)
        if own_directory:
            base = "\n".join(l for l in base.split("\n") if not l.startswith("directory "))
        with open(self.conf, "w") as f:
            f.write(base)
            for line in extra:
                f.write(line + "\n")
        if own_directory and any("sqlite" in line for line in extra):
            why = self.fill_sqlite()
            if why is not None:
                return why
        self.listeners = {n: (int(self.vars[p]), tls) for n, (p, tls) in BASE_LISTENERS.items()}
        for line in extra:
            m = re.search(r"listen\s+(\S+)\s*\{[^}]*address\s+127\.0\.0\.1:(\d+)", line)
            if m:
                self.listeners[m.group(1)] = (int(m.group(2)), "tls implicit" in line)
        self.logpath = os.path.join(self.dir, "sluiced.log")
        self.log = open(self.logpath, "wb")
        try:
            self.proc = subprocess.Popen([self.sluiced, "-c", self.conf], stdin=subprocess.DEVNULL,
                                         stdout=self.log, stderr=self.log, cwd=self.dir,
                                         start_new_session=True,
                                         env=dict(os.environ, **self.env))
        except OSError as e:
            return f"cannot run {self.sluiced}: {e}"
        want = {p for p, _ in self.listeners.values()}
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                return f"daemon exited with status {rc} at startup; log: {self.log_tail()}"
            if want <= listening_ports():
                return None
            time.sleep(0.05)
        return f"daemon not listening after {STARTUP_TIMEOUT:.0f}s; log: {self.log_tail()}"

    def subst(self, text):
        return re.sub(r"\{(DIR|PORT[1-5])\}", lambda m: self.vars[m.group(1)], text)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_size(self):
        try:
            return os.path.getsize(self.logpath)
        except OSError:
            return 0

    def log_since(self, offset):
        try:
            with open(self.logpath, "rb") as f:
                f.seek(offset)
                return f.read()
        except OSError:
            return b""

    def log_tail(self, n=8):
        lines = self.log_since(0).splitlines()[-n:]
        return " | ".join(show(x, 200) for x in lines) or "(empty)"

    def stop(self):
        """SIGTERM; returns None or why the shutdown was not clean."""
        if self.proc is None:
            return None
        why = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                rc = None
                why = f"daemon did not exit within {STOP_TIMEOUT:.0f}s of SIGTERM"
            if rc is not None and rc != 0:
                why = f"daemon exited with status {rc} after SIGTERM"
        else:
            why = f"daemon had already exited with status {self.proc.returncode}"
        self.kill_group()
        time.sleep(0.1)
        m = SANITIZER_RE.search(self.log_since(0))
        if m and why is None:
            why = "sanitizer report in the daemon log"
        if why:
            why += f"; log: {self.log_tail()}"
        return why

    def kill_group(self):
        """SIGKILL to the process group of the daemon we started (its workers included)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass

    def cleanup(self):
        self.kill_group()
        self.proc = None
        if getattr(self, "log", None):
            self.log.close()
            self.log = None
        if self.dir and not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------- running one transcript

def queue_files(spool):
    found = set()
    for root, _dirs, files in os.walk(os.path.join(spool, "queue")):
        for f in files:
            p = os.path.join(root, f)
            if not f.startswith(".") and os.path.isfile(p) and not os.path.islink(p):
                found.add(p)
    return found


def dir_entries(path):
    try:
        return sorted(os.listdir(path))
    except FileNotFoundError:
        return []


def incoming_files(spool):
    """Files in SPOOL/incoming/: each worker's store writes in incoming/<pid>/."""
    top = os.path.join(spool, "incoming")
    out = []
    for name in dir_entries(top):
        sub = os.path.join(top, name)
        if os.path.isdir(sub) and not os.path.islink(sub):
            out += [name + "/" + f for f in dir_entries(sub)]
        else:
            out.append(name)
    return out


class Run:
    def __init__(self, t, daemon):
        self.t = t
        self.d = daemon
        self.convo = []
        self.conns = []
        self.cur = None
        self.queue_before = queue_files(daemon.spool)
        self.queue_seen = {}     # new queue file -> order seen
        self.log_offset = daemon.log_size()

    def connect(self, lineno, listener, plain):
        if listener not in self.d.listeners:
            raise Fail(lineno, f"no listener named {listener!r}")
        port, implicit = self.d.listeners[listener]
        c = Conn(len(self.conns) + 1, port, implicit and not plain, self.convo, lineno)
        self.conns.append(c)
        self.cur = c

    def new_queue_files(self):
        for p in sorted(queue_files(self.d.spool) - self.queue_before):
            self.queue_seen.setdefault(p, len(self.queue_seen))
        return self.queue_seen

    def run(self):
        try:
            self.connect(0, self.t.listener, False)
            for st in self.t.steps:
                self.step(st)
            for c in self.conns:
                if not c.closed and not c.eof:
                    c._read_available()
                if c.buf:
                    raise Fail(0, f"unread data on connection {c.idx} at the end",
                               got=bytes(c.buf))
        finally:
            for c in self.conns:
                c.close()

    def step(self, st):
        op, c = st.op, self.cur
        if op == "C":
            c.send(st.lineno, [st.arg], f"C: {show(st.arg[:-2])}")
        elif op == "R":
            if st.count is None:
                c.send(st.lineno, [st.arg], f"R: {show(st.arg)}")
            else:
                c.send(st.lineno, flood(st.arg, st.count), f"R*{st.count}: {show(st.arg, 60)}")
        elif op == "S":
            self.expect(st, c)
        elif op == "TLS":
            c.starttls(st.lineno, st.arg if st.arg is not None else "mx.test")
        elif op == "TLS-CLOSE":
            c.tls_close(st.lineno)
        elif op == "WAIT":
            time.sleep(st.arg)
        elif op == "CLOSED":
            self.closed(st, c)
        elif op == "QUEUED":
            self.queued(st)
        elif op == "INCOMING":
            self.incoming(st)
        elif op == "CONNECT":
            words = st.arg
            self.connect(st.lineno, words[0] if words else self.t.listener, len(words) == 2)
        elif op == "USE":
            if not 1 <= st.arg <= len(self.conns):
                raise Fail(st.lineno, f"no connection {st.arg}")
            self.cur = self.conns[st.arg - 1]
            self.convo.append(f"-- using connection {st.arg}")
        elif op == "LOG":
            self.logline(st, self.log_offset)
        elif op == "LOG-ALL":
            self.logline(st, 0)
        elif op == "SQL":
            self.sql(st)
        elif op in ("QFILE", "QFILE-NOT"):
            self.qfile(st)
        elif op == "RESET":
            c.reset()
        elif op == "CLOSE":
            c.note("-- closed by the test")
            c.close()

    def sql(self, st):
        """Changes the SQLite directory under the running daemon (a backend failure, G12)."""
        path = os.path.join(self.d.dir, "dir.db")
        if not os.path.exists(path):
            raise Fail(st.lineno, "SQL: without a `directory { sqlite {DIR}/dir.db }` config")
        db = sqlite3.connect(path, timeout=10)
        try:
            db.execute(st.arg)
            db.commit()
        except sqlite3.Error as e:
            raise Fail(st.lineno, f"SQL: {e}") from None
        finally:
            db.close()
        self.convo.append(f"-- SQL: {st.arg}")

    def expect(self, st, c):
        rx = st.arg
        want = st.text
        if st.count is None or st.count > 0:
            n = 1 if st.count is None else st.count
            for i in range(n):
                try:
                    line = c.readline(st.lineno, time.monotonic() + LINE_TIMEOUT)
                except Timeout:
                    raise Fail(st.lineno, f"no reply within {LINE_TIMEOUT:.0f}s"
                               + (f" (line {i + 1} of {n})" if n > 1 else ""),
                               expected=want) from None
                if line is None:
                    raise Fail(st.lineno, f"connection closed ({c.eof_reason})"
                               + (f" after {i} of {n} lines" if n > 1 else ""), expected=want)
                if not rx.fullmatch(line):
                    raise Fail(st.lineno, "reply mismatch"
                               + (f" (line {i + 1} of {n})" if n > 1 else ""),
                               expected=want, got=line)
            return
        matched = 0
        while True:
            line = c.peekline(time.monotonic() + LINE_TIMEOUT)
            if line is None or not line.endswith(b"\r\n") or not rx.fullmatch(line[:-2]):
                break
            c.readline(st.lineno, time.monotonic())
            matched += 1
        if matched == 0:
            got = line[:-2] if line is not None else None
            raise Fail(st.lineno, "no line matches", expected=want, got=got)

    def closed(self, st, c):
        if c.closed:
            raise Fail(st.lineno, "CLOSED: on a connection the test closed")
        deadline = time.monotonic() + CLOSE_TIMEOUT
        while not c.eof and (st.arg or not c.buf):
            if st.arg:
                c.buf.clear()
            if not c.fill(deadline):
                break
        if st.arg and c.buf:
            c.note(f"-- discarded before the close: {show(bytes(c.buf))}")
            c.buf.clear()
        if c.buf:
            raise Fail(st.lineno, "expected the connection to close, got more data",
                       got=bytes(c.buf))
        if not c.eof:
            raise Fail(st.lineno, f"connection still open after {CLOSE_TIMEOUT:.0f}s")
        c.note(f"-- closed as expected ({c.eof_reason})")

    def queued(self, st):
        want = st.arg
        deadline = time.monotonic() + POLL_TIMEOUT
        while len(self.new_queue_files()) != want and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        n = len(self.new_queue_files())
        self.convo.append(f"-- queue: {n} new file(s)")
        if n != want:
            raise Fail(st.lineno, f"expected {want} new queue file(s), found {n}")

    def incoming(self, st):
        deadline = time.monotonic() + POLL_TIMEOUT
        while len(incoming_files(self.d.spool)) != st.arg and time.monotonic() < deadline:
            time.sleep(0.05)
        ents = incoming_files(self.d.spool)
        if len(ents) != st.arg:
            raise Fail(st.lineno, f"expected {st.arg} file(s) in SPOOL/incoming, found "
                       f"{len(ents)}: {' '.join(ents[:5])}")

    def logline(self, st, offset):
        deadline = time.monotonic() + POLL_TIMEOUT
        while True:
            for line in self.d.log_since(offset).splitlines():
                if st.arg.search(line):
                    self.convo.append(f"-- log: {show(line)}")
                    return
            if time.monotonic() > deadline:
                raise Fail(st.lineno, "no daemon log line matches", expected=st.text)
            time.sleep(0.1)

    def qfile(self, st):
        seen = self.new_queue_files()
        if not seen:
            raise Fail(st.lineno, f"{st.op}: no message was queued in this transcript")
        newest = max(seen, key=seen.get)
        try:
            with open(newest, "rb") as f:
                data = f.read()
        except OSError as e:
            raise Fail(st.lineno, f"cannot read {newest}: {e}") from None
        m = st.arg.search(data)
        if st.op == "QFILE" and m is None:
            raise Fail(st.lineno, f"queue file {os.path.basename(newest)} does not match",
                       expected=st.text, got=data[:400])
        if st.op == "QFILE-NOT" and m is not None:
            raise Fail(st.lineno, f"queue file {os.path.basename(newest)} matches",
                       expected=st.text, got=m.group(0))


def flood(text, count):
    per = max(1, (1 << 20) // len(text))
    chunk = text * per
    left = count
    while left > 0:
        n = min(per, left)
        yield chunk if n == per else text * n
        left -= n


def run_transcript(t, daemon):
    """Returns None when it passed, or a failure text (first line: the reason)."""
    r = Run(t, daemon)
    try:
        r.run()
    except Fail as f:
        return format_fail(t, f, r.convo)
    except Exception as e:  # a runner bug must still be a visible failure
        return f"runner error: {type(e).__name__}: {e}\n" + convo_text(r.convo)
    lines = daemon.log_since(r.log_offset).splitlines()
    hits = [i for i, line in enumerate(lines) if SANITIZER_RE.search(line)]
    if hits:
        excerpt = lines[hits[0]:hits[0] + 20]
        return ("sanitizer report in the daemon log\n"
                + indent("\n".join(show(x, 200) for x in excerpt)))
    return None


def format_fail(t, f, convo):
    where = f"{os.path.relpath(t.path)}:{f.lineno}" if f.lineno else os.path.relpath(t.path)
    out = [f"{where}: {f.msg}"]
    if f.expected is not None:
        out.append(f"    expected: {f.expected}")
    if f.got is not None:
        out.append(f"    got:      {show(f.got, 300)}")
    return "\n".join(out) + "\n" + convo_text(convo)


def convo_text(convo, n=40):
    lines = convo[-n:]
    head = "    conversation so far" + (f" (last {n} events):" if len(convo) > n else ":")
    return "\n".join([head] + ["      " + x for x in lines])


def indent(text):
    return "\n".join("    " + x for x in text.split("\n"))


# ---------------------------------------------------------------- groups and main

print_lock = threading.Lock()


def report(results):
    with print_lock:
        for name, why in results:
            if why is None:
                print(f"ok {name}")
            else:
                first, _, rest = why.partition("\n")
                print(f"FAIL {name}: {first}")
                if rest:
                    print(rest)
        sys.stdout.flush()


def run_group(sluiced, key, transcripts, keep):
    results = []
    daemon = None
    pending = []     # (index in results) of transcripts run in the current daemon

    def finish_daemon():
        why = daemon.stop()
        if why:
            for i in pending:
                name, prev = results[i]
                results[i] = (name, f"daemon shutdown: {why}" if prev is None
                              else prev + f"\n    also, daemon shutdown: {why}")
        daemon.cleanup()

    for t in transcripts:
        if daemon is not None and not daemon.alive():
            finish_daemon()
            daemon = None
        if daemon is None:
            pending = []
            daemon = Daemon(sluiced, list(key[0]), keep, dict(key[1]))
            why = daemon.start()
            if why is not None:
                # The same configuration would fail the same way: fail the rest of the group now.
                for rest in transcripts[len(results):]:
                    results.append((rest.name, why))
                daemon = None
                break
        why = run_transcript(t, daemon)
        pending.append(len(results))
        results.append((t.name, why))
    if daemon is not None:
        finish_daemon()
    report(results)
    return results


def main():
    ap = argparse.ArgumentParser(description="Replay SMTP transcripts against sluiced.")
    ap.add_argument("--sluiced", required=True, help="path to the sluiced binary")
    ap.add_argument("--jobs", type=int, default=2, help="configurations run in parallel")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directories")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="an environment variable for every daemon (a transcript's own "
                         "# env: line wins); the names of those it reaches get a [NAME=VALUE] "
                         "suffix")
    ap.add_argument("files", nargs="*")
    args = ap.parse_args()

    files = args.files or sorted(glob.glob(os.path.join(HERE, "*.smtp")))
    transcripts = [Transcript(p) for p in files]
    for t in transcripts:
        for kv in args.env:
            name, sep, value = kv.partition("=")
            if not sep or not re.fullmatch(r"[A-Z_][A-Z0-9_]*", name):
                ap.error(f"--env takes NAME=VALUE, not {kv!r}")
            if name not in dict(t.env):
                t.env.append((name, value))
                t.name += f" [{kv}]"
    results = []
    groups = {}
    for t in transcripts:
        if t.error is not None:
            results.append((t.name, f"{os.path.relpath(t.path)}: parse error: {t.error}"))
        else:
            groups.setdefault(t.config_key(), []).append(t)
    report(results)
    sluiced = os.path.abspath(args.sluiced)
    if not (os.path.isfile(sluiced) and os.access(sluiced, os.X_OK)):
        missing = [(t.name, f"no daemon binary at {sluiced}")
                   for g in groups.values() for t in g]
        report(missing)
        results += missing
        groups = {}
    # The biggest groups first, so the parallel run finishes sooner.
    order = sorted(groups.items(), key=lambda kv: -len(kv[1]))
    with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as ex:
        futs = [(ex.submit(run_group, sluiced, k, g, args.keep), g) for k, g in order]
        for f, g in futs:
            try:
                results += f.result()
            except Exception as e:  # a crashed group still counts, transcript by transcript
                crashed = [(t.name, f"runner error: {type(e).__name__}: {e}") for t in g]
                report(crashed)
                results += crashed
    failed = sum(1 for _, why in results if why is not None)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
