"""Peers for the remote-delivery end-to-end tests (test_remote.py): a dnsmasq serving test
records on a loopback port, a DNS responder that answers SERVFAIL to everything, scripted
fake SMTP servers written here, and private Postfix and Dovecot instances started in a temp
directory on loopback high ports (never touching /etc/postfix or /etc/dovecot).

Everything started here is stopped by the fixture or object that started it, by its own
pid."""

import os
import pwd
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time

from e2e_helpers import free_port, read_maildir_new, wait_for

DNSMASQ = "/usr/sbin/dnsmasq"


def free_udp_port():
    """A loopback port free for UDP and for TCP (dnsmasq binds both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port


def dns_query(name, qtype=15, qid=0x1234):
    """A DNS query packet for name (RFC 1035 §4.1)."""
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack(">HH", qtype, 1)


def dns_answers(port, name):
    """True when something on 127.0.0.1:port answers a query for name."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.1)
        try:
            s.sendto(dns_query(name), ("127.0.0.1", port))
            return len(s.recv(512)) > 12
        except OSError:
            return False


def _stop(proc, timeout=5.0):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ---- DNS --------------------------------------------------------------------------------

class Dnsmasq:
    """dnsmasq answering .test from the given records only: records is a list of dnsmasq
    options ("--mx-host=remote.test,mx.remote.test,10", "--host-record=..."). Unknown
    names are NXDOMAIN, known names without the asked type NODATA."""

    def __init__(self, tmp, records):
        self.dir = str(tmp)
        os.makedirs(self.dir, exist_ok=True)
        # Another test's daemon may take the port between the check and dnsmasq's bind:
        # a few tries, each on a new port.
        for attempt in range(5):
            self.port = free_udp_port()
            self.log = open(os.path.join(self.dir, "dnsmasq.log"), "wb")
            args = [DNSMASQ, "--no-resolv", "--no-hosts", "--keep-in-foreground",
                    "--conf-file=/dev/null", "--port=%d" % self.port,
                    "--listen-address=127.0.0.1", "--bind-interfaces", "--user=root",
                    "--pid-file=%s/dnsmasq.pid" % self.dir, "--local=/test/"] + list(records)
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log,
                                         stderr=self.log)
            try:
                wait_for(lambda: self.proc.poll() is not None or
                         dns_answers(self.port, "x.test"), 10.0, what="dnsmasq")
            except AssertionError:
                self.stop()
                raise
            if self.proc.poll() is None:
                return
            self.log.close()
            if "Address already in use" not in self.log_text():
                break
        raise AssertionError("dnsmasq exited: %s" % self.log_text())

    @property
    def server(self):
        """The value of sluice.conf's delivery `dns`."""
        return "127.0.0.1@%d" % self.port

    def log_text(self):
        with open(os.path.join(self.dir, "dnsmasq.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        _stop(self.proc)
        self.log.close()


class ServfailDns:
    """A UDP responder that answers every query with SERVFAIL (RFC 1035 §4.1.1 RCODE 2)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.queries = 0
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def server(self):
        return "127.0.0.1@%d" % self.port

    def _run(self):
        while not self.stopping:
            try:
                q, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(q) < 12:
                continue
            self.queries += 1
            (qid,) = struct.unpack(">H", q[:2])
            # The question section is echoed back as it came.
            i = 12
            while i < len(q) and q[i] != 0:
                i += q[i] + 1
            question = q[12:i + 5]
            rd = q[2] & 0x01
            head = struct.pack(">HBBHHHH", qid, 0x80 | rd, 0x80 | 2, 1, 0, 0, 0)
            try:
                self.sock.sendto(head + question, peer)
            except OSError:
                pass

    def stop(self):
        self.stopping = True
        self.thread.join(2.0)
        self.sock.close()


# ---- TLS material -----------------------------------------------------------------------

def make_cert(directory, cn="mx.remote.test"):
    """A self-signed P-256 certificate and key in directory; returns (cert, key)."""
    cert = os.path.join(directory, "peer-cert.pem")
    key = os.path.join(directory, "peer-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=%s" % cn, "-addext",
                    "subjectAltName=DNS:%s" % cn], check=True, capture_output=True)
    return cert, key


# ---- a scripted SMTP server -------------------------------------------------------------

CLOSE = "<close>"          # hook answer: close the connection without replying
CLOSE_IN_DATA = "<close in data>"  # to "data": send 354, read some of the body, then close


class Txn:
    """One transaction as the fake server saw it."""

    def __init__(self, conn, tls):
        self.conn = conn    # index of the connection it came on
        self.tls = tls      # the connection was TLS by then
        self.mail = None    # the MAIL command line
        self.rcpts = []     # RCPT command lines that got a 2xx
        self.wire = b""     # the data as sent: dot-stuffed (DATA) or the chunks (BDAT)
        self.message = b""  # the message after dot-unstuffing
        self.verb = None    # "DATA" or "BDAT"


class Session:
    def __init__(self, server, sock, index):
        self.server = server
        self.sock = sock
        self.index = index
        self.buf = b""
        self.tls = False
        self.lines = []     # (tls, line) of every command line received, in order
        self.txn = None

    def send(self, text):
        if isinstance(text, str):
            text = text.encode()
        self.sock.sendall(text)

    def reply(self, text):
        self.send(text.replace("\n", "\r\n") + "\r\n")

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            if len(self.buf) > 100000:
                raise EOFError
            self._fill()
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln

    def exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def data_until_dot(self):
        """The dot-stuffed data up to (not including) the final ".\\r\\n"."""
        while True:
            if self.buf.startswith(b".\r\n"):
                self.buf = self.buf[3:]
                return b""
            i = self.buf.find(b"\r\n.\r\n")
            if i >= 0:
                out, self.buf = self.buf[:i + 2], self.buf[i + 5:]
                return out
            self._fill()


def unstuff(wire):
    lines = wire.split(b"\r\n")
    return b"\r\n".join(ln[1:] if ln.startswith(b".") else ln for ln in lines)


class FakeSmtp:
    """A scripted SMTP server on 127.0.0.1. hook(event, session, arg) answers each event
    (None: the default reply; CLOSE; (reply text, CLOSE); or reply text, lines separated by "\\n", or bytes sent
    exactly as given). Events: "connect", "ehlo", "helo", "starttls", "auth", "mail",
    "rcpt", "data" (the 354), "end" (after the final dot or BDAT LAST; arg is the Txn),
    "bdat", "rset", "other". Records connections, command lines and transactions."""

    def __init__(self, hook=None, name="mx.remote.test", ehlo=("PIPELINING", "8BITMIME",
                 "ENHANCEDSTATUSCODES", "SIZE 50000000"), cert=None, auth=None,
                 starttls_extra=b"", starttls_extra_delay=0.0):
        self.hook = hook or (lambda ev, s, arg: None)
        self.name = name
        self.ehlo_keywords = list(ehlo)
        self.cert = cert            # (cert, key): STARTTLS offered
        self.auth = auth            # the expected AUTH PLAIN line: AUTH offered after TLS
        self.starttls_extra = starttls_extra  # J3: bytes sent with the STARTTLS 220
        self.starttls_extra_delay = starttls_extra_delay  # or this long after it
        self.lock = threading.Lock()
        self.connections = 0
        self.sessions = []
        self.txns = []
        self.errors = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopping:
            try:
                sock, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                idx = self.connections
                self.connections += 1
            sess = Session(self, sock, idx)
            self.sessions.append(sess)
            threading.Thread(target=self._serve, args=(sess,), daemon=True).start()

    def _answer(self, ev, sess, arg, default):
        r = self.hook(ev, sess, arg)
        if r is None:
            r = default
        if r == CLOSE:
            raise EOFError
        if isinstance(r, tuple):  # (reply, CLOSE): the reply, then the connection closes
            sess.reply(r[0])
            raise EOFError
        if isinstance(r, bytes):
            sess.send(r)
        elif r != CLOSE_IN_DATA:
            sess.reply(r)
        return r

    def _ehlo_reply(self, sess):
        kws = list(self.ehlo_keywords)
        if self.cert is not None and not sess.tls:
            kws.append("STARTTLS")
        if self.auth is not None and sess.tls:
            kws.append("AUTH PLAIN")
        lines = [self.name] + kws
        return "\n".join("250%s%s" % ("-" if i < len(lines) - 1 else " ", ln)
                         for i, ln in enumerate(lines))

    def _serve(self, sess):
        sess.sock.settimeout(30)
        try:
            self._answer("connect", sess, None, "220 %s ESMTP fake" % self.name)
            while True:
                ln = sess.line()
                sess.lines.append((sess.tls, ln))
                self._command(sess, ln)
        except (EOFError, OSError, ssl.SSLError):
            pass
        except Exception as e:  # a bug in a hook: the test sees it in errors
            self.errors.append(repr(e))
        finally:
            try:
                sess.sock.close()
            except OSError:
                pass

    def _command(self, sess, ln):
        up = ln.upper()
        verb = up.split(b" ", 1)[0]
        if verb in (b"EHLO", b"HELO", b"LHLO"):
            sess.txn = None
            if verb == b"HELO":
                self._answer("helo", sess, ln, "250 %s" % self.name)
            else:
                self._answer("ehlo", sess, ln, self._ehlo_reply(sess))
        elif verb == b"STARTTLS" and self.cert is not None and not sess.tls:
            if self.starttls_extra and not self.starttls_extra_delay:
                # One write, one segment: the client reads the injection with the 220.
                sess.send(b"220 2.0.0 Ready to start TLS\r\n" + self.starttls_extra)
            else:
                r = self._answer("starttls", sess, ln, "220 2.0.0 Ready to start TLS")
                if isinstance(r, str) and not r.startswith("220"):
                    return
            if self.starttls_extra and self.starttls_extra_delay:
                time.sleep(self.starttls_extra_delay)
                sess.send(self.starttls_extra)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.cert)
            # Bytes the client pipelined after STARTTLS would be the injection the other
            # way round; a client that waits leaves nothing here.
            assert not sess.buf, "client sent %r after STARTTLS" % sess.buf
            sess.sock = ctx.wrap_socket(sess.sock, server_side=True)
            sess.tls = True
        elif verb == b"AUTH":
            ok = self.auth is not None and sess.tls and ln == self.auth
            self._answer("auth", sess, ln, "235 2.7.0 ok" if ok else "535 5.7.8 no")
        elif verb == b"MAIL":
            sess.txn = Txn(sess.index, sess.tls)
            sess.txn.mail = ln
            r = self._answer("mail", sess, ln, "250 2.1.0 ok")
            if not str(r).startswith("2"):
                sess.txn = None
        elif verb == b"RCPT":
            r = self._answer("rcpt", sess, ln, "250 2.1.5 ok")
            if str(r).startswith("2") and sess.txn is not None:
                sess.txn.rcpts.append(ln)
        elif verb == b"DATA":
            ok = sess.txn is not None and sess.txn.rcpts
            r = self._answer("data", sess, ln, "354 go ahead" if ok else
                             "554 5.5.1 no valid recipients")
            if r == CLOSE_IN_DATA:
                sess.reply("354 go ahead")
                sess._fill()
                raise EOFError
            if not str(r).startswith("354"):
                return
            wire = sess.data_until_dot()
            txn = sess.txn or Txn(sess.index, sess.tls)
            txn.wire, txn.message, txn.verb = wire, unstuff(wire), "DATA"
            sess.txn = None
            with self.lock:
                self.txns.append(txn)
            self._answer("end", sess, txn, "250 2.0.0 ok: queued")
        elif verb == b"BDAT":
            parts = ln.split()
            n = int(parts[1])
            last = len(parts) > 2 and parts[2].upper() == b"LAST"
            chunk = sess.exact(n)
            txn = sess.txn or Txn(sess.index, sess.tls)
            sess.txn = txn
            txn.wire += chunk
            txn.verb = "BDAT"
            if not last:
                self._answer("bdat", sess, ln, "250 2.0.0 chunk ok")
                return
            txn.message = txn.wire
            sess.txn = None
            with self.lock:
                self.txns.append(txn)
            self._answer("end", sess, txn, "250 2.0.0 ok: queued")
        elif verb == b"RSET":
            sess.txn = None
            self._answer("rset", sess, ln, "250 2.0.0 ok")
        elif verb == b"QUIT":
            sess.reply("221 2.0.0 bye")
            raise EOFError
        else:
            self._answer("other", sess, ln, "250 2.0.0 ok")

    def wait_txns(self, n, timeout=15.0):
        return wait_for(lambda: list(self.txns) if len(self.txns) >= n else None, timeout,
                        what="%d transaction(s) at the fake server" % n)

    def stop(self):
        self.stopping = True
        self.thread.join(2.0)
        self.sock.close()
        for s in self.sessions:
            try:
                s.sock.close()
            except OSError:
                pass


# ---- Postfix ----------------------------------------------------------------------------

class Postfix:
    """A private Postfix 3.x instance: smtpd on 127.0.0.1:port only, mail for domain
    accepted for any local part and put on hold, so the queue file stays there to be read
    back with postcat. Its directory is a fresh mkdtemp (mode 0755: the postfix user must
    reach its queue), removed by stop()."""

    def __init__(self, domain="remote.test", hostname="mx.remote.test"):
        self.dir = tempfile.mkdtemp(prefix="sluice-pf.")
        os.chmod(self.dir, 0o755)
        self.etc = os.path.join(self.dir, "etc")
        self.queue = os.path.join(self.dir, "queue")
        data = os.path.join(self.dir, "data")
        for p in (self.etc, self.queue, data):
            os.makedirs(p)
        shutil.chown(data, "postfix")
        self.port = free_port()
        self.log = os.path.join(self.dir, "postfix.log")
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write("compatibility_level = 3.6\n"
                    "queue_directory = %s\n"
                    "data_directory = %s\n"
                    "mail_owner = postfix\n"
                    "setgid_group = postdrop\n"
                    "inet_interfaces = loopback-only\n"
                    "inet_protocols = ipv4\n"
                    "myhostname = %s\n"
                    "mydestination = %s\n"
                    "mynetworks = 127.0.0.0/8\n"
                    "local_recipient_maps =\n"
                    "alias_maps =\n"
                    "alias_database =\n"
                    "smtpd_recipient_restrictions = check_recipient_access static:HOLD, "
                    "permit_mynetworks, reject_unauth_destination\n"
                    "smtpd_peername_lookup = no\n"
                    "smtpd_tls_security_level = none\n"
                    "maillog_file = %s\n"
                    "maillog_file_prefixes = %s\n"
                    % (self.queue, data, hostname, domain, self.log, self.dir))
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write("127.0.0.1:%d inet n - n - - smtpd\n" % self.port)
            for row in ("cleanup unix n - n - 0 cleanup", "qmgr unix n - n 300 1 qmgr",
                        "rewrite unix - - n - - trivial-rewrite",
                        "bounce unix - - n - 0 bounce", "defer unix - - n - 0 bounce",
                        "trace unix - - n - 0 bounce", "verify unix - - n - 1 verify",
                        "proxymap unix - - n - - proxymap", "showq unix n - n - - showq",
                        "error unix - - n - - error", "retry unix - - n - - error",
                        "discard unix - - n - - discard", "local unix - n n - - local",
                        "anvil unix - - n - 1 anvil", "scache unix - - n - 1 scache",
                        "postlog unix-dgram n - n - 1 postlogd"):
                f.write(row + "\n")
        try:
            self._pf("check")
            self._pf("start")
            wait_for(lambda: _port_open(self.port), 20.0, what="postfix smtpd")
        except (AssertionError, subprocess.TimeoutExpired):
            self.stop()
            raise

    def _pf(self, *args):
        r = subprocess.run(["postfix", "-c", self.etc] + list(args), capture_output=True,
                           timeout=60)
        if r.returncode != 0:
            raise AssertionError("postfix %s: %s%s" % (args, r.stdout.decode(),
                                                       r.stderr.decode()))

    def held(self):
        """Queue ids of the messages on hold."""
        hold = os.path.join(self.queue, "hold")
        try:
            return sorted(os.listdir(hold))
        except FileNotFoundError:
            return []

    def message(self, qid):
        """(envelope text, header and body bytes with LF line ends) of a held message."""
        env = subprocess.run(["postcat", "-c", self.etc, "-e", "-q", qid], capture_output=True,
                             timeout=30, check=True).stdout
        msg = subprocess.run(["postcat", "-c", self.etc, "-h", "-b", "-q", qid],
                             capture_output=True, timeout=30, check=True).stdout
        return env.decode("utf-8", "replace"), msg

    def log_text(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def stop(self):
        pid = None
        try:
            with open(os.path.join(self.queue, "pid", "master.pid")) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            pass
        if pid is not None:
            subprocess.run(["postfix", "-c", self.etc, "stop"], capture_output=True,
                           timeout=60)
            try:
                wait_for(lambda: not _alive(pid), 15.0, what="postfix to stop")
            except AssertionError:
                subprocess.run(["postfix", "-c", self.etc, "abort"], capture_output=True,
                               timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.settimeout(2)
            return s.recv(100).startswith(b"220")
    except OSError:
        return False


# ---- Dovecot ----------------------------------------------------------------------------

class Dovecot:
    """A private Dovecot serving LMTP only, on 127.0.0.1:port and the unix socket at
    socket, for the users given, delivering into Maildirs under its own directory (as
    nobody: Dovecot refuses uid 0 for mail). Stopped by
    stop(), which removes the directory."""

    def __init__(self, users):
        self.dir = tempfile.mkdtemp(prefix="sluice-dc.")
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.mail = os.path.join(self.dir, "mail")
        run = os.path.join(self.dir, "run")
        os.makedirs(self.mail)
        os.makedirs(run)
        self.log = os.path.join(self.dir, "dovecot.log")
        self.socket = os.path.join(run, "lmtp")
        # Dovecot refuses uid 0 for mail: the mail belongs to nobody.
        nobody = pwd.getpwnam("nobody")
        os.chown(self.mail, nobody.pw_uid, nobody.pw_gid)
        with open(os.path.join(self.dir, "users"), "w") as f:
            for u in users:
                f.write("%s::%d:%d::%s/%s\n" % (u, nobody.pw_uid, nobody.pw_gid, self.mail, u))
        self.conf = os.path.join(self.dir, "dovecot.conf")
        with open(self.conf, "w") as f:
            f.write("""base_dir = %(run)s
state_dir = %(dir)s/state
log_path = %(log)s
protocols = lmtp
listen = 127.0.0.1
ssl = no
default_internal_user = dovecot
default_login_user = dovenull
mail_location = maildir:~/Maildir
lmtp_save_to_detail_mailbox = no
auth_username_format = %%Lu
passdb {
  driver = passwd-file
  args = %(dir)s/users
}
userdb {
  driver = passwd-file
  args = %(dir)s/users
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = %(port)d
  }
  unix_listener lmtp {
    mode = 0666
  }
}
service anvil {
  chroot =
}
""" % {"run": run, "dir": self.dir, "log": self.log, "port": self.port})
        os.makedirs(os.path.join(self.dir, "state"))
        self.proc = subprocess.Popen(["dovecot", "-F", "-c", self.conf],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "dovecot.err"), "wb"))
        try:
            wait_for(lambda: self.proc.poll() is not None or _port_open(self.port), 20.0,
                     what="dovecot lmtp")
            assert self.proc.poll() is None, "dovecot exited: %s" % self.log_text()
        except AssertionError:
            self.stop()
            raise

    def delivered(self, user):
        return read_maildir_new(os.path.join(self.mail, user, "Maildir", "new"))

    def log_text(self):
        out = ""
        for p in (self.log, os.path.join(self.dir, "dovecot.err")):
            try:
                with open(p, "rb") as f:
                    out += f.read().decode("utf-8", "replace")
            except FileNotFoundError:
                pass
        return out

    def stop(self):
        _stop(self.proc, 10.0)
        shutil.rmtree(self.dir, ignore_errors=True)
