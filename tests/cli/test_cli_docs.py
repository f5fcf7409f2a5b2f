"""``connector docs``: the committed reference pages match the templates; --check catches drift."""

from __future__ import annotations

from cli_support import REPO, isolated_templates, run_cli


def test_committed_connector_docs_are_up_to_date():
    result = run_cli("docs", "--check")
    assert result.returncode == 0, result.stdout + "\nRun `connector docs` and commit docs/connectors/."
    assert "docs/connectors/salesloft.md is up to date" in result.stdout


def test_page_lists_streams_and_sinks():
    page = (REPO / "docs/connectors/helpdesk.md").read_text()
    assert (
        "| `tickets` | `/api/v1/tickets` | `id` | `updated_at` (`updated_since`) | cursor (`cursor` from "
        "`meta.next_cursor`) |  | "
    ) in page
    assert (
        '| `comments` | `/api/v1/tickets/{{ parent.id }}/comments` | `id` |  | link_header (rel="next", same origin only) | `tickets` |'
        in page
    )
    assert (
        "| `import_tickets` | POST | `/api/v1/tickets/import` |  | `created_at`, `id`, `updated_at` | up to 100 "
        "records per request |"
    ) in page
    assert "| `api_token` | string, secret |  | API key, sent in the X-Api-Key header. |" in page


def test_check_fails_on_a_stale_page_and_docs_rewrites_it(tmp_path):
    out = tmp_path / "pages"
    assert run_cli("docs", "--out", str(out), "helpdesk").returncode == 0
    page = out / "helpdesk.md"
    page.write_text(page.read_text().replace("tickets", "TICKETS"))
    stale = run_cli("docs", "--check", "--out", str(out), "helpdesk")
    assert stale.returncode == 1
    assert "helpdesk.md is out of date" in stale.stdout
    assert "run `connector docs` to regenerate them" in stale.stdout
    assert run_cli("docs", "--out", str(out), "helpdesk").returncode == 0
    assert run_cli("docs", "--check", "--out", str(out), "helpdesk").returncode == 0


def test_a_template_change_makes_the_page_stale(tmp_path):
    env = isolated_templates(tmp_path, "helpdesk")
    (tmp_path / "templates/helpdesk/sinks/delete_ticket.yaml").unlink()
    result = run_cli("docs", "--check", "helpdesk", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "docs/connectors/helpdesk.md is out of date" in result.stdout


def test_unknown_connection():
    result = run_cli("docs", "nosuch")
    assert result.returncode == 2
    assert "no connection 'nosuch': give a bundled name (" in result.stderr and "or a folder" in result.stderr


def test_docs_of_a_connection_folder(tmp_path):
    import shutil

    from cli_support import REPO

    folder = tmp_path / "mine"
    shutil.copytree(REPO / "templates" / "helpdesk", folder)
    shutil.copytree(REPO / "specs" / "helpdesk", folder / "specs")
    result = run_cli("docs", str(folder), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "out" / "helpdesk.md").read_text()
    assert "| `tickets` | `/api/v1/tickets` |" in page
