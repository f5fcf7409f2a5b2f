"""OAuth tokens kept in a file of their own (the ``token_file`` setting), shared by runs and processes.

Refresh tokens that rotate on every use must outlive the run that rotated them. Written
back to the ``--config`` file, they do, unless an orchestrator hands each run a temporary config file
(Meltano does) or two processes hold the same token (a tap and a target of one pipeline): the second
refresh with a spent token is refused. With ``token_file`` set, every refresh happens under a lock on
that file, which holds the latest tokens of the chain: a run starts from them, and a process about to
refresh first takes a token another one obtained in the meantime.

A chain starts from the refresh token in the config. The file records a fingerprint of that token, so a
config holding a different one (the user authorized again) wins over the file, which then starts over.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger("connector.tokens")


@dataclass(frozen=True)
class Tokens:
    refresh_token: str | None
    access_token: str | None
    expires_at: float  # wall clock (epoch seconds); 0 when unknown


def fingerprint(refresh_token: str | None) -> str:
    return hashlib.sha256((refresh_token or "").encode()).hexdigest()


class TokenFile:
    def __init__(self, path: str | os.PathLike[str], config_refresh_token: str | None) -> None:
        self.path = Path(path).expanduser()
        self.origin = fingerprint(config_refresh_token)
        self._lock_path = self.path.with_name(f".{self.path.name}.lock")

    def current(self) -> Tokens | None:
        """The latest tokens of this config's chain, or None (no file yet, another chain, unreadable)."""
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            logger.warning(
                "token_file %s cannot be read (%s): starting from the config's tokens", self.path, exc
            )
            return None
        if not isinstance(data, dict) or data.get("origin") != self.origin:
            return None  # a chain begun from another refresh token: the config's is newer
        expires_at = data.get("expires_at")
        return Tokens(
            data.get("refresh_token"),
            data.get("access_token"),
            float(expires_at) if isinstance(expires_at, (int, float)) else 0.0,
        )

    @contextmanager
    def locked(self) -> Iterator[Tokens | None]:
        """Hold the file's lock (other runs and processes wait) and give the chain's latest tokens."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield self.current()
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def save(self, tokens: Tokens) -> None:
        """Write the chain's latest tokens (call under ``locked``): atomically, readable by the owner only."""
        payload: dict[str, Any] = {
            "origin": self.origin,
            "refresh_token": tokens.refresh_token,
            "access_token": tokens.access_token,
            "expires_at": round(tokens.expires_at, 3),
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=2)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)
