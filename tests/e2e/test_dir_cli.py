"""`sluice domain|user|alias|relocated ...` (src/cli/dir.c) against a real SQLite store.

Each test gets a configuration with `spool <tmp>/spool` and `directory { sqlite <tmp>/dir.db }`
(the daemon need not run) and drives the built `sluice` binary: round trips of every command,
the exit statuses of sysexits(3) (64 usage, 65 bad data, 67 no such user or domain, 69 the
files backend, 73 exists), passwords from --stdin and from a terminal (a pty), the stored
crypt strings ($y$ / $argon2id$, checked with libcrypt and libsodium) and SCRAM-SHA-256
credentials (RFC 5802 §3, recomputed here), and that a password is never printed."""

import base64
import ctypes
import ctypes.util
import hashlib
import hmac
import os
import pty
import pwd
import select
import signal
import sqlite3
import subprocess
import tempfile
import termios
import time

import pytest

from e2e_helpers import SANITIZER_MARKERS, SLUICE, free_port

FP = ":".join(["AB", "cd"] * 16)  # a SHA-256 fingerprint as openssl prints it, mixed case
FP_CANON = "abcd" * 16
FP2 = "0123456789abcdef" * 4


@pytest.fixture
def env():
    d = tempfile.mkdtemp(prefix="dc", dir="/tmp")
    conf = os.path.join(d, "sluice.conf")
    write_conf(conf, d, "directory { sqlite %s/dir.db }\n" % d)
    yield {"dir": d, "conf": conf, "db": os.path.join(d, "dir.db")}
    subprocess.run(["rm", "-rf", d])


def write_conf(path, d, extra):
    with open(path, "w") as f:
        f.write("hostname mx.test\nspool %s/spool\n"
                "listen smtp { address 127.0.0.1:%d }\n"
                "listen submission { address 127.0.0.1:%d }\n"
                "%s" % (d, free_port(), free_port(), extra))


def run(env, *args, stdin=None, conf=None):
    """Run `sluice -c CONF ARGS...`; stdin: bytes for --stdin (else /dev/null). No
    controlling terminal, so a prompt can only come from the pty tests."""
    r = subprocess.run([SLUICE, "-c", conf or env["conf"]] + list(args),
                       input=stdin if stdin is not None else b"", capture_output=True,
                       timeout=60, start_new_session=True)
    out, err = r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
    for m in SANITIZER_MARKERS:
        assert m not in err, err
    return r.returncode, out, err


def ok(env, *args, stdin=None):
    rc, out, err = run(env, *args, stdin=stdin)
    assert rc == 0, (args, rc, err)
    assert err == ""
    return out


def fails(env, code, *args, stdin=None, why=None):
    rc, out, err = run(env, *args, stdin=stdin)
    assert rc == code, (args, rc, out, err)
    assert out == ""
    if code != 64:
        assert err.startswith("sluice: ") and err.endswith("\n") and err.count("\n") == 1, err
    if why is not None:
        assert why in err, err
    return err


def rows(out):
    return [line.split("\t") for line in out.splitlines()]


def query(env, sql, *params):
    con = sqlite3.connect(env["db"])
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def mailbox(env, address):
    r = query(env, "SELECT password_hash, scram FROM mailboxes WHERE address = ?", address)
    assert len(r) == 1, r
    return r[0]


def setup_domain(env, *domains):
    for d in domains or ("example.com",):
        ok(env, "domain", "add", d)


def add_user(env, address, password=b"correct horse", *extra):
    ok(env, "user", "add", address, "--stdin", *extra, stdin=password + b"\n")


# ---- checking what is stored ---------------------------------------------------------------

