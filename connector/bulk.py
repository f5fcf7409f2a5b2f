"""Bulk jobs as data: create -> upload in chunks -> start -> poll -> read only the failures.

Each failure is matched back to the record that was submitted (the API echoes it); every other
record is accepted from the job's own counts, so successes cost no requests.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from connector import jsonio
from connector.builder import BuiltRequest, RequestBuilder
from connector.errors import AuthError, ConnectorError, HTTPStatusError, RunStopped
from connector.http import Response, unanswered_attempts
from connector.outcomes import SentRequest
from connector.pagination import PageRequest, Paginator
from connector.render import dot_path
from connector.templates import JobStep, JobTemplate

if TYPE_CHECKING:
    from connector.target import Item, TemplateSink

logger = logging.getLogger("connector.bulk")


def _canonical(value: Any) -> bytes:
    """One short key per JSON value, whatever its key order or how datetimes were typed: a 16-byte digest
    of its canonical JSON (orjson's own bytes keep a 4 KB buffer each: 400 MB for 100,000 records)."""
    canonical = jsonio.dumps(jsonio.loads(jsonio.dumps(value, default=str)), option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(canonical, digest_size=16).digest()


class BulkJobRun:
    def __init__(self, sink: TemplateSink, items: list[Item]) -> None:
        self.sink = sink
        self.items = items
        job = sink.template.job
        assert job is not None  # a bulk_job sink always has its steps (the loader checks)
        self.job_template: JobTemplate = job
        self.client = sink.client
        self.stream = sink.stream_name
        self.config = sink.connector_target.config
        self.job: dict[str, Any] = {}
        self.requests = 0
        self.failures_read = 0  # failed results read back from the job
        self._builders: dict[int, RequestBuilder] = {}

    def _builder(self, step: JobStep) -> RequestBuilder:
        key = id(step)
        if key not in self._builders:
            self._builders[key] = RequestBuilder(step.request, self.client.origin, self.config)
        return self._builders[key]

    def _call(
        self,
        step: JobStep,
        records: list[dict] | None = None,
        params: dict | None = None,
        url: str | None = None,
        may_have_landed: bool = False,
    ) -> tuple[Any, Response]:
        """One step's request: its parsed body and the response (whose links a failures reader follows).
        ``may_have_landed``: a refusal after an unanswered attempt is taken as that attempt having been
        applied (a job that has started refuses to be started again)."""
        context = {"job": self.job, "records": records or [], "stream": self.stream}
        built = self._builder(step).build(context)
        self.requests += 1
        content, headers = built.encoded()
        response = self.client.send(
            built.method,
            url or built.url,
            params=None if url else {**built.params, **(params or {})} or None,
            headers=headers,
            content=content,
        )
        if may_have_landed and not response.is_success and unanswered_attempts(response):
            logger.warning(
                "bulk job %s: %s %s answered %s after an attempt that got no answer: taking that attempt as "
                "applied and polling the job",
                self.job.get("id"),
                built.method,
                response.request.url.path,
                response.status_code,
            )
            return None, response
        self.client.raise_for_status(response)
        return (jsonio.loads(response.content) if response.content else None), response

    def run(self) -> None:
        job = self.job_template
        outcomes = self.sink.outcomes
        bodies = [item.body for item in self.items]
        if self.sink.connector_target.dry_run:
            self._plan(bodies)
            return
        try:
            created, _ = self._call(job.create)
        except (HTTPStatusError, ConnectorError) as exc:
            if isinstance(exc, (AuthError, RunStopped)):
                raise
            for item in self.items:
                outcomes.reject(
                    self.stream,
                    item.record,
                    error=f"bulk job not created: {exc}",
                    kind="api",
                    sink=self.sink.template.name,
                )
            return
        self.job = {"id": dot_path(job.create.id or "data.id")(created), "created": created}
        logger.info("bulk job %s created for %d records of %s", self.job["id"], len(bodies), self.stream)

        chunk = job.upload.max_records or len(bodies)
        uploaded: list[int] = []
        for start in range(0, len(bodies), chunk):
            part = list(range(start, min(start + chunk, len(bodies))))
            try:
                self._call(job.upload, records=[bodies[i] for i in part])
                uploaded += part
            except (HTTPStatusError, ConnectorError) as exc:
                if isinstance(exc, (AuthError, RunStopped)):
                    raise
                status = exc.status if isinstance(exc, HTTPStatusError) else None
                for i in part:
                    outcomes.reject(
                        self.stream,
                        self.items[i].record,
                        status=status,
                        kind="api",
                        error=f"job data upload refused: {exc}",
                        sink=self.sink.template.name,
                    )
        if not uploaded:
            return
        try:
            if job.start is not None:
                self._call(job.start, may_have_landed=True)
            final = self._poll(job.poll)
            failures = self._failures(uploaded) if job.failures is not None else {}
        except (AuthError, RunStopped):
            raise
        except ConnectorError as exc:
            # The job may or may not have applied them: hand them back for a re-run (upserts are idempotent).
            for i in uploaded:
                outcomes.reject(
                    self.stream,
                    self.items[i].record,
                    kind="unknown_outcome",
                    error=f"bulk job {self.job['id']} outcome unknown: {exc}",
                    sink=self.sink.template.name,
                )
            return
        expected = _int_or_none(dot_path(job.poll.failed_count)(final)) if job.poll.failed_count else None
        read = self.failures_read  # results read back, matched or not (a retried upload can repeat a record)
        unread = expected is not None and expected > read
        if expected is not None and expected != read:
            logger.warning(
                "bulk job %s reports %s failed records, %d were read back%s",
                self.job["id"],
                expected,
                read,
                ": the records not read back as failed get an unknown outcome" if unread else "",
            )
        if unread:
            # Some failures were never read: which of the other records failed is unknown. Hand them back
            # (bulk jobs upsert: a re-run is safe) rather than count failures as accepted.
            for i in uploaded:
                if i not in failures:
                    outcomes.reject(
                        self.stream,
                        self.items[i].record,
                        kind="unknown_outcome",
                        error=f"bulk job {self.job['id']} reports {expected} failed records and {read} "
                        "were read back: whether this one failed is unknown",
                        sink=self.sink.template.name,
                    )
            uploaded = [i for i in uploaded if i in failures]
        accepted = 0
        for i in uploaded:
            if i in failures:
                if self.sink.changes is not None:
                    self.sink.changes.refused(self.items[i], None)  # the job says it failed: nothing applied
                outcomes.reject(
                    self.stream,
                    self.items[i].record,
                    error=failures[i],
                    kind="api",
                    sink=self.sink.template.name,
                    request=SentRequest("BULK", f"job {self.job['id']}", None, None, bodies[i]),
                )
            else:
                accepted += 1
                if self.sink.changes is not None:
                    self.sink.changes.accepted(self.items[i])
        outcomes.accept(self.stream, accepted)
        logger.info(
            "bulk job %s done: %d accepted, %d rejected, %d requests",
            self.job["id"],
            accepted,
            len(failures),
            self.requests,
        )

    def _plan(self, bodies: list[dict]) -> None:
        """Dry run: record the create and upload requests the job would send; nothing is sent."""
        job = self.job_template
        self.job = {"id": "{job.id}"}
        steps: list[tuple[JobStep, list[dict]]] = [(job.create, [])]
        chunk = job.upload.max_records or max(len(bodies), 1)
        steps += [(job.upload, bodies[i : i + chunk]) for i in range(0, len(bodies), chunk)]
        if job.start is not None:
            steps.append((job.start, []))
        for step, records in steps:
            built = self._builder(step).build({"job": self.job, "records": records, "stream": self.stream})
            shown = SentRequest(
                built.method,
                built.url,
                built.params or None,
                self.client.visible_headers(built.headers),
                built.body,
            )
            self.sink.outcomes.record_request(self.stream, shown, len(records))
        self.sink.outcomes.accept(self.stream, len(bodies))

    def _poll(self, step: JobStep) -> Any:
        deadline = time.monotonic() + step.timeout_seconds
        interval = step.interval_seconds
        while True:
            body, _ = self._call(step)
            assert step.done is not None
            if step.done.render({"response": body, "job": self.job, "config": self.config}):
                return body
            if time.monotonic() > deadline:
                raise ConnectorError(f"bulk job {self.job['id']} not done after {step.timeout_seconds}s")
            self.client.wait(interval)
            interval = min(interval * 1.5, 10.0)

    def _failures(self, uploaded: list[int]) -> dict[int, str]:
        """Read the failed results only; map each to the index of the record that was submitted."""
        step = self.job_template.failures
        assert step is not None
        by_content: dict[bytes, list[int]] = defaultdict(list)
        for i in uploaded:
            by_content[_canonical(self.items[i].body)].append(i)
        records_of = dot_path(step.records)
        record_of = dot_path(step.record)
        error_of = dot_path(step.error)
        built = self._builder(step).build({"job": self.job, "stream": self.stream})
        paginator = Paginator.for_params(step.pagination, self.client.origin, built.params)
        page: PageRequest | None = paginator.first()
        failures: dict[int, str] = {}
        unmatched = 0
        self.failures_read = 0
        while page is not None:
            body, response = self._call(step, params=page.params, url=page.url)
            results = records_of(body) or []
            self.failures_read += len(results)
            for result in results:
                candidates = by_content.get(_canonical(record_of(result)))
                if candidates:
                    failures[candidates.pop(0)] = str(error_of(result) or "failed in bulk job")
                else:
                    unmatched += 1
            page = paginator.next(page, response, body, results)
        if unmatched:
            logger.warning(
                "bulk job %s: %d failed results did not match a submitted record", self.job["id"], unmatched
            )
        return failures


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def item_requests(sink: TemplateSink) -> Callable[[Item], BuiltRequest]:
    """Per record, the upload request of a job holding only that record: what changes_only compares (a change
    of the record or of the upload template changes it; the job's id, unknown before, does not)."""
    job = sink.template.job
    assert job is not None
    builder = RequestBuilder(job.upload.request, sink.client.origin, sink.connector_target.config)
    placeholder = {"id": "{job.id}"}
    return lambda item: builder.build(
        {"job": placeholder, "records": [item.body], "stream": sink.stream_name}
    )


def run_bulk_job(sink: TemplateSink, items: list[Item]) -> None:
    BulkJobRun(sink, items).run()
