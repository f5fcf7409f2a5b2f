"""Bulk jobs end to end: open, add job data, execute asynchronously, read paged results."""

from __future__ import annotations

import time


def errors(response):
    assert response.status_code == 422, response.text
    return response.json()["errors"]


def wait_done(api, job_id, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api.get(f"/v2/bulk_jobs/{job_id}").json()["data"]
        if job["state"] == "done":
            return job
        time.sleep(0.02)
    raise AssertionError(f"bulk job {job_id} not done after {timeout} s: {job}")


def test_person_upsert_bulk_job_end_to_end(sb, api):
    existing = sb.records("people")[0]
    job = api.post("/v2/bulk_jobs", json={"name": "Nightly import", "type": "person/upsert"}).json()["data"]
    assert (job["state"], job["ready_to_execute"], job["total"]) == ("open", False, 0)
    records = [
        {"email_address": f"bulk{i}@example.test", "first_name": f"Bulk{i}", "upsert_key": "email_address"}
        for i in range(250)
    ]
    records.append({"email_address": existing["email_address"], "title": "Updated by bulk"})
    records.append({"email_address": "not-an-email", "first_name": "Broken"})
    records.append({"first_name": "No email at all"})
    for start in range(0, len(records), 100):
        added = api.post(f"/v2/bulk_jobs/{job['id']}/job_data", json={"data": records[start : start + 100]})
        assert added.status_code == 200 and added.json() == {
            "data": {"records": len(records[start : start + 100])}
        }
    assert api.get(f"/v2/bulk_jobs/{job['id']}/results").json()["data"] == [], "no results before done"
    pending = api.get(f"/v2/bulk_jobs/{job['id']}/job_data", params={"per_page": 5}).json()["data"]
    assert [d["status"] for d in pending] == ["pending"] * 5 and pending[0]["bulk_job"]["id"] == job["id"]

    ready = api.put(f"/v2/bulk_jobs/{job['id']}", json={"ready_to_execute": True}).json()["data"]
    assert (
        ready["state"] == "executing" and ready["ready_to_execute"] is True and ready["total"] == len(records)
    )
    assert errors(
        api.post(f"/v2/bulk_jobs/{job['id']}/job_data", json={"data": [{"email_address": "late@x.test"}]})
    )
    done = wait_done(api, job["id"])
    assert (done["total"], done["processed"], done["errors"]) == (len(records), len(records), 2)
    assert done["finished_at"] and done["marked_ready_at"]

    results, cursor = [], None
    while True:
        params = {"per_page": 100} if cursor is None else {"per_page": 100, "id[gt]": cursor}
        page = api.get(f"/v2/bulk_jobs/{job['id']}/results", params=params).json()["data"]
        if not page:
            break
        assert len(page) <= 100
        results += page
        cursor = page[-1]["id"]
    assert len(results) == len(records)
    assert [r["record"] for r in results] == records, "each result carries the submitted record, unchanged"
    ok = [r for r in results if r["status"] == "success"]
    bad = [r for r in results if r["status"] == "error"]
    assert len(ok) == len(records) - 2
    assert {r["error"] for r in bad} == {"email_address is invalid", "email_address can't be blank"}
    assert all(r["resource"] is None for r in bad)
    assert (
        ok[0]["resource"]["upsert_type"] == "create"
        and ok[0]["resource"]["person"]["email_address"] == "bulk0@example.test"
    )
    update = next(r for r in ok if r["record"]["email_address"] == existing["email_address"])
    assert (
        update["resource"]["upsert_type"] == "update" and update["resource"]["person"]["id"] == existing["id"]
    )
    assert api.get(f"/v2/people/{existing['id']}").json()["data"]["title"] == "Updated by bulk"

    only_errors = api.get(f"/v2/bulk_jobs/{job['id']}/results", params={"status": "error"}).json()["data"]
    assert [r["id"] for r in only_errors] == [r["id"] for r in bad]
    emails = {p["email_address"] for p in sb.records("people")}
    assert {f"bulk{i}@example.test" for i in range(250)} <= emails
    assert errors(api.put(f"/v2/bulk_jobs/{job['id']}", json={"name": "too late"}))
    assert api.get(f"/v2/bulk_jobs/{job['id']}/results", params={"per_page": 101}).status_code == 422


def test_job_data_limits_and_unknown_jobs(sb, api):
    job = api.post("/v2/bulk_jobs", data={"type": "person/upsert"}).json()["data"]
    too_many = api.post(
        f"/v2/bulk_jobs/{job['id']}/job_data",
        json={"data": [{"email_address": f"x{i}@y.test"} for i in range(5001)]},
    )
    assert "data" in errors(too_many)
    assert (
        api.post(
            f"/v2/bulk_jobs/{job['id']}/job_data",
            json={"data": [{"email_address": f"x{i}@y.test"} for i in range(5000)]},
        ).status_code
        == 200
    )
    assert "data" in errors(api.post(f"/v2/bulk_jobs/{job['id']}/job_data", json={"data": []}))
    assert "data" in errors(api.post(f"/v2/bulk_jobs/{job['id']}/job_data", json={"data": ["not an object"]}))
    assert api.get(f"/v2/bulk_jobs/{job['id']}").json()["data"]["total"] == 5000
    assert api.post("/v2/bulk_jobs/13999999/job_data", json={"data": [{}]}).status_code == 404
    assert api.get("/v2/bulk_jobs/13999999/results").status_code == 404
    assert "type" in errors(api.post("/v2/bulk_jobs", json={"type": "dragon/tame"}))
    assert errors(api.post("/v2/bulk_jobs", json={"name": "untyped"})) == {"type": ["can't be blank"]}
    api.put(f"/v2/bulk_jobs/{job['id']}", json={"ready_to_execute": "true"}).raise_for_status()
    done = wait_done(api, job["id"])
    assert done["processed"] == 5000 and done["errors"] == 0


def test_processing_is_asynchronous_and_time_scaled(sb, api):
    sb.configure(bulk_rate=200, time_scale=1, bulk_latency=0)
    job = api.post("/v2/bulk_jobs", json={"type": "person/upsert"}).json()["data"]
    api.post(
        f"/v2/bulk_jobs/{job['id']}/job_data",
        json={"data": [{"email_address": f"slow{i}@y.test"} for i in range(60)]},
    )
    api.put(f"/v2/bulk_jobs/{job['id']}", json={"ready_to_execute": True})
    time.sleep(0.1)
    midway = api.get(f"/v2/bulk_jobs/{job['id']}").json()["data"]
    assert midway["state"] == "executing" and 0 < midway["processed"] < 60
    assert wait_done(api, job["id"])["processed"] == 60
