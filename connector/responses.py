"""Response actions: what a stream or sink does with an answer, decided by its status and/or its content.

Rules are tried in order; the first that matches decides. ``ignore`` (a stream reads no records from it
and ends that partition's paging, e.g. a child resource answering 404), ``retry`` (as a transient error,
with backoff, within the retry budget), ``fail`` (stop the stream, or reject the sink's records, with the
rule's message), ``accept`` (a success whatever the status). Without a matching rule: 2xx succeeds,
anything else fails with the API's own message.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from connector.kinds import Model, describe
from connector.render import Compiled, compile_condition, compile_text


class ResponseRule(Model, kw_only=True, frozen=True):
    """One rule: match by status and/or a condition over the body, then act."""

    action: Annotated[Literal["ignore", "retry", "fail", "accept"], describe("What to do with a match.")]
    status: Annotated[list[int], describe("Statuses this rule matches (any status when absent).")] | None = (
        None
    )
    when: (
        Annotated[
            str,
            describe("Jinja condition over response (the parsed body), status and headers; must hold too."),
        ]
        | None
    ) = None
    message: (
        Annotated[str, describe("Jinja for the message logged or reported (over response, status).")] | None
    ) = None

    def __post_init__(self) -> None:
        if self.status is None and self.when is None:
            raise ValueError("a response rule needs 'status', 'when' or both")


class CompiledRule:
    def __init__(self, rule: ResponseRule) -> None:
        self.rule = rule
        self.action = rule.action
        self.statuses = frozenset(rule.status) if rule.status is not None else None
        self.when: Compiled | None = compile_condition(rule.when) if rule.when else None
        self.message: Compiled | None = compile_text(rule.message) if rule.message else None

    def matches(self, status: int, scope: dict[str, Any]) -> bool:
        if self.statuses is not None and status not in self.statuses:
            return False
        return self.when is None or bool(self.when.render(scope))

    def describe(self, scope: dict[str, Any]) -> str:
        if self.message is None:
            return ""
        return str(self.message.render(scope))


class ResponseRules:
    """The compiled rules of one template; ``decide`` returns (action, message) or None (default handling)."""

    def __init__(self, rules: list[ResponseRule]) -> None:
        self.rules = [CompiledRule(rule) for rule in rules]
        self.needs_body = any(rule.when is not None or rule.message is not None for rule in self.rules)

    def __bool__(self) -> bool:
        return bool(self.rules)

    def decide(self, status: int, body: Any, headers: Any) -> tuple[str, str] | None:
        scope = {"response": body, "status": status, "headers": headers}
        for rule in self.rules:
            if rule.matches(status, scope):
                return rule.action, rule.describe(scope)
        return None
