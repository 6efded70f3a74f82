#!/usr/bin/python3
"""Memory cost of idle SMTP sessions, for bench/run.

Opens N connections to 127.0.0.1:PORT, reads each 220 greeting, then leaves them idle.
Before and after, it sums the memory of the server's whole process tree (the process ROOT
and all its descendants): Pss from /proc/PID/smaps_rollup (shared pages divided among the
processes that map them, so a multi-process server is not over-counted) and VmRSS from
/proc/PID/status (the naive sum). Prints one key=value line; the caller divides.

Connections are opened with at most --window waiting for their greeting at once, so a
server that forks per connection (Postfix) is not flooded past its listen backlog. Opening
stops early, and says so, if the server stops greeting (--stall seconds without progress)
or if the machine's MemAvailable falls below --min-free-mib.
Standard library only; loopback only.
"""

import argparse
import errno
import os
import selectors
import socket
import sys
import time


def tree_pids(root):
    """root and every descendant, from the ppid field of /proc/*/stat."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # comm may hold spaces and parentheses: the fields after the last ')' are fixed.
        fields = stat[stat.rfind(b")") + 2:].split()
        children.setdefault(int(fields[1]), []).append(int(name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def read_kib(path, key):
    try:
        with open(path, "rb") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_memory(root):
    pids = tree_pids(root)
    pss = sum(read_kib(f"/proc/{p}/smaps_rollup", b"Pss:") for p in pids)
    rss = sum(read_kib(f"/proc/{p}/status", b"VmRSS:") for p in pids)
    return len(pids), pss, rss


def mem_available_mib():
    return read_kib("/proc/meminfo", b"MemAvailable:") // 1024


def open_idle(port, n, window, stall, min_free_mib):
    """Returns (greeted sockets, why opening stopped early or 'ok')."""
    sel = selectors.DefaultSelector()
    pending = {}   # socket -> bytes of its greeting so far
    greeted = []
    started = 0
    last_progress = time.monotonic()
    stop = None
    while True:
        while stop is None and started < n and len(pending) < window:
            if started % 200 == 0 and mem_available_mib() < min_free_mib:
                stop = f"MemAvailable below {min_free_mib} MiB"
                break
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            err = s.connect_ex(("127.0.0.1", port))
            if err not in (0, errno.EINPROGRESS):
                s.close()
                stop = f"connect: {os.strerror(err)}"
                break
            sel.register(s, selectors.EVENT_READ)
            pending[s] = b""
            started += 1
        if not pending:
            break
        for key, _ in sel.select(timeout=1.0):
            s = key.fileobj
            try:
                data = s.recv(512)
            except OSError:
                data = b""
            pending[s] += data
            if data and b"\n" not in pending[s]:
                continue
            sel.unregister(s)
            if pending.pop(s).startswith(b"220"):
                greeted.append(s)
                last_progress = time.monotonic()
            else:
                s.close()
                stop = stop or "server refused or closed a connection before a 220 greeting"
        if time.monotonic() - last_progress > stall:
            stop = stop or f"no greeting for {stall:.0f} s"
            break
    for s in pending:
        s.close()
    return greeted, stop or "ok"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True, help="root process of the server")
    ap.add_argument("--sessions", type=int, required=True)
    ap.add_argument("--window", type=int, default=100)
    ap.add_argument("--stall", type=float, default=30.0)
    ap.add_argument("--settle", type=float, default=3.0)
    ap.add_argument("--min-free-mib", type=int, default=1536)
    a = ap.parse_args()

    procs0, pss0, rss0 = tree_memory(a.pid)
    t0 = time.monotonic()
    socks, reason = open_idle(a.port, a.sessions, a.window, a.stall, a.min_free_mib)
    opened = time.monotonic() - t0
    time.sleep(a.settle)
    procs1, pss1, rss1 = tree_memory(a.pid)
    n = len(socks)
    per = lambda after, before: f"{(after - before) / n:.1f}" if n else "nan"
    print(f"requested={a.sessions} open={n} open_seconds={opened:.1f} "
          f"procs_before={procs0} procs_after={procs1} "
          f"pss_before_kib={pss0} pss_after_kib={pss1} rss_before_kib={rss0} rss_after_kib={rss1} "
          f"pss_per_session_kib={per(pss1, pss0)} rss_per_session_kib={per(rss1, rss0)} "
          f"status={reason.replace(' ', '_')}")
    for s in socks:
        s.close()
    return 0 if n else 1


if __name__ == "__main__":
    sys.exit(main())
