"""tap-salesloft as a process against the sandbox, reading the records the config lists: by id (the 14 get-by-id
operations of the seeds' catalog) and by external ID (the external-ID and opportunities guides)."""

from __future__ import annotations

from helpers import by_id, run_tap, tap_config

from sandbox.resources import CATALOG

# stream -> (setting, sandbox resource)
BY_ID = {
    "accounts_by_id": ("account_ids", "accounts"),
    "bulk_jobs_by_id": ("bulk_job_ids", "bulk_jobs"),
    "cadence_memberships_by_id": ("cadence_membership_ids", "cadence_memberships"),
    "cadences_by_id": ("cadence_ids", "cadences"),
    "calls_by_id": ("call_ids", "calls"),
    "custom_fields_by_id": ("custom_field_ids", "custom_fields"),
    "emails_by_id": ("email_ids", "emails"),
    "imports_by_id": ("import_ids", "imports"),
    "notes_by_id": ("note_ids", "notes"),
    "people_by_id": ("people_ids", "people"),
    "person_stages_by_id": ("person_stage_ids", "person_stages"),
    "steps_by_id": ("step_ids", "steps"),
    "tasks_by_id": ("task_ids", "tasks"),
    "users_by_id": ("user_ids", "users"),
}
BY_EXTERNAL_ID = ["people_by_external_id", "accounts_by_external_id", "users_by_external_id"]
BY_EXTERNAL_ID.append("opportunities_by_external_id")


def test_every_get_by_id_stream_reads_exactly_the_listed_records_and_names_the_missing_id(sandbox, tmp_path):
    config = tap_config(sandbox)
    expected: dict[str, tuple[list[dict], int]] = {}
    for stream, (setting, resource) in BY_ID.items():
        records = sorted(sandbox.records(resource), key=lambda r: r["id"])[:3]
        missing = CATALOG[resource].first_id + 9_999_990  # in the resource's id block, never seeded
        config[setting] = [*(r["id"] for r in records), missing]
        expected[stream] = (records, missing)
    sandbox.clear_journal()
    run = run_tap(config, tmp_path, streams=list(BY_ID))
    journal = sandbox.journal()
    for stream, (records, missing) in expected.items():
        assert by_id(run.records[stream]) == by_id(records), stream
        if stream == "bulk_jobs_by_id":  # no ids filter on that list: one request per id, a 404 skipped
            assert f"GET /v2/bulk_jobs/{missing} -> 404 ignored" in run.stderr
        else:
            assert f"stream {stream}: no record with id {missing}" in run.stderr
    list_reads = [e for e in journal if "ids[]" in e["query"]]
    assert len(list_reads) == len(BY_ID) - 1  # one request per stream: 4 ids fit one batch
    assert len([e for e in journal if e["path"].startswith("/v2/bulk_jobs/")]) == 4


def test_a_long_id_list_costs_one_request_per_hundred_ids(sandbox, tmp_path):
    people = sorted(sandbox.records("people"), key=lambda r: r["id"])[:150]
    sandbox.clear_journal()
    run = run_tap(
        tap_config(sandbox, people_ids=[p["id"] for p in people]), tmp_path, streams=["people_by_id"]
    )
    assert by_id(run.records["people_by_id"]) == by_id(people)
    batches = [e["query"]["ids[]"] for e in sandbox.journal()]
    assert [len(b) for b in batches] == [100, 50]
    assert "no record with id" not in run.stderr


def test_unset_or_empty_lists_read_nothing_and_send_no_request(sandbox, tmp_path):
    sandbox.clear_journal()
    settings = {setting: [] for setting, _ in BY_ID.values()}  # and the external-ID ones left unset
    run = run_tap(tap_config(sandbox, **settings), tmp_path, streams=[*BY_ID, *BY_EXTERNAL_ID])
    assert run.records == {}
    assert sandbox.journal() == []


def test_records_by_external_id_with_the_unknown_one_left_out(sandbox, tmp_path):
    mappings = sandbox.records("external_mappings")

    def mapped(external_type: str, object_type: str) -> dict[str, int]:
        found = [
            m for m in mappings if (m["external_type"], m["object_type"]) == (external_type, object_type)
        ]
        return {m["external_id"]: m["object_id"] for m in sorted(found, key=lambda m: m["external_id"])[:2]}

    people, opportunities = mapped("crm", "people"), mapped("crm_opportunity", "opportunities")
    config = tap_config(
        sandbox,
        people_external_type="crm",
        people_external_ids=[*people, "CONTACT-NOT-MAPPED"],
        opportunity_external_type="crm_opportunity",
        opportunity_external_ids=list(opportunities),
    )
    sandbox.clear_journal()
    run = run_tap(config, tmp_path, streams=["people_by_external_id", "opportunities_by_external_id"])
    assert sorted(r["id"] for r in run.records["people_by_external_id"]) == sorted(people.values())
    assert sorted(r["id"] for r in run.records["opportunities_by_external_id"]) == sorted(
        opportunities.values()
    )
    sent = {e["path"]: e["query"]["external_ids[]"] for e in sandbox.journal()}
    assert sent == {
        "/v2/external/ids/crm/people": [*people, "CONTACT-NOT-MAPPED"],
        "/v2/external/ids/crm_opportunity/opportunities": list(opportunities),
    }


def test_external_ids_without_their_external_type_stop_the_run_naming_the_setting(sandbox, tmp_path):
    config = tap_config(sandbox, account_external_ids=["ACCT-00001"])
    run = run_tap(config, tmp_path, streams=["accounts_by_external_id"], check=False)
    assert run.returncode == 1
    assert "account_external_type" in run.stderr
    assert run.records == {}


def test_the_results_of_one_bulk_job_filtered_by_status_without_reading_the_others(sandbox, tmp_path):
    jobs = sorted(sandbox.records("bulk_jobs"), key=lambda j: j["id"])
    done = [j for j in jobs if j["state"] == "done"]
    assert len(done) >= 2
    wanted_job, missing = done[1]["id"], CATALOG["bulk_jobs"].first_id + 9_999_990
    config = tap_config(
        sandbox,
        bulk_job_ids=[wanted_job, missing],
        stream_params={"bulk_job_results_by_job_id": {"status": "error"}},
    )
    sandbox.clear_journal()
    run = run_tap(config, tmp_path, streams=["bulk_job_results_by_job_id"])
    read = run.records.get("bulk_job_results_by_job_id", [])
    assert read and {r["status"] for r in read} == {"error"}
    paths = {e["path"] for e in sandbox.journal()}
    assert paths == {f"/v2/bulk_jobs/{wanted_job}/results", f"/v2/bulk_jobs/{missing}/results"}
    assert f"GET /v2/bulk_jobs/{missing}/results -> 404 ignored" in run.stderr
    # The same results as the job's full listing holds with that status.
    with sandbox.client() as client:
        listing = client.get(f"/v2/bulk_jobs/{wanted_job}/results", params={"per_page": 100}).json()["data"]
    assert by_id(read) == by_id([r for r in listing if r["status"] == "error"])
