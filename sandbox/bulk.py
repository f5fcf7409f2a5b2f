"""Bulk jobs, processed asynchronously as Salesloft does.

``POST /v2/bulk_jobs`` opens a job (``state: open``); ``POST .../job_data`` adds at most 5,000
records per call while the job is open; ``PUT /v2/bulk_jobs/{id}`` with ``ready_to_execute``
moves it to ``executing`` (as in Salesloft's example flow), after which records are applied at
``bulk_rate`` records per sandbox second (time-scaled) until the job is ``done``. Each record is
applied as a person upsert (``person/upsert``, ``upsert_key`` default ``email_address``) or an
account upsert (``account/upsert``, default ``domain``), and gets a result ``{id, status,
error, record, resource}`` where ``record`` is the submitted record, unchanged. Results are
empty until the job is done, then paged by ``id[gt]`` and filtered by ``status``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sandbox import contacts
from sandbox import records as rec
from sandbox.listing import cursor_response, parse_per_page
from sandbox.params import as_bool, present
from sandbox.routing import Call
from sandbox.store import Record
from sandbox.wire import ApiError, Response, data_response, describe, invalid, json_response

if TYPE_CHECKING:
    from sandbox.state import State

BULK_TYPES = {"person/upsert": ("people", "email_address"), "account/upsert": ("accounts", "domain")}
MAX_JOB_DATA = 5000
MAX_PER_TICK = 2000  # records applied per tick, so other requests are not starved


class BulkRunner:
    def __init__(self, state: State, result_jobs: dict[int, int]):
        self.state = state
        self.job_results: dict[int, list[int]] = {}
        for result_id in sorted(result_jobs):
            self.job_results.setdefault(result_jobs[result_id], []).append(result_id)
        self.meta: dict[int, dict[str, Any]] = {}  # result id -> created/started/finished stamps
        self.running: dict[int, float] = {}  # job id -> monotonic time it was marked ready
        self.cursor: dict[int, int] = {}  # job id -> position of the next record to apply

    # -- processing ------------------------------------------------------------------------

    def start(self, job_id: int) -> None:
        self.running[job_id] = time.monotonic()
        self.cursor[job_id] = 0

    def advance(self) -> None:
        """Apply every record that is due by now (called on a timer and before bulk reads)."""
        options = self.state.options
        now = time.monotonic()
        jobs = self.state.store["bulk_jobs"]
        for job_id in list(self.running):
            job = jobs.get(job_id)
            if job is None:
                del self.running[job_id]
                continue
            elapsed = (now - self.running[job_id]) * options.time_scale - options.bulk_latency
            if elapsed < 0:
                continue
            results = self.job_results.get(job_id, [])
            position = self.cursor[job_id]
            target = min(len(results), int(elapsed * options.bulk_rate), position + MAX_PER_TICK)
            target = max(target, position)
            processed, errors = job.get("processed") or 0, job.get("errors") or 0
            for result_id in results[position:target]:
                processed += 1
                if not self._apply(job, result_id):
                    errors += 1
            self.cursor[job_id] = target
            finished = target >= len(results)
            if target > position or finished:
                updated = dict(job)
                updated.update(processed=processed, errors=errors)
                if finished:
                    updated.update(state="done", finished_at=self.state.clock.now()[1])
                    del self.running[job_id]
                rec.save(self.state, "bulk_jobs", updated)

    def _apply(self, job: Record, result_id: int) -> bool:
        """Apply one submitted record; True on success."""
        table = self.state.store["bulk_job_results"]
        submitted = table.get(result_id)["record"]
        resource, default_key = BULK_TYPES[job["type"]]
        params = dict(submitted)
        params.setdefault("upsert_key", default_key)
        started = self.state.clock.now()[1]
        try:
            record, kind = contacts.upsert(self.state, resource, params)
            status, error, payload = "success", None, contacts.upsert_payload(resource, record, kind)
        except ApiError as failure:
            status, error, payload = "error", describe(failure), None
        table.replace(
            {"id": result_id, "status": status, "error": error, "record": submitted, "resource": payload}
        )
        self.meta.setdefault(result_id, {}).update(started_at=started, finished_at=self.state.clock.now()[1])
        return status == "success"


# -- handlers --------------------------------------------------------------------------------------


def _job(state: State, raw_id: str) -> Record:
    return rec.path_id(state, "bulk_jobs", raw_id)


def create_job(state: State, call: Call) -> Response:
    p = call.params
    rec.required(p, "type")
    if p["type"] not in BULK_TYPES:
        raise invalid("type", "must be one of: " + ", ".join(BULK_TYPES))
    job = rec.blank_record(state, "bulk_jobs")
    job.update(
        name=str(p["name"]) if present(p.get("name")) else None,
        type=p["type"],
        state="open",
        ready_to_execute=False,
        total=0,
        processed=0,
        errors=0,
        scopes=[],
    )
    job = rec.insert(state, "bulk_jobs", job)
    state.bulk.job_results[job["id"]] = []
    return data_response(job)


def list_jobs(state: State, call: Call) -> Response:
    state.bulk.advance()
    return cursor_response(state.store["bulk_jobs"], call.query)


def get_job(state: State, call: Call) -> Response:
    state.bulk.advance()
    return data_response(_job(state, call.args["id"]))


def update_job(state: State, call: Call) -> Response:
    job = dict(_job(state, call.args["id"]))
    if job["state"] != "open" or job.get("ready_to_execute"):
        raise invalid("state", "must be open to update a bulk job")
    p = call.params
    if "name" in p:
        job["name"] = str(p["name"]) if present(p["name"]) else None
    ready = False
    if "ready_to_execute" in p:
        flag = as_bool(p["ready_to_execute"])
        if flag is None:
            raise invalid("ready_to_execute", "must be true or false")
        ready = flag
    if ready:
        stamp = state.clock.now()[1]
        job.update(ready_to_execute=True, state="executing", marked_ready_at=stamp, started_at=stamp)
    job = rec.save(state, "bulk_jobs", job)
    if ready:
        state.bulk.start(job["id"])
    return data_response(job)


def add_job_data(state: State, call: Call) -> Response:
    job = _job(state, call.args["id"])
    if job["state"] != "open" or job.get("ready_to_execute"):
        raise invalid("bulk_job", "is not open: job data can only be added before ready_to_execute")
    data = call.params.get("data")
    if not isinstance(data, list) or not data:
        raise invalid("data", "must be a non-empty array of objects")
    if len(data) > MAX_JOB_DATA:
        raise invalid("data", f"must be {MAX_JOB_DATA} records or less (got {len(data)})")
    if not all(isinstance(item, dict) for item in data):
        raise invalid("data", "must be an array of objects")
    table = state.store["bulk_job_results"]
    results = state.bulk.job_results.setdefault(job["id"], [])
    stamp = state.clock.now()[1]
    for item in data:
        result_id = table.allocate_id()
        table.insert({"id": result_id, "status": "pending", "error": None, "record": item, "resource": None})
        results.append(result_id)
        state.bulk.meta[result_id] = {"created_at": stamp, "started_at": None, "finished_at": None}
    updated = dict(job)
    updated["total"] = (job.get("total") or 0) + len(data)
    rec.save(state, "bulk_jobs", updated)
    return data_response({"records": len(data)})


def list_job_data(state: State, call: Call) -> Response:
    state.bulk.advance()
    job = _job(state, call.args["id"])
    ids = state.bulk.job_results.get(job["id"], [])
    ref = state.ref("bulk_jobs", job["id"])

    def render(result: Record) -> dict[str, Any]:
        meta = state.bulk.meta.get(result["id"], {})
        return {
            **result,
            "bulk_job": ref,
            "created_at": meta.get("created_at", job.get("created_at")),
            "started_at": meta.get("started_at"),
            "finished_at": meta.get("finished_at"),
        }

    return cursor_response(state.store["bulk_job_results"], call.query, ids, render)


def list_results(state: State, call: Call) -> Response:
    state.bulk.advance()
    job = _job(state, call.args["id"])
    if job["state"] != "done":
        per_page = parse_per_page(call.query)
        return json_response(
            200, {"data": [], "metadata": {"filtering": {}, "paging": {"per_page": per_page}}}
        )
    ids = state.bulk.job_results.get(job["id"], [])
    return cursor_response(state.store["bulk_job_results"], call.query, ids)