def scram_matches(text, password):
    """RFC 5802 §3: StoredKey = H(HMAC(SaltedPassword, "Client Key")), ServerKey =
    HMAC(SaltedPassword, "Server Key"), SaltedPassword = PBKDF2-HMAC-SHA-256(password)."""
    assert text.startswith("SCRAM-SHA-256$10000:"), text
    head, keys = text.split("$")[1:]
    iterations, salt = head.split(":")
    stored, server = keys.split(":")
    assert len(base64.b64decode(salt)) == 16
    salted = hashlib.pbkdf2_hmac("sha256", password, base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return (hashlib.sha256(client_key).digest() == base64.b64decode(stored)
            and server_key == base64.b64decode(server))


def crypt_matches(hash_, password):
    if hash_.startswith("$argon2id$"):
        name = ctypes.util.find_library("sodium")
        if name is None:
            pytest.skip("no libsodium to check an argon2id hash with")
        lib = ctypes.CDLL(name)
        assert lib.sodium_init() >= 0
        return lib.crypto_pwhash_str_verify(hash_.encode(), password,
                                            ctypes.c_ulonglong(len(password))) == 0
    lib = ctypes.CDLL(ctypes.util.find_library("crypt"))
    lib.crypt.restype = ctypes.c_char_p
    got = lib.crypt(password, hash_.encode())
    return got is not None and got.decode() == hash_


def password_matches(env, address, password):
    h, s = mailbox(env, address)
    return crypt_matches(h, password) and scram_matches(s, password)


# ---- domain ------------------------------------------------------------------------------

def test_domain_add_list_catchall_del(env):
    assert ok(env, "domain", "list") == ""
    assert ok(env, "domain", "add", "Example.COM") == ""
    ok(env, "domain", "add", "b.example")
    fails(env, 73, "domain", "add", "example.com", why="domain add example.com: already exists")
    assert rows(ok(env, "domain", "list")) == [["b.example", ""], ["example.com", ""]]
    fails(env, 65, "domain", "catchall", "example.com", "Postmaster@Example.com",
          why="the catch-all must be a mailbox or an alias here")
    ok(env, "alias", "add", "postmaster@example.com", "root@elsewhere.example")
    ok(env, "domain", "catchall", "example.com", "Postmaster@Example.com")
    assert rows(ok(env, "domain", "list")) == [["b.example", ""],
                                                ["example.com", "Postmaster@example.com"]]
    ok(env, "domain", "catchall", "example.com", "none")
    assert rows(ok(env, "domain", "list"))[1] == ["example.com", ""]
    fails(env, 67, "domain", "catchall", "nowhere.example", "a@example.com")
    fails(env, 65, "domain", "catchall", "example.com", "not an address")
    ok(env, "domain", "del", "B.EXAMPLE")
    fails(env, 67, "domain", "del", "b.example", why="not found")
    assert rows(ok(env, "domain", "list")) == [["example.com", ""]]


@pytest.mark.parametrize("bad", ["", "a..b", "exa mple.com", "a_b.example", "[192.0.2.1]",
                                 "a@b.example", "x" * 256, "ex\x1b[31m.com"])
def test_domain_malformed_is_65(env, bad):
    err = fails(env, 65, "domain", "add", bad, why="malformed domain")
    assert "\x1b" not in err  # control bytes of the argument are not echoed raw
    assert rows(ok(env, "domain", "list")) == []


def test_domain_del_refused_while_it_has_entries(env):
    setup_domain(env)
    add_user(env, "bob@example.com")
    fails(env, 65, "domain", "del", "example.com", why="still has entries")
    ok(env, "user", "del", "bob@example.com")
    ok(env, "domain", "del", "example.com")


# ---- user --------------------------------------------------------------------------------

def test_user_add_list_enable_disable_del(env):
    setup_domain(env, "example.com", "example.org")
    add_user(env, "Bob@EXAMPLE.com", b"pw-bob", "--name", "Bob Builder")
    add_user(env, "alice@example.com", b"pw-alice")
    ok(env, "user", "add", "carol@example.org", "--stdin", "--name", "Carol \u00e9",
       stdin=b"pw-carol\n")
    assert rows(ok(env, "user", "list")) == [
        ["alice@example.com", "enabled", ""],
        ["Bob@example.com", "enabled", "Bob Builder"],
        ["carol@example.org", "enabled", "Carol \u00e9"],
    ]
    assert rows(ok(env, "user", "list", "EXAMPLE.org")) == [["carol@example.org", "enabled",
                                                              "Carol \u00e9"]]
    ok(env, "user", "disable", "bob@example.com")
    assert rows(ok(env, "user", "list", "example.com"))[1] == ["Bob@example.com", "disabled",
                                                               "Bob Builder"]
    ok(env, "user", "enable", "BOB@example.com")
    assert rows(ok(env, "user", "list", "example.com"))[1][1] == "enabled"
    fails(env, 67, "user", "enable", "nobody@example.com")
    fails(env, 67, "user", "disable", "nobody@example.com")
    fails(env, 73, "user", "add", "bob@example.com", "--stdin", stdin=b"x\n",
          why="user add bob@example.com: already exists")
    ok(env, "user", "del", "bob@example.com")
    fails(env, 67, "user", "del", "bob@example.com")
    assert [r[0] for r in rows(ok(env, "user", "list"))] == ["alice@example.com",
                                                             "carol@example.org"]


def test_user_add_in_unknown_domain_is_67_and_malformed_is_65(env):
    setup_domain(env)
    fails(env, 67, "user", "add", "bob@nowhere.example", "--stdin", stdin=b"x\n",
          why="no such domain")
    for bad in ["noat", "@example.com", "a b@example.com", "a@b@example.com",
                "bob@exa_mple.com"]:
        fails(env, 65, "user", "add", bad, "--stdin", stdin=b"x\n", why="malformed address")
        fails(env, 65, "user", "del", bad)
        fails(env, 65, "user", "passwd", bad, "--stdin", stdin=b"x\n")
    fails(env, 67, "user", "list", "nowhere.example", why="no such domain")
    fails(env, 65, "user", "list", "a..b", why="malformed domain")
    # A name is shown in VRFY answers and listings: no control characters, valid UTF-8.
    for name in ["tab\there", "nl\nhere", "esc\x1b[2J"]:
        fails(env, 65, "user", "add", "bob@example.com", "--stdin", "--name", name,
              stdin=b"x\n")
    fails(env, 65, "user", "add", "bob@example.com", "--stdin", "--name", "x" * 300,
          stdin=b"x\n")
    assert ok(env, "user", "list") == ""


def test_user_add_stores_yescrypt_by_default_and_scram(env):
    setup_domain(env)
    add_user(env, "bob@example.com", b"s3cret")
    h, s = mailbox(env, "bob@example.com")
    assert h.startswith("$y$"), h
    assert s.startswith("SCRAM-SHA-256$10000:"), s
    assert password_matches(env, "bob@example.com", b"s3cret")
    assert not password_matches(env, "bob@example.com", b"s3cret ")


def test_user_add_argon2id_and_explicit_yescrypt(env):
    setup_domain(env)
    add_user(env, "a@example.com", b"pw-a", "--scheme", "argon2id")
    add_user(env, "y@example.com", b"pw-y", "--scheme", "yescrypt")
    assert mailbox(env, "a@example.com")[0].startswith("$argon2id$")
    assert mailbox(env, "y@example.com")[0].startswith("$y$")
    assert password_matches(env, "a@example.com", b"pw-a")
    assert password_matches(env, "y@example.com", b"pw-y")
    fails(env, 64, "user", "add", "z@example.com", "--stdin", "--scheme", "md5", stdin=b"x\n")
    fails(env, 64, "user", "add", "z@example.com", "--stdin", "--scheme", stdin=b"x\n")


def test_user_passwd_replaces_hash_and_scram(env):
    setup_domain(env)
    add_user(env, "bob@example.com", b"old password")
    h1, s1 = mailbox(env, "bob@example.com")
    ok(env, "user", "passwd", "BOB@example.com", "--stdin", "--scheme", "argon2id",
       stdin=b"new password\n")
    h2, s2 = mailbox(env, "bob@example.com")
    assert h2.startswith("$argon2id$") and h2 != h1 and s2 != s1
    assert password_matches(env, "bob@example.com", b"new password")
    assert not password_matches(env, "bob@example.com", b"old password")
    # Same password again: a fresh salt, so different stored values.
    ok(env, "user", "passwd", "bob@example.com", "--stdin", stdin=b"new password\n")
    h3, s3 = mailbox(env, "bob@example.com")
    assert h3 != h2 and s3.split("$")[1] != s2.split("$")[1]
    fails(env, 67, "user", "passwd", "nobody@example.com", "--stdin", stdin=b"x\n",
          why="no such mailbox")
    fails(env, 67, "user", "passwd", "bob@nowhere.example", "--stdin", stdin=b"x\n")


def test_user_passwd_of_an_alias_or_catchall_address_is_67(env):
    setup_domain(env)
    add_user(env, "bob@example.com")
    ok(env, "alias", "add", "team@example.com", "bob@example.com")
    ok(env, "domain", "catchall", "example.com", "bob@example.com")
    before = mailbox(env, "bob@example.com")
    fails(env, 67, "user", "passwd", "team@example.com", "--stdin", stdin=b"x\n")
    fails(env, 67, "user", "passwd", "random@example.com", "--stdin", stdin=b"x\n")
    assert mailbox(env, "bob@example.com") == before
    fails(env, 73, "user", "add", "team@example.com", "--stdin", stdin=b"x\n",
          why="an alias has that address")


@pytest.mark.parametrize("data,why", [
    (b"", "no password given"),
    (b"\n", "empty password"),
    (b"\r\n", "empty password"),
    (b"a\x00b\n", "NUL"),
    (b"x" * 512 + b"\n", "too long"),
    (b"x" * 5000, "too long"),
])
def test_stdin_password_refused(env, data, why):
    setup_domain(env)
    err = fails(env, 65, "user", "add", "bob@example.com", "--stdin", stdin=data, why=why)
    assert "xxxx" not in err
    assert ok(env, "user", "list") == ""


@pytest.mark.parametrize("data,password", [
    (b"pw\n", b"pw"),
    (b"pw\r\n", b"pw"),
    (b"pw", b"pw"),                      # no newline at the end of input
    (b"pw\nsecond line\n", b"pw"),       # one line only
    (b" with spaces \n", b" with spaces "),
    (b"x" * 511 + b"\r\n", b"x" * 511),  # SASL_PASSWORD_MAX exactly
    ("p\u00e4ss".encode() + b"\n", "p\u00e4ss".encode()),
])
def test_stdin_password_line(env, data, password):
    setup_domain(env)
    ok(env, "user", "add", "bob@example.com", "--stdin", stdin=data)
    assert password_matches(env, "bob@example.com", password)


@pytest.mark.parametrize("data", [b"tab\there\n", b"bell\x07\n", b"\xff\xfe\n", b"\xc2\xad\n"],
                         ids=["tab", "bell", "not_utf8", "only_soft_hyphen"])
def test_rfc4013_password_saslprep_refuses_is_exit_65(env, data):
    """SASLprep prohibits ASCII controls (RFC 4013 §2.3, RFC 3454 C.2.1), needs UTF-8, and a
    password that prepares to nothing is no password."""
    setup_domain(env)
    r = subprocess.run([SLUICE, "-c", env["conf"], "user", "add", "bob@example.com", "--stdin"],
                       input=data, capture_output=True, timeout=30)
    assert r.returncode == 65 and b"SASLprep" in r.stderr, r
    assert ok(env, "user", "list") == ""


def test_endless_stdin_line_is_refused_not_read_forever(env):
    setup_domain(env)
    with open("/dev/zero", "rb") as zero:
        r = subprocess.run([SLUICE, "-c", env["conf"], "user", "add", "bob@example.com",
                            "--stdin"], stdin=zero, capture_output=True, timeout=30)
    assert r.returncode == 65 and b"NUL" in r.stderr


def test_without_stdin_and_without_terminal_is_refused(env):
    setup_domain(env)
    fails(env, 65, "user", "add", "bob@example.com", stdin=b"pw\npw\n", why="--stdin")
    assert ok(env, "user", "list") == ""


def test_password_never_printed(env):
    setup_domain(env)
    secret = b"Tr0ub4dor&3-never-shown"
    outs = []
    for args, data in [
        (["user", "add", "bob@example.com", "--stdin"], secret + b"\n"),
        (["user", "add", "bob@example.com", "--stdin"], secret + b"\n"),        # exists
        (["user", "add", "x@nowhere.example", "--stdin"], secret + b"\n"),      # no domain
        (["user", "add", "eve@example.com", "--stdin"], secret + b"\x00\n"),    # NUL
        (["user", "add", "eve@example.com", "--stdin"], secret * 40 + b"\n"),   # too long
        (["user", "passwd", "bob@example.com", "--stdin"], secret + b"2\n"),
        (["user", "passwd", "nobody@example.com", "--stdin"], secret + b"\n"),
        (["user", "list"], b""),
    ]:
        rc, out, err = run(env, *args, stdin=data)
        outs.append(out + err)
    for text in outs:
        assert "Tr0ub4dor" not in text, text
    for name in os.listdir(env["dir"]):
        if name.startswith("dir.db"):
            with open(os.path.join(env["dir"], name), "rb") as f:
                assert b"Tr0ub4dor" not in f.read()
    assert password_matches(env, "bob@example.com", secret + b"2")


# ---- the terminal ------------------------------------------------------------------------

def run_pty(env, args, answers, timeout=30):
    """Run sluice on a new pty as its controlling terminal; send each answer after the
    next prompt ("Password for ...: " then "Again: "). Returns (status, all output)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(SLUICE, [SLUICE, "-c", env["conf"]] + args)
    out = b""
    deadline = time.monotonic() + timeout
    prompts = [b"Password for ", b"Again: "]
    sent, seen = 0, 0
    try:
        while time.monotonic() < deadline:
            if sent < len(answers):
                at = out.find(prompts[sent], seen)
                if at >= 0:
                    # Echo is off by now: the terminal is set before the prompt is written.
                    os.write(fd, answers[sent])
                    seen = at + len(prompts[sent])
                    sent += 1
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


def test_tty_prompt_twice_with_echo_off(env):
    setup_domain(env)
    rc, out = run_pty(env, ["user", "add", "bob@example.com"],
                      [b"hunter2-tty\n", b"hunter2-tty\n"])
    assert rc == 0, out
    assert "Password for bob@example.com: " in out and "Again: " in out
    assert "hunter2" not in out
    assert password_matches(env, "bob@example.com", b"hunter2-tty")


def test_tty_prompt_mismatch_is_65(env):
    setup_domain(env)
    rc, out = run_pty(env, ["user", "add", "bob@example.com"], [b"one-pass\n", b"two-pass\n"])
    assert rc == 65, out
    assert "do not match" in out and "one-pass" not in out and "two-pass" not in out
    assert ok(env, "user", "list") == ""


def test_tty_interrupt_restores_echo(env):
    setup_domain(env)
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(SLUICE, [SLUICE, "-c", env["conf"], "user", "add", "bob@example.com"])
    out = b""
    deadline = time.monotonic() + 30
    while b"Password for " not in out and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.2)[0]:
            out += os.read(fd, 4096)
    assert not termios.tcgetattr(fd)[3] & termios.ECHO  # off while it waits
    os.write(fd, b"half-typed\x03")  # ^C: SIGINT to the foreground process group
    _, status = os.waitpid(pid, 0)
    try:
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGINT, status
        assert termios.tcgetattr(fd)[3] & termios.ECHO  # and on again after it
    finally:
        os.close(fd)
    assert ok(env, "user", "list") == ""


# ---- alias -------------------------------------------------------------------------------

def test_alias_add_list_del(env):
    setup_domain(env, "example.com", "example.org")
    add_user(env, "bob@example.com")
    ok(env, "alias", "add", "team@example.com", "bob@example.com", "x@REMOTE.example",
       "a@remote.example")
    ok(env, "alias", "add", "org@example.org", "bob@example.com")
    assert rows(ok(env, "alias", "list")) == [
        ["org@example.org", "bob@example.com"],
        ["team@example.com", "a@remote.example"],
        ["team@example.com", "bob@example.com"],
        ["team@example.com", "x@remote.example"],
    ]
    assert rows(ok(env, "alias", "list", "example.org")) == [["org@example.org",
                                                             "bob@example.com"]]
    fails(env, 73, "alias", "add", "team@example.com", "BOB@example.com")
    fails(env, 73, "alias", "add", "bob@example.com", "x@remote.example",
          why="a mailbox has that address")
    fails(env, 65, "alias", "add", "self@example.com", "self@example.com")
    fails(env, 65, "alias", "add", "t@example.com", "|/bin/sh")  # K3: targets are addresses
    fails(env, 65, "alias", "add", "t@example.com", "/etc/passwd")
    fails(env, 67, "alias", "add", "t@nowhere.example", "bob@example.com", why="no such domain")
    fails(env, 67, "alias", "list", "nowhere.example")
    ok(env, "alias", "del", "team@example.com", "x@remote.example")
    fails(env, 67, "alias", "del", "team@example.com", "x@remote.example")
    assert len(rows(ok(env, "alias", "list", "example.com"))) == 2
    ok(env, "alias", "del", "team@example.com")
    fails(env, 67, "alias", "del", "team@example.com")
    assert rows(ok(env, "alias", "list")) == [["org@example.org", "bob@example.com"]]


def test_alias_add_stops_at_the_first_bad_target(env):
    setup_domain(env)
    err = fails(env, 65, "alias", "add", "t@example.com", "a@remote.example", "bad target",
                "c@remote.example")
    assert "t@example.com bad target" in err
    assert rows(ok(env, "alias", "list")) == [["t@example.com", "a@remote.example"]]


# ---- relocated ---------------------------------------------------------------------------

def test_relocated_add_list_del(env):
    setup_domain(env, "example.com", "example.org")
    ok(env, "relocated", "add", "old@example.com", "new@else.example", "--refuse")
    ok(env, "relocated", "add", "org@example.org", "o@else.example", "--forward")
    assert rows(ok(env, "relocated", "list")) == [
        ["old@example.com", "new@else.example", "refuse"],
        ["org@example.org", "o@else.example", "forward"],
    ]
    # Adding again replaces (RFC 5321 §3.4: 251 forwards, 551 refuses).
    ok(env, "relocated", "add", "OLD@example.com", "newer@else.example", "--forward")
    assert rows(ok(env, "relocated", "list", "example.com")) == [
        ["old@example.com", "newer@else.example", "forward"]]
    fails(env, 67, "relocated", "add", "x@nowhere.example", "y@else.example", "--forward")
    fails(env, 65, "relocated", "add", "me@example.com", "ME@example.com", "--forward")
    fails(env, 65, "relocated", "add", "bad address", "y@else.example", "--refuse")
    ok(env, "relocated", "del", "old@example.com")
    fails(env, 67, "relocated", "del", "old@example.com")
    assert len(rows(ok(env, "relocated", "list"))) == 1


# ---- certificates ------------------------------------------------------------------------

def test_user_cert_add_list_del(env):
    setup_domain(env, "example.com", "example.org")
    add_user(env, "bob@example.com")
    add_user(env, "carol@example.org")
    ok(env, "user", "cert", "add", "BOB@example.com", FP)
    ok(env, "user", "cert", "add", "carol@example.org", FP2)
    assert rows(ok(env, "user", "cert", "list")) == [[FP_CANON, "bob@example.com"],
                                                     [FP2, "carol@example.org"]]
    assert rows(ok(env, "user", "cert", "list", "example.org")) == [[FP2, "carol@example.org"]]
    fails(env, 73, "user", "cert", "add", "carol@example.org", FP_CANON)
    fails(env, 67, "user", "cert", "add", "nobody@example.com", "ee" * 32)
    for bad in ["ab" * 31, "ab" * 33, "zz" * 32, "ab " * 32]:
        fails(env, 65, "user", "cert", "add", "bob@example.com", bad, why="malformed fingerprint")
        fails(env, 65, "user", "cert", "del", bad)
    ok(env, "user", "cert", "del", FP2.upper())
    fails(env, 67, "user", "cert", "del", FP2)
    # Deleting the mailbox deletes its certificates.
    ok(env, "user", "del", "bob@example.com")
    assert ok(env, "user", "cert", "list") == ""
    assert query(env, "SELECT count(*) FROM certificates") == [(0,)]


# ---- arguments, configuration, the file --------------------------------------------------

@pytest.mark.parametrize("args", [
    ["domain"], ["domain", "add"], ["domain", "add", "a", "b"], ["domain", "list", "x"],
    ["domain", "catchall", "example.com"], ["domain", "frob", "x"],
    ["user"], ["user", "add"], ["user", "add", "a@b.c", "d@e.f"], ["user", "add", "a@b.c", "--x"],
    ["user", "add", "a@b.c", "--name"], ["user", "add", "a@b.c", "--stdin", "--stdin"],
    ["user", "add", "a@b.c", "--password", "pw"], ["user", "passwd", "a@b.c", "--name", "n"],
    ["user", "del"], ["user", "list", "a", "b"], ["user", "enable"], ["user", "disable", "a", "b"],
    ["user", "cert"], ["user", "cert", "add", "a@b.c"], ["user", "cert", "del"],
    ["user", "cert", "list", "a", "b"], ["user", "cert", "frob"],
    ["alias", "add", "a@b.c"], ["alias", "del"], ["alias", "del", "a", "b", "c"],
    ["alias", "list", "a", "b"], ["alias", "add", "a@b.c", "d@e.f", "--stdin"],
    ["relocated", "add", "a@b.c", "d@e.f"], ["relocated", "add", "a@b.c", "d@e.f", "--forward",
                                             "--refuse"],
    ["relocated", "add", "a@b.c", "--forward"], ["relocated", "del"],
    ["relocated", "list", "a", "b"],
])
def test_usage_errors_are_64_and_touch_nothing(env, args):
    rc, out, err = run(env, *args)
    assert rc == 64, (args, rc, err)
    assert out == "" and err.startswith("usage: ")
    assert not os.path.exists(env["db"])


def test_double_dash_ends_options(env):
    setup_domain(env)
    ok(env, "user", "add", "--stdin", "--", "-dash@example.com", stdin=b"pw\n")
    assert rows(ok(env, "user", "list"))[0][0] == "-dash@example.com"


def test_files_backend_is_69(env):
    conf = os.path.join(env["dir"], "files.conf")
    with open(os.path.join(env["dir"], "mailboxes"), "w") as f:
        f.write("alice@example.com\n")
    write_conf(conf, env["dir"], "domain example.com\ndirectory { mailboxes %s/mailboxes }\n"
               % env["dir"])
    for args in (["domain", "list"], ["user", "list"], ["alias", "add", "a@example.com",
                                                        "b@example.com"]):
        rc, out, err = run(env, *args, conf=conf)
        assert rc == 69, (rc, err)
        assert err.startswith("sluice: directory: ") and "files backend" in err


def test_bad_configuration_is_78(env):
    conf = os.path.join(env["dir"], "bad.conf")
    with open(conf, "w") as f:
        f.write("no-such-statement yes\n")
    rc, out, err = run(env, "domain", "list", conf=conf)
    assert rc == 78 and "bad.conf:1" in err


def test_database_is_created_mode_0600_with_its_schema(env):
    ok(env, "domain", "list")
    assert os.stat(env["db"]).st_mode & 0o777 == 0o600
    assert query(env, "PRAGMA user_version") == [(1,)]
    cols = [r[1] for r in query(env, "PRAGMA table_info(mailboxes)")]
    assert "scram" in cols


def test_default_path_is_under_the_spool(env):
    conf = os.path.join(env["dir"], "default.conf")
    write_conf(conf, env["dir"], "")
    os.makedirs(os.path.join(env["dir"], "spool"))
    rc, out, err = run(env, "domain", "add", "example.com", conf=conf)
    assert rc == 0, err
    path = os.path.join(env["dir"], "spool", "directory.db")
    assert os.stat(path).st_mode & 0o777 == 0o600
    rc, out, err = run(env, "domain", "list", conf=conf)
    assert rows(out) == [["example.com", ""]]


def test_unopenable_database_is_74(env):
    conf = os.path.join(env["dir"], "nodir.conf")
    write_conf(conf, env["dir"], "directory { sqlite %s/no/such/dir/dir.db }\n" % env["dir"])
    rc, out, err = run(env, "domain", "list", conf=conf)
    assert rc == 74 and err.startswith("sluice: directory ")


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_root_gives_a_new_database_to_the_daemon_user(env):
    nobody = pwd.getpwnam("nobody")
    conf = os.path.join(env["dir"], "user.conf")
    write_conf(conf, env["dir"], "user nobody\ndirectory { sqlite %s/dir.db }\n" % env["dir"])
    rc, out, err = run(env, "domain", "add", "example.com", conf=conf)
    assert rc == 0, err
    st = os.stat(env["db"])
    assert (st.st_uid, st.st_gid) == (nobody.pw_uid, nobody.pw_gid)
    # A file that already exists keeps its owner.
    os.chown(env["db"], 0, 0)
    rc, out, err = run(env, "domain", "add", "example.org", conf=conf)
    assert rc == 0, err
    assert os.stat(env["db"]).st_uid == 0


# ---- quotas ------------------------------------------------------------------------------

def stored_quota(env, address):
    return query(env, "SELECT quota FROM mailboxes WHERE address = ?", address)[0][0]


def test_user_quota_add_set_list_none(env):
    setup_domain(env)
    add_user(env, "bob@example.com", b"pw", "--quota", "500M", "--name", "Bob")
    add_user(env, "alice@example.com", b"pw")
    # The quota is a fourth column only where there is one, in the form `user quota` takes.
    assert rows(ok(env, "user", "list")) == [["alice@example.com", "enabled", ""],
                                             ["bob@example.com", "enabled", "Bob", "500M"]]
    assert stored_quota(env, "bob@example.com") == 500 * 1024 * 1024
    assert stored_quota(env, "alice@example.com") is None
    for size, shown, octets in [("2048", "2K", 2048), ("1000", "1000", 1000), ("3g", "3G", 3 << 30),
                                ("1536k", "1536K", 1536 << 10),
                                ("999999999999999999", "999999999999999999", 10 ** 18 - 1)]:
        ok(env, "user", "quota", "ALICE@example.com", size)
        assert rows(ok(env, "user", "list"))[0] == ["alice@example.com", "enabled", "", shown]
        assert stored_quota(env, "alice@example.com") == octets
    ok(env, "user", "quota", "alice@example.com", "none")
    assert rows(ok(env, "user", "list", "example.com"))[0] == ["alice@example.com", "enabled", ""]
    assert stored_quota(env, "alice@example.com") is None
    ok(env, "user", "disable", "bob@example.com")
    assert rows(ok(env, "user", "list"))[1] == ["bob@example.com", "disabled", "Bob", "500M"]


BAD_SIZES = ["0", "0K", "abc", "-1", "+1", "1.5M", "1T", "1KB", " 1", "1 ", "", "0x10", "K",
             "18446744073709551616", "9223372036854775808", "1000000000000000000", "931322575G",
             "99999999999999999999K"]


@pytest.mark.parametrize("size", BAD_SIZES)
def test_user_quota_bad_size_is_65_and_changes_nothing(env, size):
    setup_domain(env)
    add_user(env, "bob@example.com", b"pw", "--quota", "1M")
    # After "--" even "-1" is an operand (before it, an unknown option: 64).
    fails(env, 65, "user", "quota", "--", "bob@example.com", size)
    if not size.startswith("-"):
        fails(env, 65, "user", "quota", "bob@example.com", size)
    assert stored_quota(env, "bob@example.com") == 1 << 20
    # user add refuses it before asking for the password, and adds nobody.
    fails(env, 65, "user", "add", "carol@example.com", "--quota", size, "--stdin", stdin=b"pw\n")
    assert [r[0] for r in rows(ok(env, "user", "list"))] == ["bob@example.com"]


def test_user_quota_errors(env):
    setup_domain(env)
    add_user(env, "bob@example.com")
    ok(env, "alias", "add", "team@example.com", "bob@example.com")
    fails(env, 67, "user", "quota", "nobody@example.com", "1M")
    fails(env, 67, "user", "quota", "team@example.com", "1M")
    fails(env, 67, "user", "quota", "bob@nowhere.example", "1M")
    fails(env, 65, "user", "quota", "not-an-address", "1M", why="malformed address")
    fails(env, 65, "user", "quota", "bob@example.com", "0", why="none removes")
    fails(env, 65, "user", "quota", "bob@example.com", "12Q", why="malformed size")
    fails(env, 65, "user", "quota", "bob@example.com", "1000000000000000000", why="too large")
    fails(env, 64, "user", "quota", "bob@example.com", "-1")
    for args in (["user", "quota", "bob@example.com"], ["user", "quota"],
                 ["user", "quota", "bob@example.com", "1M", "2M"],
                 ["user", "quota", "bob@example.com", "1M", "--quota", "1M"],
                 ["user", "add", "c@example.com", "--quota"],
                 ["user", "add", "c@example.com", "--quota", "1M", "--quota", "2M"],
                 ["user", "passwd", "bob@example.com", "--quota", "1M"]):
        rc, out, err = run(env, *args)
        assert rc == 64 and err.startswith("usage: "), (args, rc, err)
    assert stored_quota(env, "bob@example.com") is None
    rc, out, err = run(env, "user")
    assert "user quota ADDRESS SIZE|none" in err and "[--quota SIZE]" in err
