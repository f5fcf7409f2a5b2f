"""Change-only writes: a record is sent only when its request differs from the one the API last accepted
for the same record.

Per sink and per record key (the record's ``id_field`` value as the API compares it: ``id_normalize``), the state store keeps a digest of
the request the API accepted: method, URL with its params, and the body's bytes exactly as sent. A record
whose request has the stored digest is skipped (``unchanged``); any change of the record or of the
template changes the request, hence the digest, and the record is sent.

What keeps it from skipping a record the API does not have:

- a digest is stored only after the API accepted that very request, and written after the batch's
  outcomes are flushed: a crash loses stored digests (those records are sent again), never the reverse;
- a record the API refused for sure (a 4xx answer other than 404/410, a failure named in the results) keeps
  what was stored: the API applied nothing. Any other failure (no answer, 5xx, 404, an outcome the answer
  does not confirm, no outcome before the run stopped) forgets the stored digest: the API's copy is then
  unknown, so the next run sends the record whatever it holds;
- a key sent twice in one batch ends with its last accepted request when the requests go out one after
  another (one record per request); when they may go out together (batched requests, bulk jobs), the
  order the API applied them in is unknown and the key is forgotten;
- records without a key are always sent, and a dry run reads the store but never writes it.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from connector.builder import BuiltRequest
from connector.ordering import object_key
from connector.statestore import DEFAULT_STATE_DB, StateStore, open_store
from connector.templates import Setting, SinkTemplate

if TYPE_CHECKING:
    from connector.target import Item

logger = logging.getLogger("connector.changes")

_PARAMS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS

SETTINGS = [
    Setting(
        "changes_only",
        "boolean",
        "Send a record only when its request differs from the one the API last accepted for its id_field "
        "value (kept in state_db); unchanged records are counted, not sent.",
        default=False,
    ),
    Setting(
        "state_db",
        "string",
        "Where changes_only keeps what the API accepted: an SQLite file, or a postgresql:// URL shared by "
        f"several machines (default {DEFAULT_STATE_DB} under the working directory).",
    ),
    Setting(
        "changes_only_refresh",
        "boolean",
        "With changes_only: send every record this run and rebuild the stored state from what is accepted.",
        default=False,
    ),
]


def request_digest(built: BuiltRequest) -> bytes:
    """16 bytes naming the request: method, URL, params and the body's bytes as the sender sends them."""
    content, _ = built.encoded()
    digest = hashlib.blake2b(digest_size=16)
    digest.update(built.method.encode())
    digest.update(b"\0")
    digest.update(built.url.encode("utf-8", "surrogatepass"))
    digest.update(b"\0")
    if built.params:
        digest.update(orjson.dumps(built.params, option=_PARAMS, default=str))
    digest.update(b"\0")
    if content:
        digest.update(content)
    return digest.digest()


