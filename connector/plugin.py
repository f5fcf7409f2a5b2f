"""What a connection's tap and target share: config schema, credentials, the client, the CLI's errors."""

from __future__ import annotations

import difflib
import json
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from jsonschema import ValidationError
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.plugin_base import JSONSchemaValidator  # the validator that also fills in defaults

from connector.errors import ConnectorError, RunStopped
from connector.http import ApiClient
from connector.secrets import REDACTOR, install_logging_filter
from connector.templates import Connection, Setting
from connector.workspace import read_config

logger = logging.getLogger("connector.plugin")

SETTING_TYPES = {
    "string": {"type": ["string", "null"]},
    "integer": {"type": ["integer", "null"]},
    "number": {"type": ["number", "null"]},
    "boolean": {"type": ["boolean", "null"]},
    "date-time": {"type": ["string", "null"], "format": "date-time"},
    "object": {"type": ["object", "null"]},
    "array": {"type": ["array", "null"]},
}

# Settings of the engine itself, offered by every connection's tap and target.
ENGINE_SETTINGS = [
    Setting(
        "rate_window_seconds",
        "number",
        "Length of the API's rate-limit window (for sandboxes with scaled time).",
    ),
    Setting(
        "rate_budget", "integer", "Cost points per window, if the API's is not the connection's default."
    ),
    Setting("rate_reserve", "integer", "Cost points per window left unused for other integrations."),
    Setting("max_attempts", "integer", "Attempts per request before giving up on 429/5xx/network errors."),
    Setting("max_backoff_seconds", "number", "Longest wait between two attempts."),
    Setting(
        "max_retry_after_seconds",
        "number",
        "Longest Retry-After of a 429 waited out (default 3600); a longer one stops the run with an error.",
    ),
    Setting(
        "request_timeout",
        "number",
        "Seconds one attempt of a request may take in all (connecting, sending, the whole answer).",
    ),
    Setting(
        "max_response_bytes",
        "integer",
        "Largest answer read, raw and again decompressed (default 64 MiB); a larger one fails its request.",
    ),
    Setting(
        "http_transport",
        "string",
        "httpx (default: HTTP/2 where offered, proxies and CA settings from the environment) or wire "
        "(lean HTTP/1.1 keep-alive, less CPU per request, no proxies).",
        default="httpx",
    ),
    Setting(
        "token_file",
        "string",
        "File keeping rotated OAuth tokens for later runs and other processes (needed under Meltano, "
        "whose config files are temporary).",
    ),
]


# What the engine's numeric and named settings may hold: a zero request_timeout fails every connect.
ENGINE_BOUNDS: dict[str, dict[str, Any]] = {
    "request_timeout": {"exclusiveMinimum": 0},
    "max_attempts": {"minimum": 1},
    "max_backoff_seconds": {"minimum": 0},
    "max_retry_after_seconds": {"minimum": 0},
    "max_response_bytes": {"minimum": 1024},
    "rate_window_seconds": {"exclusiveMinimum": 0},
    "rate_budget": {"minimum": 1},
    "rate_reserve": {"minimum": 0},
    "http_transport": {"enum": ["httpx", "wire", None]},
}


def config_schema(connection: Connection, extra: Iterable[Setting] = ()) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required = []
    for setting in [*connection.settings, *ENGINE_SETTINGS, *extra]:
        prop = {**SETTING_TYPES[setting.type], **ENGINE_BOUNDS.get(setting.name, {})}
        if setting.description:
            prop["description"] = setting.description
        if setting.default is not None:
            prop["default"] = setting.default
        if setting.secret:
            prop["secret"] = True
            prop["writeOnly"] = True
        properties[setting.name] = prop
        if setting.required:
            required.append(setting.name)
    return {"type": "object", "properties": properties, "required": required}


class ConfigWriter:
    """Writes rotated credentials back to the config file they came from, as the user asked to run with."""

    def __init__(self, config_input: Any) -> None:
        paths: list[Path] = []
        items = config_input if isinstance(config_input, (list, tuple)) else [config_input]
        for item in items:
            if isinstance(item, (str, os.PathLike)) and str(item) != "ENV" and Path(item).is_file():
                paths.append(Path(item))
        self.paths = paths

    def __call__(self, update: Mapping[str, Any], live_config: dict[str, Any] | None = None) -> None:
        if live_config is not None:
            live_config.update(update)
        if not self.paths:
            logger.warning(
                "OAuth tokens were rotated but the config came from no file: save the new refresh token "
                "(setting %s) from your secret store's side, or run with a config file.",
                ", ".join(sorted(update)),
            )
            return
        path = self.paths[-1].resolve()  # a symlinked config is written through its link, not replaced
        data = json.loads(path.read_text())
        data.update(update)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
        logger.info("OAuth tokens rotated; wrote %s back to %s", ", ".join(sorted(update)), path)


