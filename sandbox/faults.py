"""Fault injection, deterministic for a given request sequence.

Every /v2 request draws once from a ``Random(seed)``; below ``rate`` it gets a fault of one of
``kinds``: ``500``/``502``/``503`` (an error response), ``429`` (a burst of ``burst`` 429s in a
row), ``reset`` (the connection is closed with no response), ``slow`` (answered after ``delay``
seconds), ``truncate`` (Content-Length promises the whole body, half is sent, then close).
``next`` queues faults for the very next requests, in order, whatever the rate (a queued
``429`` starts a burst too).

Spec strings: ``rate=0.05,seed=3,kinds=500,502,503,429,reset,slow,truncate,delay=1,burst=3``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from random import Random
from typing import Any

KINDS = ("500", "502", "503", "429", "reset", "slow", "truncate")
_LIST_KEYS = ("kinds", "next")


@dataclass
class FaultSettings:
    rate: float = 0.0
    seed: int = 0
    kinds: list[str] = field(default_factory=lambda: list(KINDS))
    delay: float = 2.0
    burst: int = 3
    next: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "seed": self.seed,
            "kinds": list(self.kinds),
            "delay": self.delay,
            "burst": self.burst,
            "next": list(self.next),
        }


def parse_spec(spec: str | dict[str, Any] | None, base: FaultSettings | None = None) -> FaultSettings:
    """A spec string or dict -> settings (unmentioned keys keep ``base``'s values)."""
    settings = FaultSettings(**(base.as_dict() if base else {}))
    if spec is None:
        return settings
    if isinstance(spec, str):
        values: dict[str, Any] = {}
        current: str | None = None
        for token in (t.strip() for t in spec.split(",")):
            if not token:
                continue
            if "=" in token:
                key, _, value = token.partition("=")
                key = key.strip()
                current = key
                values[key] = [value.strip()] if key in _LIST_KEYS else value.strip()
            elif current in _LIST_KEYS:
                values[current].append(token)
            else:
                raise ValueError(f"faults: unexpected {token!r} (expected key=value)")
        spec = values
    for key, value in spec.items():
        if key == "rate":
            settings.rate = float(value)
            if not 0.0 <= settings.rate <= 1.0:
                raise ValueError(f"faults: rate must be in [0, 1] (got {value})")
        elif key == "seed":
            settings.seed = int(value)
        elif key == "delay":
            settings.delay = float(value)
        elif key == "burst":
            settings.burst = max(1, int(value))
        elif key in _LIST_KEYS:
            items = [str(v) for v in (value.split(",") if isinstance(value, str) else value) if str(v)]
            unknown = [v for v in items if v not in KINDS]
            if unknown:
                raise ValueError(f"faults: unknown kind(s) {unknown} (known: {', '.join(KINDS)})")
            setattr(settings, key, items)
        else:
            raise ValueError(f"faults: unknown key {key!r} (known: rate, seed, kinds, delay, burst, next)")
    return settings


class Faults:
    def __init__(self, settings: FaultSettings):
        self.counts: dict[str, int] = {}
        self.configure(settings)

    def configure(self, settings: FaultSettings) -> None:
        self.settings = settings
        self._rng = Random(settings.seed)
        self._burst_left = 0
        self._queue = list(settings.next)
        settings.next = []

    def draw(self) -> str | None:
        """The fault for the next /v2 request, if any."""
        kind: str | None = None
        if self._burst_left > 0:
            self._burst_left -= 1
            kind = "429"
        elif self._queue:
            kind = self._queue.pop(0)
            if kind == "429":
                self._burst_left = self.settings.burst - 1
        else:
            s = self.settings
            if s.rate > 0 and s.kinds and self._rng.random() < s.rate:
                kind = s.kinds[self._rng.randrange(len(s.kinds))]
                if kind == "429":
                    self._burst_left = s.burst - 1
        if kind is not None:
            self.counts[kind] = self.counts.get(kind, 0) + 1
        return kind

    def as_dict(self) -> dict[str, Any]:
        out = self.settings.as_dict()
        out["next"] = list(self._queue)
        out["injected"] = dict(self.counts)
        return out