class SinkChanges:
    """One sink's change filter for a run: ``begin`` a batch, ask ``unchanged`` per record, report
    ``accepted`` (from any sender thread), then ``commit`` once the batch's outcomes are flushed."""

    def __init__(
        self,
        store: StateStore,
        connection: str,
        sink: str,
        id_field: str,
        *,
        key_of: Callable[[Mapping[str, Any]], str] | None = None,
        ordered: bool,
        refresh: bool = False,
        read_only: bool = False,
    ) -> None:
        self.store = store
        self.connection = connection
        self.sink = sink
        self.id_field = id_field
        self._key_of = key_of or (lambda record: str(record.get(id_field)))
        self.ordered = ordered  # a key's requests go out one after another, in input order
        self.refresh = refresh
        self.read_only = read_only
        if not read_only:
            store.claim(connection, sink)
            if refresh:
                forgotten = store.clear(connection, sink)
                logger.info("sink %s: full refresh, %d stored digests forgotten", sink, forgotten)
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._stored: dict[str, bytes] = {}
        self._digests: dict[int, bytes] = {}  # item index -> digest of its request
        self._sent: dict[str, int] = {}  # key -> requests sent for it in this batch
        self._answered: dict[str, int] = {}  # key -> of those, accepted or refused for sure
        self._final: dict[str, bytes] = {}  # key -> digest of its last accepted request

    def _key(self, record: Mapping[str, Any]) -> str | None:
        """The record's key in the store: its id_field value as the API compares it (``id_normalize``)."""
        if record.get(self.id_field) in (None, ""):
            return None
        return self._key_of(record)

    def begin(self, items: Iterable[Item]) -> None:
        """Load the stored digests of a batch's records (one query per few hundred keys)."""
        self._reset()
        if self.refresh:
            return
        keys = {key for item in items if (key := self._key(item.record)) is not None}
        if keys:
            self._stored = self.store.lookup(self.connection, self.sink, keys)

    def unchanged(self, item: Item, built: BuiltRequest) -> bool:
        """Whether this record's request is the one the API last accepted (then it is not sent). A record that
        is sent is remembered, so its outcome can be stored."""
        key = self._key(item.record)
        if key is None:
            return False
        digest = request_digest(built)
        if key not in self._sent and self._stored.get(key) == digest:
            return True  # and the API's copy stays what it was: a later record of this key compares with it
        self._sent[key] = self._sent.get(key, 0) + 1
        self._digests[item.index] = digest
        return False

    def accepted(self, item: Item) -> None:
        """The API accepted this record's request (called by the sender threads, in order per key when
        ``ordered``)."""
        key = self._key(item.record)
        digest = self._digests.get(item.index)
        if key is None or digest is None:
            return
        with self._lock:
            self._answered[key] = self._answered.get(key, 0) + 1
            self._final[key] = digest

    def refused(self, item: Item, status: int | None = None, *, unanswered: int = 0) -> None:
        """The API answered this record's request with a refusal: a 4xx, or (``status`` None) a failure named
        in a batch's or a job's results. Sure only when no earlier attempt of the request went unanswered (it
        may have been applied) and the answer is not 404/410 (the object is gone, so what was stored no
        longer holds); a sure refusal applied nothing, so what the API had before still stands."""
        if unanswered or (status is not None and not (400 <= status < 500 and status not in (404, 410))):
            return
        key = self._key(item.record)
        if key is None or item.index not in self._digests:
            return
        with self._lock:
            self._answered[key] = self._answered.get(key, 0) + 1

    def commit(self) -> None:
        """Store the accepted digests and forget every key whose requests did not all get a sure answer
        (after the outcomes were flushed, so a crash before this point re-sends rather than skips)."""
        if self.read_only or not self._sent:
            self._reset()
            return
        with self._lock:
            answered, final = dict(self._answered), dict(self._final)
        stored: dict[str, bytes] = {}
        forgotten: list[str] = []
        for key, sent in self._sent.items():
            if answered.get(key, 0) < sent or (sent > 1 and not self.ordered):
                forgotten.append(key)
            elif key in final:
                stored[key] = final[key]
            # else every request of the key was refused: the API still has what was stored
        self._reset()
        self.store.apply(self.connection, self.sink, stored, forgotten)


class ChangeTracking:
    """A target's change-only settings and its one state store, opened when the first sink needs it."""

    def __init__(self, config: Mapping[str, Any], connection: str, dry_run: bool) -> None:
        self.enabled = bool(config.get("changes_only"))
        self.refresh = bool(config.get("changes_only_refresh"))
        self.location = config.get("state_db") or DEFAULT_STATE_DB
        self.connection = connection
        self.dry_run = dry_run
        self._store: StateStore | None = None

    def for_sink(self, template: SinkTemplate) -> SinkChanges | None:
        """The sink's change filter, or None when changes_only is off or the sink has no id_field."""
        if not self.enabled:
            return None
        if not template.id_field:
            logger.warning(
                "changes_only: sink %s has no id_field, so its records cannot be told apart: all are sent",
                template.name,
            )
            return None
        if self._store is None:
            self._store = open_store(self.location)
        return SinkChanges(
            self._store,
            self.connection,
            template.name,
            template.id_field,
            key_of=object_key(template),
            ordered=template.kind != "bulk_job" and template.batch_size == 1,
            refresh=self.refresh,
            read_only=self.dry_run,
        )

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
