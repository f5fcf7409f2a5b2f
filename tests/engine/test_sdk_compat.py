"""The singer-sdk internals the engine relies on are still there, as the engine uses them."""

from __future__ import annotations

import re

import pytest
from cli_support import REPO

from connector import sdk_compat


def test_every_private_singer_sdk_touch_point_is_as_the_engine_expects():
    assert sdk_compat.problems() == [], (
        "the installed singer-sdk changed internals the engine depends on; adapt connector/ and "
        "connector/sdk_compat.py, then widen the bound in pyproject.toml"
    )


def test_the_contract_check_notices_a_change(monkeypatch):
    """A renamed method or attribute, or a changed signature, is reported (the check can fail)."""
    from singer_sdk.streams.core import Stream
    from singer_sdk.target_base import Target

    monkeypatch.delattr(Target, "_write_state_message")
    monkeypatch.setattr(Stream, "_increment_stream_state", lambda self, record: None)
    problems = "\n".join(sdk_compat.problems())
    assert "Target._write_state_message (used by" in problems and "no longer exists" in problems
    assert "Stream._increment_stream_state" in problems and "parameters are now ('record',)" in problems


def test_private_names_used_by_the_engine_are_all_listed():
    """A new override or call of a singer-sdk private method must be added to TOUCH_POINTS."""
    from connector.tap import build_tap_class, stream_classes
    from connector.target import LenientReader, TemplateSink, build_target_class
    from connector.templates import load_bundled

    connection = load_bundled("salesloft")
    listed = {p.name for p in sdk_compat.TOUCH_POINTS}
    ours = [build_tap_class(connection), build_target_class(connection), TemplateSink, LenientReader]
    ours += list(stream_classes(connection).values())[:1]
    for cls in ours:
        sdk = [c for c in cls.__mro__ if c.__module__.startswith("singer_sdk")]
        for klass in cls.__mro__:
            if not klass.__module__.startswith("connector"):
                continue
            for name in vars(klass):
                if (
                    name.startswith("_")
                    and not name.startswith(("__", "_abc_"))
                    and any(name in vars(c) for c in sdk)
                ):
                    assert name in listed, (
                        f"{klass.__module__}.{klass.__name__} overrides singer-sdk's {name}"
                    )
    for module in ("tap", "target", "plugin", "bulk", "singer_io", "harness"):
        source = (REPO / "connector" / f"{module}.py").read_text()
        for name in re.findall(r"super\(\)\.(_[a-z]\w*)\(", source):
            assert name in listed, f"connector/{module}.py calls singer-sdk's {name}: list it in sdk_compat"
        assert not re.search(r"singer_sdk[\w.]*\._", source), (
            f"connector/{module}.py imports a private module"
        )


def test_dependencies_are_bounded_to_the_tested_majors():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    requirements = [*project["project"]["dependencies"], *project["project"]["optional-dependencies"]["dev"]]
    requirements += project["build-system"]["requires"]
    for requirement in requirements:
        if requirement.startswith(project["project"]["name"] + "["):
            continue  # the project's own extras
        assert "<" in requirement.split(";")[0], f"{requirement}: no upper bound"
    assert any(r.startswith("singer-sdk[msgspec]>=0.54,<0.55") for r in requirements)
