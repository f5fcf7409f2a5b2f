"""Run the sandbox from Python (tests, benchmarks, demos) as a subprocess.

    from sandbox.testing import running_sandbox

    with running_sandbox(sizes={"people": 1000}, time_scale=60) as sb:
        httpx.get(f"{sb.url}/v2/people.json", headers={"Authorization": f"Bearer {sb.api_key}"})
        assert sb.journal()[-1]["status"] == 200

A subprocess, so the server's CPU is not the client's (benchmarks need that), and a crash or a
hang of one cannot take the other down. Options mirror the CLI flags (see ``python -m sandbox
--help``): ``port, host, seed, sizes (or size), api_key, budget, time_scale, retry_after, faults
(a spec string or dict), token_ttl, client_id, client_secret, refresh_token, reject_refresh,
bulk_rate, bulk_latency, journal_limit, latency, latency_jitter, specs_dir``; plus ``startup_timeout`` (seconds) and
``launcher``, the command that starts it (default: this interpreter's ``-m sandbox`` with this
checkout on the path; e.g. ``[".../bin/connector", "sandbox"]`` runs an installed copy instead).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from sandbox.server import READY_PREFIX

_FLAGS = {
    "host": "--host",
    "seed": "--seed",
    "api_key": "--api-key",
    "budget": "--budget",
    "time_scale": "--time-scale",
    "token_ttl": "--token-ttl",
    "client_id": "--client-id",
    "client_secret": "--client-secret",
    "refresh_token": "--refresh-token",
    "bulk_rate": "--bulk-rate",
    "bulk_latency": "--bulk-latency",
    "journal_limit": "--journal-limit",
    "latency": "--latency",
    "latency_jitter": "--latency-jitter",
    "specs_dir": "--specs-dir",
}


class SandboxError(RuntimeError):
    pass


def _fault_spec(faults: str | dict[str, Any]) -> str:
    if isinstance(faults, str):
        return faults
    parts = []
    for key, value in faults.items():
        if isinstance(value, list | tuple):
            parts.append(f"{key}=" + ",".join(str(v) for v in value))
        else:
            parts.append(f"{key}={value}")
    return ",".join(parts)


def command(**options: Any) -> list[str]:
    """The ``python -m sandbox ...`` command line for these options."""
    launcher = options.pop("launcher", None) or [sys.executable, "-m", "sandbox"]
    argv = [*launcher, "--port", str(options.pop("port", 0))]
    sizes = dict(options.pop("sizes", None) or {})
    sizes.update(options.pop("size", None) or {})
    for name, count in sizes.items():
        argv += ["--size", f"{name}={count}"]
    faults = options.pop("faults", None)
    if faults:
        argv += ["--faults", _fault_spec(faults)]
    if "retry_after" in options:
        argv.append("--retry-after" if options.pop("retry_after") else "--no-retry-after")
    if options.pop("reject_refresh", False):
        argv.append("--reject-refresh")
    for key, value in options.items():
        if key not in _FLAGS:
            raise TypeError(
                f"running_sandbox: unknown option {key!r} (known: {', '.join(sorted(_FLAGS))}, ...)"
            )
        if value is not None:
            argv += [_FLAGS[key], str(value)]
    return argv


class Sandbox:
    """A handle on a running sandbox. Control calls bypass auth, budget, faults and journal."""

    def __init__(self, url: str, api_key: str, process: subprocess.Popen, stderr: list[str] | None = None):
        self.url = url
        self.api_key = api_key
        self.process = process
        self.stderr = stderr if stderr is not None else []  # the server's last stderr lines
        self._http = httpx.Client(base_url=url, timeout=60.0, trust_env=False)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def client(self, **kwargs: Any) -> httpx.Client:
        """An httpx client on the sandbox with the API key (caller closes it)."""
        kwargs.setdefault("timeout", 30.0)
        return httpx.Client(base_url=self.url, headers=self.headers, trust_env=False, **kwargs)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, f"/__sandbox/{path}", **kwargs)
        if response.status_code >= 400:
            raise SandboxError(f"{method} /__sandbox/{path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def journal(self, since: int = 0) -> list[dict[str, Any]]:
        return self._call("GET", "journal", params={"since": since} if since else None)["data"]

    def clear_journal(self) -> None:
        self._call("DELETE", "journal")

    def records(self, resource: str) -> list[dict[str, Any]]:
        return self._call("GET", f"records/{resource}")["data"]

    def reset(self) -> dict[str, Any]:
        return self._call("POST", "reset")

    def touch(
        self, resource: str, count: int | None = None, ids: list[int] | None = None
    ) -> list[dict[str, Any]]:
        body: dict[str, Any] = (
            {"ids": list(ids)} if ids is not None else {"count": 1 if count is None else count}
        )
        return self._call("POST", f"touch/{resource}", json=body)["data"]

    def configure(self, **changes: Any) -> dict[str, Any]:
        return self._call("POST", "config", json=changes)["data"]

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "stats")

    def close(self) -> None:
        self._http.close()


@contextmanager
def serving_process(
    argv: list[str], ready_prefix: str, startup_timeout: float = 60.0, checkout: bool = True
) -> Iterator[tuple[str, subprocess.Popen, list[str]]]:
    """Run a server command until it prints ``ready_prefix + URL``; yield (URL, process, stderr lines).

    The process gets this checkout on PYTHONPATH (unless ``checkout`` is False: an installed launcher) and
    is terminated (then killed) on exit; the last 200 stderr lines stay available for error messages.
    """
    env = dict(os.environ)
    if checkout:
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(Path(__file__).resolve().parent.parent), env.get("PYTHONPATH")) if p
        )
    env["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    ready: list[str] = []
    errors: list[str] = []
    got_line = threading.Event()

    def read_stdout() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith(ready_prefix) and not ready:
                ready.append(line.strip()[len(ready_prefix) :].split()[0])
                got_line.set()
        got_line.set()

    def read_stderr() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            errors.append(line)
            del errors[:-200]

    threading.Thread(target=read_stdout, daemon=True).start()
    threading.Thread(target=read_stderr, daemon=True).start()
    try:
        if not got_line.wait(startup_timeout) or not ready:
            time.sleep(0.1)
            raise SandboxError(f"server did not start ({' '.join(argv[1:])}):\n{''.join(errors[-40:])}")
        yield ready[0], process, errors
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


@contextmanager
def running_sandbox(startup_timeout: float = 60.0, **options: Any) -> Iterator[Sandbox]:
    """Start ``python -m sandbox`` on a free loopback port, yield a handle, stop it on exit."""
    api_key = options.get("api_key") or "sandbox-key"
    with serving_process(
        command(**options), READY_PREFIX, startup_timeout, checkout=not options.get("launcher")
    ) as (url, process, errors):
        handle = Sandbox(url, api_key, process, errors)
        try:
            yield handle
        finally:
            handle.close()
