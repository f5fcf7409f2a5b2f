"""Start-up options (the CLI flags of ``python -m sandbox``), with their defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sandbox.faults import FaultSettings
from sandbox.resources import CATALOG

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass
class Options:
    host: str = "127.0.0.1"
    port: int = 8555
    seed: int = 7
    sizes: dict[str, int] = field(default_factory=dict)
    api_key: str = "sandbox-key"
    budget: int = 600
    time_scale: float = 1.0
    retry_after: bool = True
    faults: FaultSettings = field(default_factory=FaultSettings)
    token_ttl: float = 7200.0
    client_id: str = "sandbox-client"
    client_secret: str = "sandbox-secret"
    refresh_token: str = "sandbox-refresh"
    reject_refresh: bool = False
    bulk_rate: float = 5000.0  # bulk job records processed per sandbox second
    bulk_latency: float = 0.5  # sandbox seconds between ready_to_execute and the first record
    journal_limit: int = 200_000
    latency: float = 0.0  # real seconds before every /v2 answer, whatever the time scale
    latency_jitter: float = 0.0  # up to this many real seconds more, uniformly drawn
    specs_dir: Path | None = None

    def validate(self) -> None:
        if self.host not in LOOPBACK_HOSTS and not self.host.startswith("127."):
            raise ValueError(f"--host: the sandbox only binds loopback addresses (got {self.host!r})")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"--port: must be in 0..65535 (got {self.port})")
        unknown = sorted(set(self.sizes) - set(CATALOG))
        if unknown:
            raise ValueError(f"--size: unknown resource(s) {unknown} (known: {', '.join(sorted(CATALOG))})")
        for name, size in self.sizes.items():
            if size < 0:
                raise ValueError(f"--size {name}: must be >= 0 (got {size})")
        if self.sizes.get("users", 1) < 1:
            raise ValueError("--size users: must be >= 1 (the API key belongs to the first user)")
        if self.time_scale <= 0:
            raise ValueError(f"--time-scale: must be > 0 (got {self.time_scale})")
        if self.budget < 0:
            raise ValueError(f"--budget: must be >= 0 (got {self.budget})")
        for name in ("latency", "latency_jitter"):
            value = getattr(self, name)
            if not 0 <= value <= 60:
                flag = "--" + name.replace("_", "-")
                raise ValueError(f"{flag}: must be in 0..60 seconds (got {value})")
        if self.bulk_rate <= 0:
            raise ValueError(f"--bulk-rate: must be > 0 (got {self.bulk_rate})")


def parse_size(text: str) -> tuple[str, int]:
    """``people=100000`` -> ``("people", 100000)``."""
    name, sep, value = text.partition("=")
    if not sep or not value.strip().isdigit():
        raise ValueError(f"--size: expected RESOURCE=COUNT (got {text!r})")
    return name.strip(), int(value)
