"""Outcomes POSTed to a URL of the user's (``responses_url``, ``rejected_url``), beside the files.

Each POST carries a JSON array of outcomes, each the very object the file holds on its line (secrets
masked). The webhook has a client of its own: it never carries the API's credentials (only
``webhook_headers``), follows no redirect, reads at most ``MAX_ANSWER_BYTES`` of an answer and gives an
attempt ``webhook_timeout`` seconds in all; network errors, 408, 429 and 5xx are retried with backoff.
A batch that fails for good gives the webhook up for the rest of the run (a dead webhook costs one round
of retries, not one per batch): the outcomes it did not take are in the file only, and the run ends with
exit 1 saying how many.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from connector import __version__
from connector.errors import ConnectorError, InvalidRequestError, ResponseTooLarge
from connector.http import retry_after_seconds
from connector.secrets import REDACTOR
from connector.sender import HttpxSender, Limits, Response, Sender, build_request, check_headers, httpx_client
from connector.templates import Retry

logger = logging.getLogger("connector.webhook")

MAX_ANSWER_BYTES = 1024 * 1024  # a webhook's answer is not used: anything past this fails the attempt
DEFAULT_BATCH_SIZE = 100
DEFAULT_TIMEOUT = 30  # seconds
QUEUED_BATCHES = 4  # batches waiting for the delivery thread; past them, the run waits (bounded memory)
RETRIED_STATUSES = frozenset({408, 429})  # and every 5xx


@dataclass(frozen=True)
class WebhookConfig:
    """One webhook as the config gives it: where its outcomes go, and the file that keeps them too."""

    setting: str  # responses_url or rejected_url
    url: str
    file_setting: str  # the file that keeps every outcome: responses_path or rejected_path
    file: str
    headers: dict[str, str] = field(default_factory=dict)
    batch_size: int = DEFAULT_BATCH_SIZE
    timeout: float = float(DEFAULT_TIMEOUT)
    retry: Retry = field(default_factory=Retry)

    @property
    def origin(self) -> str:
        """What logs and errors name: scheme, host and port (a webhook's path often holds its token)."""
        url = httpx.URL(self.url)
        port = f":{url.port}" if url.port else ""
        return f"{url.scheme}://{url.host}{port}"

    @property
    def name(self) -> str:
        return f"{self.setting} ({self.origin})"


def webhook_configs(config: Mapping[str, Any], retry: Retry) -> list[WebhookConfig]:
    """The webhooks a target config asks for, checked before any record is read: a bad URL or header, or a
    webhook without the file that keeps what it could not take, stops the run at once."""
    headers = config.get("webhook_headers") or {}
    if not isinstance(headers, Mapping):
        raise ConnectorError("webhook_headers: must be an object of header names to values")
    headers = {str(name): str(value) for name, value in headers.items()}
    try:
        check_headers(headers)
    except InvalidRequestError as exc:
        raise ConnectorError(f"webhook_headers: {exc}") from None
    found = []
    for setting, file_setting, default_file in (
        ("responses_url", "responses_path", None),
        ("rejected_url", "rejected_path", "rejected.jsonl"),
    ):
        url = config.get(setting)
        if not url:
            continue
        parsed = _parse_url(setting, str(url))
        file = config.get(file_setting, default_file)
        if not file:
            raise ConnectorError(
                f"{setting} needs {file_setting}: the file keeps every outcome, so that one the webhook "
                f"cannot take is not lost; set {file_setting} too"
            )
        found.append(
            WebhookConfig(
                setting,
                str(parsed),
                file_setting,
                str(file),
                headers,
                int(config.get("webhook_batch_size") or DEFAULT_BATCH_SIZE),
                float(config.get("webhook_timeout") or DEFAULT_TIMEOUT),
                retry,
            )
        )
    return found


def _parse_url(setting: str, url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConnectorError(f"{setting}: not an http(s) URL with a host (its value is not shown)")
    return parsed


class Webhook:
    """One outcome output POSTing batches of JSON lines to a URL, from a thread of its own."""

    def __init__(self, config: WebhookConfig, sender: Sender | None = None) -> None:
        self.config = config
        limits = Limits(
            timeout=config.timeout,
            connect_timeout=min(10.0, config.timeout),
            max_response_bytes=MAX_ANSWER_BYTES,
        )
        self._sender = sender or HttpxSender(httpx_client(limits, max_connections=1), limits)
        self._headers = {
            "Content-Type": "application/json",
            "User-Agent": f"declarative-connector/{__version__}",
            **config.headers,
        }
        self._lock = threading.Lock()
        self._pending: list[bytes] = []
        self._queue: queue.Queue[list[bytes] | None] = queue.Queue(QUEUED_BATCHES)
        self._stop = threading.Event()
        self.delivered = 0
        self.undelivered = 0
        self.requests = 0
        self.failure: str | None = None  # why the webhook was given up
        self.oversized: str | None = None  # why an outcome too large for the receiver on its own was skipped
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"webhook-{config.setting}", daemon=True)
        self._thread.start()

    # -- the outcome output interface (as a file's)

    def write(self, line: bytes) -> None:
        """One outcome, as its JSON text; a full batch is handed to the delivery thread."""
        with self._lock:
            self._pending.append(line)
            if len(self._pending) < self.config.batch_size:
                return
            batch, self._pending = self._pending, []
        self._queue.put(batch)

    def flush(self) -> None:
        """Every outcome written so far is delivered, or given up on, when this returns."""
        with self._lock:
            batch, self._pending = self._pending, []
        if batch:
            self._queue.put(batch)
        self._queue.join()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.flush()
        self._queue.put(None)
        self._thread.join()
        self._sender.close()

    def stop(self) -> None:
        """The run is stopping: no more waiting between attempts; what is not delivered yet is given up."""
        self._stop.set()

    def report(self) -> str | None:
        """What the run must say when outcomes were not delivered (None when all were)."""
        if not self.undelivered:
            return None
        return (
            f"{self.config.setting}: {self.undelivered} of {self.delivered + self.undelivered} outcomes were "
            f"not delivered ({self.failure or self.oversized}); every one of them is in {self.config.file}"
        )

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "url": self.config.origin,
            "delivered": self.delivered,
            "undelivered": self.undelivered,
            "requests": self.requests,
        }
        if self.failure or self.oversized:
            out["error"] = self.failure or self.oversized
        return out

    # -- delivery

    def _run(self) -> None:
        while True:
            batch = self._queue.get()
            try:
                if batch is None:
                    return
                if self.failure is not None:
                    self.undelivered += len(batch)
                else:
                    self._deliver(batch)
            except Exception as exc:  # a bug here must not hang flush() or lose the count
                self._give_up(batch or [], f"{type(exc).__name__}: {exc}")
            finally:
                self._queue.task_done()

    def _deliver(self, batch: list[bytes]) -> None:
        body = b"[" + b",".join(batch) + b"]"
        # The same key on every attempt: a receiver can tell a retry of a batch it already has.
        headers = {**self._headers, "Idempotency-Key": uuid.uuid4().hex}
        retry = self.config.retry
        attempt = 0
        while True:
            attempt += 1
            wait: float | None = None
            try:
                self.requests += 1
                response = self._sender.send(
                    build_request("POST", self.config.url, None, headers, body, None)
                )
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            except ResponseTooLarge:
                self._give_up(
                    batch,
                    f"its answer is larger than {MAX_ANSWER_BYTES:,} bytes: not read "
                    "(the batch may have been received)",
                )
                return
            else:
                status = response.status_code
                if 200 <= status < 300:
                    self.delivered += len(batch)
                    return
                problem = f"HTTP {status}{_said(response)}"
                if status == 413 and len(batch) > 1:
                    # Too large for the receiver: each half is a batch of its own (its own key), down to one.
                    half = len(batch) // 2
                    logger.warning(
                        "%s: %s; sending the batch of %d as two", self.config.name, problem, len(batch)
                    )
                    self._deliver(batch[:half])
                    if self.failure is None:
                        self._deliver(batch[half:])
                    else:
                        self.undelivered += len(batch) - half
                    return
                if status == 413:  # one outcome the receiver refuses whatever else: skip it, send the others
                    self.undelivered += 1
                    self.oversized = self.oversized or REDACTOR.redact(
                        f"{problem} for one outcome on its own"
                    )
                    logger.error(
                        "%s: %s for one outcome of %d bytes on its own: not delivered, it stays in %s",
                        self.config.name,
                        problem,
                        len(batch[0]),
                        self.config.file,
                    )
                    return
                if 300 <= status < 400:
                    self._give_up(batch, f"{problem}: a redirect{_location(response)}, not followed")
                    return
                if status not in RETRIED_STATUSES and status < 500:
                    self._give_up(batch, problem)
                    return
                wait = retry_after_seconds(response.headers)
            if attempt >= retry.max_attempts or self._stop.is_set():
                self._give_up(batch, f"{problem} on all {attempt} attempts")
                return
            cap = min(retry.max_backoff_seconds, retry.backoff_seconds * (2 ** (attempt - 1)))
            delay = min(wait, retry.max_backoff_seconds) if wait is not None else random.uniform(cap / 2, cap)
            logger.warning(
                "%s: %s; retrying in %.2fs (attempt %d of %d)",
                self.config.name,
                problem,
                delay,
                attempt + 1,
                retry.max_attempts,
            )
            if self._stop.wait(delay):
                self._give_up(batch, f"{problem}; the run stopped before another attempt")
                return

    def _give_up(self, batch: list[bytes], why: str) -> None:
        self.undelivered += len(batch)
        if self.failure is None:
            self.failure = REDACTOR.redact(why)
            logger.error(
                "%s failed for good: %s. No more outcomes are POSTed to it in this run; every outcome "
                "stays in %s (%s)",
                self.config.name,
                self.failure,
                self.config.file_setting,
                self.config.file,
            )


def _said(response: Response) -> str:
    text = REDACTOR.shorten(response.text.strip(), 200)
    return f": {text}" if text else ""


def _location(response: Response) -> str:
    location = response.headers.get("location")
    if not location:
        return ""
    try:
        target = response.request.url.join(location)
    except httpx.InvalidURL:
        return ""
    return f" to {target.scheme}://{target.host}"
