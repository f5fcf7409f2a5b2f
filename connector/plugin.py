"""What a connection's tap and target share: config schema, credentials, the client, the CLI's errors."""

from __future__ import annotations

import atexit
import difflib
import json
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from singer_sdk.exceptions import ConfigValidationError

from connector.errors import ConnectorError, RunStopped
from connector.http import ApiClient
from connector.secrets import REDACTOR, install_logging_filter
from connector.templates import Connection, Setting
from connector.throttle import Spacings
from connector.workspace import read_config

logger = logging.getLogger("connector.plugin")

_FINISHERS: list[Callable[[], None]] = []


def finish_before_exit(callback: Callable[[], None]) -> None:
    """Run ``callback`` when a run stops on an error: before the error's one line for a known error,
    at exit otherwise (it must be harmless to call twice)."""
    _FINISHERS.append(callback)
    atexit.register(callback)


SETTING_TYPES: dict[str, dict[str, Any]] = {
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
        "stream_params",
        "object",
        'Filters passed to streams, e.g. {"people": {"ids": [1, 2], "updated_at[lt]": "2024-06-01T00:00:00Z"}}: '
        "each stream takes the filters its template declares (listed in the connection's docs); an unknown "
        "stream or filter stops the run before any request. A filtered incremental stream keeps a bookmark of its own.",
        only="tap",
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
    "max_concurrency": {"minimum": 1, "maximum": 64},
    "webhook_batch_size": {"minimum": 1},
    "webhook_timeout": {"exclusiveMinimum": 0},
}


def plugin_settings(connection: Connection, kind: str, extra: Iterable[Setting] = ()) -> list[Setting]:
    """The settings a tap or target offers: the connection's (those for this kind), the engine's, its own."""
    own = [s for s in connection.settings if s.only in (None, kind)]
    return [*own, *(s for s in ENGINE_SETTINGS if s.only in (None, kind)), *extra]


def config_schema(connection: Connection, extra: Iterable[Setting] = (), kind: str = "tap") -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required = []
    for setting in plugin_settings(connection, kind, extra):
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

    def __init__(self, config_input: Any, mode: int | None = None) -> None:
        self.mode = mode  # the file's own mode when None
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
        os.chmod(tmp, path.stat().st_mode & 0o777 if self.mode is None else self.mode)
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
        self.spacings = Spacings()  # endpoint limits, shared by the templates that name one
        super().__init__(*args, config=config, **kwargs)  # type: ignore[call-arg]  # the Tap's or Target's

    @classmethod
    def cb_config(cls, ctx: Any, param: Any, value: tuple[str, ...]) -> Any:
        cls._cli_config_paths = tuple(v for v in value if v != "ENV")
        with cls._one_line_errors():
            for path in cls._cli_config_paths:  # a missing or malformed file: one line naming it, exit 2
                read_config(path)
        return super().cb_config(ctx, param, value)  # type: ignore[misc]

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
            for finish in list(_FINISHERS):  # summaries first: the error stays the last line
                finish()
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

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """Secret settings (the connection's and the plugin's own) are known to the redactor before anything
        can print them, and an error about one never shows its value (whatever its type or length); a
        setting the plugin does not know (a typo) is warned about, with the likely one."""
        properties = self.config_jsonschema.get("properties", {})  # type: ignore[attr-defined]
        secrets = [name for name, prop in properties.items() if prop.get("secret")]
        REDACTOR.add(*(self._config.get(name) for name in secrets))  # type: ignore[attr-defined]
        self._warn_unknown_settings()
        try:
            return [_without_secret(e, secrets) for e in super()._validate_config(raise_errors=raise_errors)]  # type: ignore[misc]
        except ConfigValidationError as exc:
            exc.errors = [_without_secret(e, secrets) for e in exc.errors]
            raise

    def _warn_unknown_settings(self) -> None:
        schema = self.config_jsonschema  # type: ignore[attr-defined]
        self.append_builtin_config(schema)  # type: ignore[attr-defined]
        known = schema.get("properties", {})
        for name in sorted(set(self._config) - set(known)):  # type: ignore[attr-defined]
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            logger.warning("config: unknown setting %r is ignored%s", name, hint)

    def make_client(self, *, need_credentials: bool = True, max_connections: int = 16) -> ApiClient:
        live = dict(self.config)  # type: ignore[attr-defined]
        switches = [name for m in self.connection.auth for name in m.settings_read()]
        if need_credentials and switches and not any(live.get(name) for name in switches):
            raise ConnectorError(f"{self.name}: no credentials in the config: set {' or '.join(switches)}")  # type: ignore[attr-defined]
        return ApiClient(
            self.connection,
            live,
            on_rotate=lambda u: self._config_writer(u, live),
            max_connections=max_connections,
        )


def _without_secret(error: str, secrets: list[str]) -> str:
    """A config validation error, reworded when it is about a secret setting (its message quotes the value)."""
    for name in secrets:
        where = f" in config[{name!r}]"
        if error.endswith(where) or f"{where}[" in error:
            return f"config[{name!r}]: not a valid value for this setting (a secret: its value is not shown)"
    return error


def build_plugin_class(base: type, connection: Connection, kind: str, extra: Iterable[Setting] = ()) -> type:
    """``tap-<connection>`` / ``target-<connection>``: a singer-sdk plugin class for one connection."""
    return type(
        f"{kind.title()}{connection.name.title().replace('_', '')}",
        (base,),
        {
            "name": f"{kind}-{connection.name}",
            "connection": connection,
            "config_jsonschema": config_schema(connection, extra, kind),
            "package_name": "declarative-connector",
            "__doc__": f"Singer {kind} for {connection.name} ({connection.description.rstrip('.')}), from YAML templates.",
        },
    )
