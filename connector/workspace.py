"""Where the CLI finds connections: a bundled name (e.g. the one in templates/DEFAULT) or a folder with a connection.yaml.

Template authors work on folders outside the package too; every command takes either form.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from connector.errors import ConnectorError, TemplateError, TemplateErrors
from connector.templates import Connection, available_connections, connection_dir, load_connection


class CommandError(ConnectorError):
    """A command cannot do what was asked; the message says what to change. Exit status 2 by default."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def connection_folder(spec: str) -> Path:
    """The folder of a connection given by name or path; a clear error when there is none."""
    path = Path(spec)
    if (path / "connection.yaml").is_file():
        return path
    if path.name == "connection.yaml" and path.is_file():
        return path.parent
    if "/" not in spec and (connection_dir(spec) / "connection.yaml").is_file():
        return connection_dir(spec)
    known = ", ".join(available_connections()) or "none"
    raise CommandError(
        f"no connection {spec!r}: give a bundled name ({known}) or a folder with a connection.yaml"
    )


def load(spec: str) -> Connection:
    """Load a connection for a command; template errors become one readable message."""
    folder = connection_folder(spec)
    try:
        return load_connection(folder)
    except (TemplateError, TemplateErrors) as exc:
        errors = exc.errors if isinstance(exc, TemplateErrors) else [exc]
        lines = "\n".join(display(str(e)) for e in errors)
        raise CommandError(
            f"the {folder.name} templates do not load ({len(errors)} errors; run `connector validate {spec}`):\n{lines}"
        ) from None


def display(text: str) -> str:
    """Show paths under the current folder relative to it: shorter, and clickable in terminals."""
    cwd = str(Path.cwd().resolve())
    return text.replace(cwd + "/", "")


def relative(path: Path | str) -> str:
    return display(str(Path(path).resolve())) if Path(path).is_absolute() else str(path)


def read_config(path: str | None) -> dict[str, Any]:
    """A JSON config file as a dict; missing or malformed files are the user's to fix, so say which."""
    if not path:
        return {}
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CommandError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise CommandError(f"cannot read config file {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise CommandError(f"config file {path} is not valid JSON: line {exc.lineno}: {exc.msg}") from None
    if not isinstance(value, dict):
        raise CommandError(f"config file {path} must hold a JSON object of settings")
    return value


def with_defaults(connection: Connection, config: dict[str, Any]) -> dict[str, Any]:
    """The config as the tap/target sees it: setting defaults filled in where the user gave none."""
    merged = {s.name: s.default for s in connection.settings if s.default is not None}
    merged.update({k: v for k, v in config.items() if v is not None})
    return merged
