"""Where change-only writes remember what the API accepted: per (connection, sink, record key), a digest of
the request last accepted for that record.

Two stores behind one small interface: SQLite (a file, the embedded default; WAL, so readers never wait
and several runs can share the file) and PostgreSQL (a URL; several machines share one state). A run
claims each sink it writes for as long as it runs: a second run writing the same sink of the same store
at once is refused with a clear message, since two runs racing on one record could leave the store
saying the API has the one the API applied first. The claim is an OS file lock (SQLite) or a session
advisory lock (PostgreSQL), so it ends with the process however it ends, SIGKILL included.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from connector.errors import ConnectorError

DEFAULT_STATE_DB = ".connector/target-state.db"
LOOKUP_CHUNK = 500  # keys per SQLite lookup (its bound-parameter limit is far above)


class StateStoreError(ConnectorError):
    """The state store cannot be opened or used (or a sink of it is claimed by another run)."""


def _lock_id(connection: str, sink: str) -> int:
    """A stable 63-bit number for a sink: the byte offset locked in the SQLite lock file, the key of the
    PostgreSQL advisory lock."""
    digest = hashlib.blake2b(f"{connection}\0{sink}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 2


def serialised(method: Callable[..., Any]) -> Callable[..., Any]:
    """One call at a time on a store: the sinks of a target drain in threads of their own and share it."""

    @functools.wraps(method)
    def call(self: StateStore, *args: Any, **kwargs: Any) -> Any:
        with self._guard:
            return method(self, *args, **kwargs)

    return call


class StateStore(ABC):
    """Digests of accepted requests, per sink and record key; safe to share between threads."""

    _guard: threading.Lock

    location: str

    @abstractmethod
    def claim(self, connection: str, sink: str) -> None:
        """Hold this sink for this run, or raise StateStoreError naming who holds it."""

    @abstractmethod
    def lookup(self, connection: str, sink: str, keys: Iterable[str]) -> dict[str, bytes]:
        """The stored digests of these keys (keys without one are absent)."""

    @abstractmethod
    def apply(
        self, connection: str, sink: str, stored: Mapping[str, bytes], forgotten: Iterable[str]
    ) -> None:
        """In one transaction: store these digests and forget these keys."""

    @abstractmethod
    def clear(self, connection: str, sink: str | None = None) -> int:
        """Forget a sink (or every sink of the connection); how many records were forgotten."""

    @abstractmethod
    def forget(self, connection: str, sink: str, key: str) -> bool:
        """Forget one record; whether it was stored."""

    @abstractmethod
    def counts(self, connection: str) -> dict[str, int]:
        """Records stored per sink of the connection."""

    @abstractmethod
    def close(self) -> None: ...


class SQLiteStore(StateStore):
    """One SQLite file. WAL journal and a busy timeout: writes of several runs on different sinks wait
    their turn (each is one short transaction) instead of failing."""

    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS accepted_requests ("
        " connection TEXT NOT NULL, sink TEXT NOT NULL, record_key TEXT NOT NULL, digest BLOB NOT NULL,"
        " PRIMARY KEY (connection, sink, record_key)) WITHOUT ROWID"
    )

    def __init__(self, path: str, busy_timeout: float = 60.0) -> None:
        self.location = path
        self._guard = threading.Lock()
        target = Path(path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # durable across a process crash; a power loss
            # may lose the last commits, which only makes their records be sent again
            self._db.execute(self.SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StateStoreError(f"state_db {path}: cannot open it as an SQLite database: {exc}") from None
        self._lock_file: int | None = None
        self._claimed: set[int] = set()

    @serialised
    def claim(self, connection: str, sink: str) -> None:
        offset = _lock_id(connection, sink)
        if offset in self._claimed:
            return
        if self._lock_file is None:
            self._lock_file = os.open(f"{self.location}-lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.lockf(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset)
        except OSError:
            raise StateStoreError(
                f"state_db {self.location}: sink {sink!r} of {connection!r} is being written by another run "
                "right now; two runs sending the same sink at once could leave the state wrong. Wait for it "
                "to finish, or give this run its own state_db"
            ) from None
        self._claimed.add(offset)

    @serialised
    def lookup(self, connection: str, sink: str, keys: Iterable[str]) -> dict[str, bytes]:
        wanted = list(keys)
        found: dict[str, bytes] = {}
        for start in range(0, len(wanted), LOOKUP_CHUNK):
            part = wanted[start : start + LOOKUP_CHUNK]
            marks = ",".join("?" * len(part))
            rows = self._db.execute(
                "SELECT record_key, digest FROM accepted_requests WHERE connection = ? AND sink = ? "
                f"AND record_key IN ({marks})",
                (connection, sink, *part),
            )
            found.update(rows)
        return found

    @serialised
    def apply(
        self, connection: str, sink: str, stored: Mapping[str, bytes], forgotten: Iterable[str]
    ) -> None:
        gone = list(forgotten)
        if not stored and not gone:
            return
        with self._transaction():
            self._db.executemany(
                "INSERT INTO accepted_requests (connection, sink, record_key, digest) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (connection, sink, record_key) DO UPDATE SET digest = excluded.digest",
                ((connection, sink, key, digest) for key, digest in stored.items()),
            )
            self._db.executemany(
                "DELETE FROM accepted_requests WHERE connection = ? AND sink = ? AND record_key = ?",
                ((connection, sink, key) for key in gone),
            )

    @serialised
    def clear(self, connection: str, sink: str | None = None) -> int:
        with self._transaction():
            if sink is None:
                cursor = self._db.execute("DELETE FROM accepted_requests WHERE connection = ?", (connection,))
            else:
                cursor = self._db.execute(
                    "DELETE FROM accepted_requests WHERE connection = ? AND sink = ?", (connection, sink)
                )
        return cursor.rowcount

    @serialised
    def forget(self, connection: str, sink: str, key: str) -> bool:
        with self._transaction():
            cursor = self._db.execute(
                "DELETE FROM accepted_requests WHERE connection = ? AND sink = ? AND record_key = ?",
                (connection, sink, key),
            )
        return cursor.rowcount > 0

    @serialised
    def counts(self, connection: str) -> dict[str, int]:
        rows = self._db.execute(
            "SELECT sink, count(*) FROM accepted_requests WHERE connection = ? GROUP BY sink ORDER BY sink",
            (connection,),
        )
        return dict(rows)

    def _transaction(self) -> Any:
        return _SQLiteTransaction(self._db)

    @serialised
    def close(self) -> None:
        self._db.close()
        if self._lock_file is not None:
            os.close(self._lock_file)  # releases every claim
            self._lock_file = None


class _SQLiteTransaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error): the write lock is taken at the start, so a busy
    database is waited for (busy timeout) rather than failing half-way."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: Any, *_: Any) -> None:
        self._db.execute("ROLLBACK" if kind else "COMMIT")


class PostgresStore(StateStore):
    """A PostgreSQL database (``postgresql://...``): several machines running the same pipeline share it."""

    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS connector_accepted_requests ("
        " connection text NOT NULL, sink text NOT NULL, record_key text NOT NULL, digest bytea NOT NULL,"
        " PRIMARY KEY (connection, sink, record_key))"
    )

    def __init__(self, url: str) -> None:
        self.location = _mask_url(url)
        self._guard = threading.Lock()
        try:
            import psycopg
        except ImportError:
            raise StateStoreError(
                "state_db is a PostgreSQL URL, which needs the psycopg driver: "
                "pip install 'declarative-connector[postgres]'"
            ) from None
        self._psycopg = psycopg
        try:
            self._db = psycopg.connect(url, autocommit=True, connect_timeout=30)
            with self._db.transaction():
                # Two machines creating the table at once would collide on the catalog: one at a time.
                self._db.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_id("", "schema"),))
                self._db.execute(self.SCHEMA)
        except psycopg.Error as exc:
            raise StateStoreError(f"state_db {self.location}: {_first_line(exc)}") from None

    @serialised
    def claim(self, connection: str, sink: str) -> None:
        held = self._one("SELECT pg_try_advisory_lock(%s)", (_lock_id(connection, sink),))
        if not held:
            raise StateStoreError(
                f"state_db {self.location}: sink {sink!r} of {connection!r} is being written by another run "
                "right now (it holds the sink's advisory lock); two runs sending the same sink at once "
                "could leave the state wrong. Wait for it to finish, or give this run its own state_db"
            )

    def _one(self, sql: str, params: tuple) -> Any:
        try:
            row = self._db.execute(sql, params).fetchone()
        except self._psycopg.Error as exc:
            raise StateStoreError(f"state_db {self.location}: {_first_line(exc)}") from None
        return row[0] if row else None

    @serialised
    def lookup(self, connection: str, sink: str, keys: Iterable[str]) -> dict[str, bytes]:
        wanted = list(keys)
        if not wanted:
            return {}
        try:
            rows = self._db.execute(
                "SELECT record_key, digest FROM connector_accepted_requests "
                "WHERE connection = %s AND sink = %s AND record_key = ANY(%s)",
                (connection, sink, wanted),
            ).fetchall()
        except self._psycopg.Error as exc:
            raise StateStoreError(f"state_db {self.location}: {_first_line(exc)}") from None
        return {key: bytes(digest) for key, digest in rows}

    @serialised
    def apply(
        self, connection: str, sink: str, stored: Mapping[str, bytes], forgotten: Iterable[str]
    ) -> None:
        gone = list(forgotten)
        if not stored and not gone:
            return
        try:
            with self._db.transaction():
                if stored:
                    self._db.execute(
                        "INSERT INTO connector_accepted_requests (connection, sink, record_key, digest) "
                        "SELECT %s, %s, k, d FROM unnest(%s::text[], %s::bytea[]) AS t(k, d) "
                        "ON CONFLICT (connection, sink, record_key) DO UPDATE SET digest = excluded.digest",
                        (connection, sink, list(stored), list(stored.values())),
                    )
                if gone:
                    self._db.execute(
                        "DELETE FROM connector_accepted_requests "
                        "WHERE connection = %s AND sink = %s AND record_key = ANY(%s)",
                        (connection, sink, gone),
                    )
        except self._psycopg.Error as exc:
            raise StateStoreError(f"state_db {self.location}: {_first_line(exc)}") from None

    @serialised
    def clear(self, connection: str, sink: str | None = None) -> int:
        sql = "DELETE FROM connector_accepted_requests WHERE connection = %s"
        params: tuple = (connection,)
        if sink is not None:
            sql, params = sql + " AND sink = %s", (connection, sink)
        try:
            return self._db.execute(sql, params).rowcount
        except self._psycopg.Error as exc:
            raise StateStoreError(f"state_db {self.location}: {_first_line(exc)}") from None

    @serialised
    def forget(self, connection: str, sink: str, key: str) -> bool:
        try:
            cursor = self._db.execute(
                "DELETE FROM connector_accepted_requests WHERE connection = %s AND sink = %s AND record_key = %s",
                (connection, sink, key),
            )
        except self._psycopg.Error as exc:
            raise StateStoreError(f"state_db {self.location}: {_first_line(exc)}") from None
        return cursor.rowcount > 0

    @serialised
    def counts(self, connection: str) -> dict[str, int]:
        try:
            rows = self._db.execute(
                "SELECT sink, count(*) FROM connector_accepted_requests WHERE connection = %s "
                "GROUP BY sink ORDER BY sink",
                (connection,),
            ).fetchall()
        except self._psycopg.Error as exc:
            raise StateStoreError(f"state_db {self.location}: {_first_line(exc)}") from None
        return {sink: int(count) for sink, count in rows}

    @serialised
    def close(self) -> None:
        self._db.close()  # ends the session: its advisory locks go with it


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _mask_url(url: str) -> str:
    """The URL as it may be shown: without its password."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def is_postgres_url(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


def open_store(location: str | None) -> StateStore:
    """The store at ``location``: a PostgreSQL URL, or a path to an SQLite file (default: DEFAULT_STATE_DB)."""
    location = location or DEFAULT_STATE_DB
    if is_postgres_url(location):
        return PostgresStore(location)
    return SQLiteStore(location)
