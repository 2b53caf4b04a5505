"""A throwaway PostgreSQL cluster on loopback, for the test suite and the benchmark.

Why a helper and not a fixture only: ``make test``/``.ci/run`` start one
cluster for the whole pytest run (and the benchmark needs one too), while a
developer running ``pytest`` by hand gets one from the session fixture in
tests/host/conftest.py. Both use ``cluster()`` below.

What it does: ``initdb`` into a temporary directory (trust auth, superuser
``postgres``), ``pg_ctl start`` on a free 127.0.0.1 port with the unix
socket in that directory, ``createdb``, and on exit (also on errors and
signals) ``pg_ctl stop -m immediate`` and deletes the directory. initdb
refuses to run as root, so as root the server runs as the ``postgres`` OS
user (created by the Debian package).

Usage::

    python tests/pg_cluster.py -- pytest -q          # JSFLOW_TEST_PG_URL set for the command
    python tests/pg_cluster.py --durable -- python bench/host.py --db ENV

``--durable`` keeps fsync on (the benchmark); tests run with fsync off.
The server binaries come from the OS: ``apt-get install postgresql``. Without
them this fails, unless ``JSFLOW_TEST_PG_OPTIONAL=1`` (then the command runs
without a server and the PostgreSQL tests skip: for developers, never CI).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ENV_URL = "JSFLOW_TEST_PG_URL"
SEARCH_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


class ClusterError(RuntimeError):
    """The cluster could not be started (``step`` names what failed)."""

    def __init__(self, step: str, detail: str) -> None:
        super().__init__(f"throwaway PostgreSQL: {step} failed: {detail}")
        self.step = step


def find_bindir() -> Path | None:
    """The directory holding initdb/pg_ctl, or None when the server is not installed."""
    on_path = shutil.which("pg_ctl")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    candidates += SEARCH_DIRS
    return next(
        (d for d in candidates if all((d / tool).exists() for tool in ("initdb", "pg_ctl", "createdb"))), None
    )


#: url -> (pg_ctl, data dir, log, options) of the clusters this process started
_STARTED: dict[str, tuple[Path, Path, Path, str]] = {}


def restart(url: str, *, down_seconds: float = 0.0) -> None:
    """Stop a cluster this process started (fast shutdown: sessions are terminated),
    stay down ``down_seconds``, and start it again on the same port."""
    pg_ctl, data, log, options = _STARTED[url]
    _run("pg_ctl stop", [str(pg_ctl), "-D", str(data), "-m", "fast", "stop"])
    time.sleep(down_seconds)
    _run("pg_ctl start", [str(pg_ctl), "-D", str(data), "-w", "-l", str(log), "-o", options, "start"])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


def _run(step: str, argv: list[str]) -> None:
    done = subprocess.run(_as_server_user(argv), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ClusterError(step, (done.stderr or done.stdout).strip()[-2000:])


@contextlib.contextmanager
def cluster(*, durable: bool = False) -> Iterator[str]:
    """Start a cluster; yields its URL; always stops it and deletes its files."""
    bindir = find_bindir()
    if bindir is None:
        raise ClusterError("finding initdb", "no PostgreSQL server binaries (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="jsflow-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    port = _free_port()
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c max_connections=200"
    if not durable:
        options += "".join(f" -c {setting}" for setting in FAST_SETTINGS)
    started = False
    try:
        _run(
            "initdb", [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8"]
        )
        _run(
            "pg_ctl start",
            [str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"), "-o", options, "start"],
        )
        started = True
        _run(
            "createdb",
            [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "jsflow"],
        )
        url = f"postgresql://postgres@127.0.0.1:{port}/jsflow"
        _STARTED[url] = (bindir / "pg_ctl", data, root / "log", options)
        yield url
    finally:
        if started:
            with contextlib.suppress(ClusterError):
                _run("pg_ctl stop", [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"])
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str]) -> int:
    durable = "--durable" in argv[: argv.index("--")] if "--" in argv else False
    command = argv[argv.index("--") + 1 :] if "--" in argv else []
    if not command:
        print(__doc__, file=sys.stderr)
        return 2
    # a signal (CI timeout, Ctrl-C) must still reach the finally block that stops the server
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if find_bindir() is None and os.environ.get("JSFLOW_TEST_PG_OPTIONAL") == "1":
        print("[pg_cluster] no PostgreSQL server binaries: running without one", file=sys.stderr)
        return subprocess.call(command)
    with cluster(durable=durable) as url:
        env = dict(os.environ, **{ENV_URL: url})
        command = [url if part == "ENV" else part for part in command]
        started = time.monotonic()
        code = subprocess.call(command, env=env)
        print(f"[pg_cluster] command exited {code} after {time.monotonic() - started:.0f}s", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
