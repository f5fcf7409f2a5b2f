"""List endpoints: filters, sort and the three paging styles Salesloft uses.

- page numbers (most resources): ``page``/``per_page`` (1..100, default 25), ``metadata.paging``
  with ``next_page`` null on the last page, counts only with ``include_paging_counts=true``, and those
  counts capped at 10,000 records unless ``limit_paging_counts=false``;
- none (groups, webhook subscriptions): every record, no paging metadata;
- cursor (bulk jobs and their results): ``id[gt]`` and ``per_page``, ascending ids.

Out-of-range or malformed ``per_page``/``page``/``sort_by``/``sort_direction``/timestamps are
rejected with 422 rather than clamped, so a client bug is loud. Unknown parameters are ignored.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from sandbox import timestamps
from sandbox.params import FlatQuery, as_bool, as_int, first, many
from sandbox.store import Record, Table, key_range
from sandbox.wire import JSON, Response, invalid

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 25
TIME_FIELDS = ("updated_at", "created_at")
OPS = ("gt", "gte", "lt", "lte")

# Equality filters: query parameter -> (dotted record path, value kind).
_FILTERS: dict[str, dict[str, tuple[str, str]]] = {
    "people": {
        "email_addresses": ("email_address", "ci"),
        "account_id": ("account.id", "int"),
        "owner_id": ("owner.id", "int"),
        "person_stage_id": ("person_stage.id", "int"),
        "import_id": ("import.id", "int"),
        "crm_id": ("crm_id", "str"),
        "owner_crm_id": ("owner_crm_id", "str"),
        "job_seniority": ("job_seniority", "str"),
        "do_not_contact": ("do_not_contact", "bool"),
        "eu_resident": ("eu_resident", "bool"),
        "title": ("title", "str"),
        "city": ("city", "str"),
        "state": ("state", "str"),
        "country": ("country", "str"),
        "locales": ("locale", "str"),
    },
    "accounts": {
        "domain": ("domain", "ci"),
        "crm_id": ("crm_id", "str"),
        "name": ("name", "str"),
        "owner_id": ("owner.id", "int"),
        "account_tier_id": ("account_tier.id", "int"),
        "account_stage_id": ("company_stage.id", "int"),
        "industry": ("industry", "str"),
        "country": ("country", "str"),
        "state": ("state", "str"),
        "city": ("city", "str"),
        "tag": ("tags", "has"),
        "website": ("website", "str"),
        "owner_crm_id": ("owner_crm_id", "str"),
        "locales": ("locale", "str"),
        "archived": ("archived_at", "present"),
    },
    "cadence_memberships": {
        "person_id": ("person.id", "int"),
        "cadence_id": ("cadence.id", "int"),
        "currently_on_cadence": ("currently_on_cadence", "bool"),
    },
    "cadences": {
        "name": ("name", "str"),
        "team_cadence": ("team_cadence", "bool"),
        "shared": ("shared", "bool"),
        "archived": ("archived_at", "present"),
    },
    "email_templates": {"tag": ("tags", "has")},
    "team_templates": {"tag": ("tags", "has")},
    "notes": {
        "associated_with_type": ("associated_type", "ci"),
        "associated_with_id": ("associated_with.id", "int"),
    },
    "tasks": {
        "person_id": ("person.id", "int"),
        "user_id": ("user.id", "int"),
        "current_state": ("current_state", "str"),
        "task_type": ("task_type", "str"),
    },
    "calls": {
        "person_id": ("called_person.id", "int"),
        "sentiment": ("sentiment", "str"),
        "disposition": ("disposition", "str"),
    },
    "call_data_records": {"person_id": ("called_person.id", "int"), "has_call": ("call", "present")},
    "emails": {
        "person_id": ("recipient.id", "int"),
        "status": ("status", "str"),
        "cadence_id": ("cadence.id", "int"),
        "step_id": ("step.id", "int"),
        "bounced": ("bounced", "bool"),
    },
    "actions": {
        "person_id": ("person.id", "int"),
        "cadence_id": ("cadence.id", "int"),
        "step_id": ("step.id", "int"),
        "type": ("type", "str"),
    },
    "steps": {"cadence_id": ("cadence.id", "int"), "type": ("type", "str")},
    "successes": {"person_id": ("person.id", "int")},
    "custom_fields": {"field_type": ("field_type", "str")},
    "saved_list_views": {"view": ("view", "str")},
    "call_sentiments": {"name": ("name", "str")},
    "account_tiers": {"name": ("name", "str")},
    "crm_users": {"crm_id": ("crm_id", "str"), "user_id": ("user.id", "int")},
    "crm_activity_fields": {"source": ("source", "str")},
    "meetings": {
        "person_id": ("person.id", "int"),
        "status": ("status", "str"),
        "account_id": ("account_id", "str"),
    },
    "users": {
        "guid": ("guid", "str"),
        "active": ("active", "bool"),
        "group_id": ("group.id", "int"),
        "work_country": ("work_country", "str"),
    },
    "email_template_attachments": {"email_template_id": ("email_template.id", "int")},
    "team_template_attachments": {"team_template_id": ("team_template.id", "int")},
    "opportunities": {"account_id": ("account.id", "int")},
    "external_configurations": {
        "external_type": ("external_type", "str"),
        "object_type": ("object_type", "str"),
    },
    "external_mappings": {
        "external_type": ("external_type", "str"),
        "external_id": ("external_id", "str"),
        "object_type": ("object_type", "str"),
        "object_id": ("object_id", "int"),
    },
    "bulk_jobs": {"state": ("state", "str")},
    "bulk_job_results": {"status": ("status", "str")},
    "webhook_subscriptions": {"enabled": ("enabled", "bool")},
}

_SORT_ALIASES = {"people": {"name": "display_name"}}


@dataclass(slots=True)
class Query:
    """A parsed list request."""

    per_page: int
    page: int
    sort_by: str
    descending: bool
    bounds: dict[str, dict[str, int]]  # field -> op -> instant (us)
    ids: list[Any] | None  # strings for resources with string ids
    predicates: list[Callable[[Record], bool]]
    filtering: dict[str, Any]
    include_counts: bool
    sort_label: str
    limit_counts: bool = True


def _getter(path: str) -> Callable[[Record], Any]:
    parts = path.split(".")
    if len(parts) == 1:
        key = parts[0]
        return lambda record: record.get(key)
    outer, inner = parts

    def get(record: Record) -> Any:
        value = record.get(outer)
        return value.get(inner) if isinstance(value, dict) else None

    return get


def _predicate(path: str, kind: str, raw: list[str]) -> Callable[[Record], bool] | None:
    get = _getter(path)
    if kind == "int":
        wanted: set[Any] = {v for v in (as_int(x) for x in raw) if v is not None}
        return lambda record: get(record) in wanted
    if kind == "bool":
        flag = as_bool(raw[-1])
        if flag is None:
            return None
        return lambda record: get(record) is flag
    if kind == "present":  # has_X=true|false: whether the record links one
        flag = as_bool(raw[-1])
        if flag is None:
            return None
        return lambda record: (get(record) is not None) is flag
    if kind == "has":  # a list field holding any of the values (tags)
        wanted = set(raw)
        return lambda record: isinstance(get(record), list) and not wanted.isdisjoint(get(record))
    if kind == "present":  # whether a field is set: archived=true is archived_at not null
        flag = as_bool(raw[-1])
        if flag is None:
            return None
        return lambda record: (get(record) is not None) is flag
    if kind == "ci":
        wanted = {x.lower() for x in raw}
        return lambda record: isinstance(get(record), str) and get(record).lower() in wanted
    wanted = set(raw)
    return lambda record: get(record) in wanted


def parse_per_page(query: FlatQuery) -> int:
    raw = first(query, "per_page")
    if raw is None or raw == "":
        return DEFAULT_PER_PAGE
    value = as_int(raw)
    if value is None or not 1 <= value <= MAX_PER_PAGE:
        raise invalid("per_page", f"must be in the range [1, {MAX_PER_PAGE}]")
    return value


def parse_query(table: Table, query: FlatQuery, default_direction: str = "DESC") -> Query:
    per_page = parse_per_page(query)
    raw_page = first(query, "page")
    page = 1 if raw_page in (None, "") else as_int(raw_page)
    if page is None or page < 1:
        raise invalid("page", "must be a positive integer")

    default_sort = "updated_at" if table.has_updated else "id"
    sort_label = first(query, "sort_by") or default_sort
    sort_by = _SORT_ALIASES.get(table.name, {}).get(sort_label, sort_label)
    if sort_by != "id" and sort_by not in table.fields:
        raise invalid("sort_by", "is not a valid sort field")
    direction = (first(query, "sort_direction") or default_direction).upper()
    if direction not in ("ASC", "DESC"):
        raise invalid("sort_direction", "must be one of: ASC, DESC")

    filtering: dict[str, Any] = {}
    bounds: dict[str, dict[str, int]] = {}
    for field in TIME_FIELDS:
        if field not in table.fields:
            continue
        for op in OPS:
            raw = first(query, f"{field}[{op}]")
            if raw is None:
                continue
            try:
                bounds.setdefault(field, {})[op] = timestamps.parse(raw)
            except timestamps.InvalidInstant:
                raise invalid(field, f"{op} must be an ISO-8601 timestamp") from None
            filtering.setdefault(field, {})[op] = raw

    ids: list[Any] | None = None
    raw_ids = many(query, "ids")
    if raw_ids and table.resource.string_ids:
        ids = list(raw_ids)
        filtering["ids"] = raw_ids
    elif raw_ids:
        ids = [i for i in (as_int(x) for x in raw_ids) if i is not None]
        filtering["ids"] = raw_ids

    predicates = []
    for param, (path, kind) in _FILTERS.get(table.name, {}).items():
        raw = many(query, param)
        if not raw:
            continue
        predicate = _predicate(path, kind, raw)
        if predicate is not None:
            predicates.append(predicate)
            filtering[param] = raw if len(raw) > 1 else raw[0]

    include_counts = as_bool(first(query, "include_paging_counts") or "false") is True
    limit_counts = as_bool(first(query, "limit_paging_counts") or "true") is not False
    return Query(
        per_page,
        page,
        sort_by,
        direction == "DESC",
        bounds,
        ids,
        predicates,
        filtering,
        include_counts,
        sort_label,
        limit_counts,
    )


def _matches(table: Table, q: Query, record_id: int, skip_field: str | None) -> bool:
    for field, ops in q.bounds.items():
        if field == skip_field:
            continue
        key = table.key(field, record_id)
        if ("gt" in ops and not key > ops["gt"]) or ("gte" in ops and not key >= ops["gte"]):
            return False
        if ("lt" in ops and not key < ops["lt"]) or ("lte" in ops and not key <= ops["lte"]):
            return False
    if q.predicates:
        record = table.records[record_id]
        return all(p(record) for p in q.predicates)
    return True


def select(table: Table, q: Query) -> tuple[list[int], int]:
    """The ids on the requested page, and the total number of matches."""
    offset = (q.page - 1) * q.per_page
    if q.sort_by in TIME_FIELDS and q.ids is None:
        index = table.index(q.sort_by)
        lo, hi = key_range(index, q.bounds.get(q.sort_by, {}))
        others = q.predicates or any(f != q.sort_by for f in q.bounds)
        if not others:
            total = hi - lo
            if q.descending:
                start, stop = max(lo, hi - offset - q.per_page), hi - offset
                return [index[i][1] for i in range(stop - 1, start - 1, -1)] if stop > start else [], total
            start, stop = lo + offset, min(hi, lo + offset + q.per_page)
            return [index[i][1] for i in range(start, stop)], total
        ordered: Iterable[int] = (index[i][1] for i in range(lo, hi))
        matched = [i for i in ordered if _matches(table, q, i, q.sort_by)]
        if q.descending:
            matched.reverse()
        return matched[offset : offset + q.per_page], len(matched)
    if q.ids is not None:
        wanted = {i for i in q.ids if i in table.records}
        ordered = _order(table, q.sort_by, wanted)
    else:
        ordered = _order(table, q.sort_by, None)
    matched = (
        [i for i in ordered if _matches(table, q, i, None)] if (q.bounds or q.predicates) else list(ordered)
    )
    if q.descending:
        matched.reverse()
    return matched[offset : offset + q.per_page], len(matched)


def _order(table: Table, sort_by: str, subset: set[int] | None) -> list[int]:
    if sort_by in TIME_FIELDS:
        order = [i for _, i in table.index(sort_by)]
    elif sort_by == "id":
        order = table.sorted_ids()
    else:
        order = table.ordered_by(sort_by)
    return order if subset is None else [i for i in order if i in subset]


# Paging counts stop at this many records unless the request says limit_paging_counts=false.
COUNT_LIMIT = 10_000


def page_response(table: Table, query: FlatQuery, default_direction: str = "DESC") -> Response:
    q = parse_query(table, query, default_direction)
    ids, total = select(table, q)
    paging: dict[str, Any] = {
        "per_page": q.per_page,
        "current_page": q.page,
        "next_page": q.page + 1 if q.page * q.per_page < total else None,
        "prev_page": q.page - 1 if q.page > 1 else None,
    }
    if q.include_counts:
        counted = min(total, COUNT_LIMIT) if q.limit_counts else total
        paging["total_pages"] = (counted + q.per_page - 1) // q.per_page
        paging["total_count"] = counted
    metadata = {
        "filtering": q.filtering,
        "paging": paging,
        "sorting": {"sort_by": q.sort_label, "sort_direction": "DESC" if q.descending else "ASC"},
    }
    records = table.records
    return Response(200, orjson.dumps({"data": [records[i] for i in ids], "metadata": metadata}), JSON)


def unpaged_response(table: Table, query: FlatQuery) -> Response:
    """Everything at once (groups, webhook subscriptions): filters and sort, no paging metadata."""
    q = parse_query(table, {k: v for k, v in query.items() if k not in ("page", "per_page")}, "ASC")
    q.per_page, q.page = max(len(table), 1), 1
    ids, _ = select(table, q)
    metadata = {
        "filtering": q.filtering,
        "sorting": {"sort_by": q.sort_label, "sort_direction": "DESC" if q.descending else "ASC"},
    }
    records = table.records
    return Response(200, orjson.dumps({"data": [records[i] for i in ids], "metadata": metadata}), JSON)


def cursor_response(
    table: Table,
    query: FlatQuery,
    ordered_ids: list[int] | None = None,
    render: Callable[[Record], Any] | None = None,
) -> Response:
    """``id[gt]`` cursor paging in ascending id order (bulk jobs, job data, results).
    ``ordered_ids`` restricts the listing to those ids (already ascending)."""
    per_page = parse_per_page(query)
    raw_after = first(query, "id[gt]")
    after = None
    if raw_after not in (None, ""):
        after = as_int(raw_after)
        if after is None:
            raise invalid("id", "gt must be an integer")
    filtering: dict[str, Any] = {}
    predicates = []
    for param, (path, kind) in _FILTERS.get(table.name, {}).items():
        raw = many(query, param)
        if raw:
            predicate = _predicate(path, kind, raw)
            if predicate is not None:
                predicates.append(predicate)
                filtering[param] = raw
    if after is not None:
        filtering["id"] = {"gt": raw_after}
    source = table.sorted_ids() if ordered_ids is None else ordered_ids
    start = 0 if after is None else bisect_right(source, after)
    out: list[Any] = []
    records = table.records
    for pos in range(start, len(source)):
        record = records.get(source[pos])
        if record is None or not all(p(record) for p in predicates):
            continue
        out.append(record if render is None else render(record))
        if len(out) == per_page:
            break
    metadata = {"filtering": filtering, "paging": {"per_page": per_page}}
    return Response(200, orjson.dumps({"data": out, "metadata": metadata}), JSON)
