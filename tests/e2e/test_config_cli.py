"""`sluice config check FILE` and `sluiced -c FILE` on good and bad configuration files
(doc/sluice.conf.md): a good file is reported ok; a bad one names FILE:LINE and fails."""

import os
import re
import subprocess

import pytest

from e2e_helpers import SLUICE, SLUICED, Daemon

BAD = [
    ("unknown-directive", "hostname mx.test\nbogus-directive yes\n", 2),
    ("bad-number", "hostname mx.test\nlimits {\n  recipients zero\n}\n", 3),
    ("unclosed-block", "hostname mx.test\ntimeouts { command 2s\n", 2),
    ("bad-duration", "timeouts { command forever }\n", 1),
    ("bad-tls-mode", "listen smtp { address 127.0.0.1:2525; tls sometimes }\n", 1),
]


def run(*cmd):
    r = subprocess.run(list(cmd), capture_output=True, timeout=30)
    return r.returncode, r.stdout.decode() + r.stderr.decode()


@pytest.fixture(scope="module")
def good_conf(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("conf"))
    return d.conf


def test_config_check_good_file_ok(good_conf):
    rc, out = run(SLUICE, "config", "check", good_conf)
    assert rc == 0, out
    assert out.strip() == "%s: ok" % good_conf


@pytest.mark.parametrize("name,text,line", BAD, ids=[b[0] for b in BAD])
def test_config_check_bad_file_names_line(tmp_path, name, text, line):
    path = tmp_path / ("%s.conf" % name)
    path.write_text(text)
    rc, out = run(SLUICE, "config", "check", str(path))
    assert rc == 1, out
    assert re.search(r"^%s:%d: \S" % (re.escape(str(path)), line), out, re.M), out


def test_config_check_missing_file(tmp_path):
    path = str(tmp_path / "missing.conf")
    rc, out = run(SLUICE, "config", "check", path)
    assert rc != 0, out
    assert path in out


@pytest.mark.parametrize("name,text,line", BAD[:2], ids=[b[0] for b in BAD[:2]])
def test_sluiced_refuses_bad_config_with_line(tmp_path, name, text, line):
    path = tmp_path / ("%s.conf" % name)
    path.write_text(text)
    rc, out = run(SLUICED, "-c", str(path))
    assert rc != 0, out
    assert re.search(r"^%s:%d: \S" % (re.escape(str(path)), line), out, re.M), out
    assert "AddressSanitizer" not in out and "LeakSanitizer" not in out, out


def test_sluiced_refuses_missing_config(tmp_path):
    rc, out = run(SLUICED, "-c", str(tmp_path / "nope.conf"))
    assert rc != 0, out
    assert "nope.conf" in out
    assert not os.path.exists(tmp_path / "spool")
