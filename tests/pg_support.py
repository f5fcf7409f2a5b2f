"""A real PostgreSQL server for tests: initdb in a temporary folder, started on a free loopback port.

The server comes from the machine's PostgreSQL package (Debian's ``postgresql``, which CI installs in
.ci/run). Without it the tests that need it are skipped, with a reason saying what is then untested.
As root (CI), the server runs as the package's ``postgres`` user: PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

NOT_TESTED = "the PostgreSQL state store is NOT tested"


def _binaries() -> Path | None:
    found = shutil.which("initdb")
    if found and shutil.which("postgres"):
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(versions[-1]).parent if versions else None


def _skip(reason: str) -> None:
    message = f"{reason}: {NOT_TESTED} (install Debian's postgresql package, as .ci/run does)"
    warnings.warn(message, stacklevel=2)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield the URL of a fresh PostgreSQL server (database ``postgres``, user ``connector``, trust auth)."""
    try:
        import psycopg
    except ImportError:
        _skip("the psycopg driver is not installed (pip install -e '.[dev]')")
    binaries = _binaries()
    if binaries is None:
        _skip("no PostgreSQL server on this machine (no initdb)")
    user = None
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            _skip("running as root and there is no 'postgres' user to run the server as")
    folder = Path(tempfile.mkdtemp(prefix="connector-pg-"))
    data = folder / "data"
    data.mkdir()
    if user is not None:
        for path in (folder, data):
            os.chown(path, user.pw_uid, user.pw_gid)
    run_as = {"user": user.pw_uid, "group": user.pw_gid} if user is not None else {}
    subprocess.run(
        [str(binaries / "initdb"), "-D", str(data), "-U", "connector", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
        cwd=folder,  # a folder the server's user may enter (the checkout may be root's alone)
        **run_as,
    )
    port = _free_port()
    log = open(folder / "server.log", "wb")  # noqa: SIM115 - a file, not a pipe nobody drains
    server = subprocess.Popen(
        [str(binaries / "postgres"), "-D", str(data), "-p", str(port), "-k", str(folder), "-h", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=log,
        cwd=folder,
        **run_as,
    )
    url = f"postgresql://connector@127.0.0.1:{port}/postgres"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                psycopg.connect(url, connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if server.poll() is not None or time.monotonic() > deadline:
                    detail = (folder / "server.log").read_text(errors="replace")
                    raise RuntimeError(
                        f"PostgreSQL did not start on port {port}:\n{detail[-2000:]}"
                    ) from None
                time.sleep(0.1)
        yield url
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGINT)  # fast shutdown
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)
