"""A bulk job's failures are read through every page, whatever the pagination; none is counted as accepted.

The API is a small bulk-job service on a socket (create, upload, start, poll, failed results): its failed
results come in pages linked by a ``Link: rel="next"`` header.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from helpers import logged_json
from hostile_server import HostileServer, Peer, SeenRequest, answer
from reliability_support import as_lines, hostile_argv, rejected, singer_messages

BULK = """\
name: bulk_items
kind: bulk_job
batch: {max_records: 1000}
job:
  create: {method: POST, url: /v1/jobs, body: {kind: upsert}, id: data.id}
  upload: {method: POST, url: "/v1/jobs/{{ job.id }}/data", body: {data: "{{ records }}"}, max_records: 100}
  start: {method: PUT, url: "/v1/jobs/{{ job.id }}", body: {ready: true}}
  poll:
    method: GET
    url: "/v1/jobs/{{ job.id }}"
    done: "response.data.state == 'done'"
    failed_count: data.errors
    interval_seconds: 0.05
    timeout_seconds: 30
  failures:
    method: GET
    url: "/v1/jobs/{{ job.id }}/failures"
    records: data
    record: record
    error: error
    pagination: {type: link_header}
"""


class BulkApi:
    """Fails the records whose ``fail`` is true; serves their results ``per_page`` a page, linked by
    ``Link`` headers. ``report_extra`` failed records more than it serves (a job whose results are short)."""

    def __init__(self, per_page: int = 2, report_extra: int = 0) -> None:
        self.per_page = per_page
        self.report_extra = report_extra
        self.uploaded: list[dict] = []

    def __call__(self, request: SeenRequest, peer: Peer) -> bool:
        path = request.path
        failed = [r for r in self.uploaded if r.get("fail")]
        if request.method == "POST" and path == "/v1/jobs":
            return peer.send(answer(201, {"data": {"id": 7}}))
        if request.method == "POST" and path == "/v1/jobs/7/data":
            self.uploaded += json.loads(request.body)["data"]
            return peer.send(answer(200, {"data": {}}))
        if request.method == "PUT":
            return peer.send(answer(200, {"data": {"id": 7}}))
        if path == "/v1/jobs/7":
            return peer.send(
                answer(200, {"data": {"state": "done", "errors": len(failed) + self.report_extra}})
            )
        if path == "/v1/jobs/7/failures":
            page = int(request.target.partition("page=")[2] or 1)
            chunk = failed[(page - 1) * self.per_page : page * self.per_page]
            headers = {}
            if page * self.per_page < len(failed):
                headers["Link"] = f'<{peer.server.url}/v1/jobs/7/failures?page={page + 1}>; rel="next"'
            results = [{"record": r, "error": f"invalid: {r['id']}"} for r in chunk]
            return peer.send(answer(200, {"data": results}, headers))
        return peer.send(answer(404, {"error": "no route"}))


def run_bulk(tmp_path, api: BulkApi, records: list[dict]) -> subprocess.CompletedProcess:
    with HostileServer(api) as server:
        argv = hostile_argv("target", tmp_path, server.url, sinks={"bulk_items": BULK}, sink="bulk_items")
        return subprocess.run(
            argv,
            input=as_lines(singer_messages("things", records)),
            text=True,
            capture_output=True,
            timeout=120,
        )


def test_failures_on_every_linked_page_are_rejected_and_only_the_rest_accepted(tmp_path):
    records = [{"id": i, "fail": i % 3 == 0} for i in range(12)]  # 4 failures: pages of 3 and 1
    proc = run_bulk(tmp_path, BulkApi(per_page=3), records)
    assert proc.returncode == 0, proc.stderr[-3000:]
    failed = {r["record"]["id"] for r in rejected(tmp_path)}
    assert failed == {0, 3, 6, 9}
    assert {r["reason"] for r in rejected(tmp_path)} == {"api"}
    summary = logged_json(proc.stderr, "Target summary: ")
    assert (summary["accepted"], summary["rejected"]) == (8, 4)


@pytest.mark.parametrize("per_page", [1, 100])
def test_failures_the_job_reports_but_never_serves_leave_the_others_unknown_not_accepted(tmp_path, per_page):
    records = [{"id": i, "fail": i == 4} for i in range(6)]
    proc = run_bulk(tmp_path, BulkApi(per_page=per_page, report_extra=1), records)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {r["record"]["id"]: r for r in rejected(tmp_path)}
    assert rows[4]["reason"] == "api"
    assert {i for i, r in rows.items() if r["reason"] == "unknown_outcome"} == {0, 1, 2, 3, 5}
    assert "reports 2 failed records and 1 were read back" in rows[0]["error"]
    assert logged_json(proc.stderr, "Target summary: ")["accepted"] == 0