class ConnectorPlugin:
    """Mixed into the tap and the target, before singer-sdk's base class."""

    connection: ClassVar[Connection]
    fatal_errors: ClassVar[tuple[type[BaseException], ...]] = (ConnectorError,)

    _cli_config_paths: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *args: Any, config: Any = None, **kwargs: Any) -> None:
        install_logging_filter()
        # singer-sdk's CLI hands over one merged dict: rotated tokens go back to the files it came from.
        self._config_writer = ConfigWriter(
            config if not isinstance(config, Mapping) else self._cli_config_paths
        )
        self._client: ApiClient | None = None
        self._stopping = False
        super().__init__(*args, config=config, **kwargs)

    @classmethod
    def cb_config(cls, ctx: Any, param: Any, value: tuple[str, ...]) -> Any:
        cls._cli_config_paths = tuple(v for v in value if v != "ENV")
        with cls._one_line_errors():
            for path in cls._cli_config_paths:
                read_config(
                    path
                )  # a missing or malformed file: one line naming it and the JSON error, exit 2
        return super().cb_config(ctx, param, value)  # type: ignore[misc]

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """singer-sdk's check, with errors that never show a secret setting's value (a number given for a
        key would be printed as is), and a warning for each setting the plugin does not know (a typo)."""
        schema = self.config_jsonschema  # type: ignore[attr-defined]
        self.append_builtin_config(schema)  # type: ignore[attr-defined]
        properties = schema.get("properties", {})
        errors = [
            _config_error(error, properties)
            for error in JSONSchemaValidator(schema).iter_errors(self._config)  # type: ignore[attr-defined]
        ]
        for name in sorted(set(self._config) - set(properties)):  # type: ignore[attr-defined]
            close = difflib.get_close_matches(name, properties, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            logger.warning("config: unknown setting %r is ignored%s", name, hint)
        if errors:
            if raise_errors:
                raise ConfigValidationError("Config validation failed", errors=errors, schema=schema)
            logger.warning("Config validation failed: %s", "; ".join(errors))
        return errors

    @classmethod
    def invoke(cls, *args: Any, **kwargs: Any) -> None:
        """The CLI: a known failure ends with one clear line and exit code 1, not a traceback."""
        with cls._one_line_errors():
            super().invoke(*args, **kwargs)  # type: ignore[misc]

    @classmethod
    @contextmanager
    def _one_line_errors(cls) -> Iterator[None]:
        try:
            yield
        except cls.fatal_errors as exc:
            sys.stderr.write(f"{cls.name}: error: {REDACTOR.redact(str(exc))}\n")  # type: ignore[attr-defined]
            raise SystemExit(getattr(exc, "exit_code", 1)) from None

    def _handle_termination(self, signum: int, frame: Any) -> None:
        """SIGTERM/SIGINT: end every wait at once and stop (singer-sdk's handler drains the sinks, which
        waits out every Retry-After and backoff first). Requests on the wire finish and their records get
        their outcome; records not sent get none and stay after the last STATE. A second signal: exit now."""
        name = signal.Signals(signum).name
        if self._stopping:
            os._exit(128 + signum)
        self._stopping = True
        logger.warning("%s received: stopping; records not sent yet stay after the last STATE", name)
        if self._client is not None:
            self._client.stop(f"stopped by {name}")
        raise RunStopped(f"stopped by {name}", exit_code=128 + signum)

    def make_client(self, *, need_credentials: bool = True, max_connections: int = 16) -> ApiClient:
        live = dict(self.config)  # type: ignore[attr-defined]
        switches = [m.when for m in self.connection.auth if m.when]
        if need_credentials and switches and not any(live.get(name) for name in switches):
            raise ConnectorError(f"{self.name}: no credentials in the config: set {' or '.join(switches)}")  # type: ignore[attr-defined]
        return ApiClient(
            self.connection,
            live,
            on_rotate=lambda u: self._config_writer(u, live),
            max_connections=max_connections,
        )


def _config_error(error: ValidationError, properties: Mapping[str, Any]) -> str:
    """A config error naming the setting; a secret setting's value is never part of it."""
    where = "config" + "".join(f"[{p!r}]" for p in error.absolute_path)
    name = error.absolute_path[0] if error.absolute_path else None
    if isinstance(name, str) and properties.get(name, {}).get("secret"):
        expected = error.schema.get("type", "") if isinstance(error.schema, Mapping) else ""
        return (
            f"{where}: must be of type {expected}, got a value of type {type(error.instance).__name__} "
            "(not shown: it is a secret setting)"
        )
    return f"{error.message} in {where}"


def build_plugin_class(base: type, connection: Connection, kind: str, extra: Iterable[Setting] = ()) -> type:
    """``tap-<connection>`` / ``target-<connection>``: a singer-sdk plugin class for one connection."""
    return type(
        f"{kind.title()}{connection.name.title().replace('_', '')}",
        (base,),
        {
            "name": f"{kind}-{connection.name}",
            "connection": connection,
            "config_jsonschema": config_schema(connection, extra),
            "package_name": "declarative-connector",
            "__doc__": f"Singer {kind} for {connection.name} ({connection.description.rstrip('.')}), from YAML templates.",
        },
    )
