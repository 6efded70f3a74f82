"""Fixtures for the end-to-end tests: sluiced started on free loopback ports with a temp
spool, a mailboxes file (alice@mx.test, bob@mx.test), local domains mx.test and localhost,
a self-signed TLS pair, and `workers 1` unless a test asks for more.

Teardown sends SIGTERM, requires exit status 0 within 10 s and a log free of sanitizer
reports (AddressSanitizer, UBSan "runtime error:", LeakSanitizer)."""

import os

import pytest

from e2e_helpers import SLUICED, Daemon


def pytest_collection_modifyitems(config, items):
    if not os.access(SLUICED, os.X_OK):
        skip = pytest.mark.skip(reason="no sluiced at %s (set SLUICE_BUILD)" % SLUICED)
        for item in items:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def daemon(tmp_path_factory):
    """One daemon shared by the tests that need only the default configuration."""
    d = Daemon(tmp_path_factory.mktemp("shared"))
    d.start()
    yield d
    d.shutdown()


@pytest.fixture
def make_daemon(tmp_path):
    """Factory for a daemon of a test's own: make_daemon(extra="limits { ... }", workers=2,
    env={...}, start=True). Every daemon made is shut down and checked at teardown."""
    made = []

    def make(extra="", start=True, sub=None, **kw):
        d = Daemon(tmp_path / (sub or "d%d" % len(made)), extra=extra, **kw)
        made.append(d)
        if start:
            d.start()
        return d

    yield make
    errors = []
    for d in made:
        try:
            d.shutdown()
        except AssertionError as e:
            errors.append(str(e))
    assert not errors, "\n\n".join(errors)
