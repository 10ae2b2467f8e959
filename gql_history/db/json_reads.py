"""GraphQL reads as one SQL statement whose single value is the JSON text of
the response's ``data``, as PostGraphile and Hasura build them.

What to select comes as a tree of specs (built by the GraphQL layer from a
validated operation); pages, filters and their values come from ``keyset``
and ``conditions``, so the rows are those the other reads return. Every
value is a parameter: each read of the tree (a page, a count, a run by id)
has a slot, and its parameters are named ``p<slot>_<name>``.

Each field is rendered as Strawberry's execution renders it: times as
``datetime.isoformat()`` in UTC, durations as floats, enums by name, Relay
ids in base64 and cursors signed inside the statement (HMAC-SHA256 with the
key's pads as parameters, see ``core.cursor``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSON, aggregate_order_by
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import BindParameter

from ..core.cursor import SIGNATURE_BYTES
from ..core.paging import RunOrder
from ..core.records import RUN_FIELDS
from .conditions import BoundFilter
from .json_specs import (
    Connection,
    Const,
    Edges,
    ErrorObject,
    Lineage,
    PageInfo,
    Rendering,
    RootSpec,
    RunById,
    RunSpec,
    Scalar,
    concat,
    duration_json,
    enum_names,
    iso_time,
    json_aggregates,
    json_object,
    literal,
    micros_text,
)
from .keyset import before_start, page_order, page_statement, row_limit

if TYPE_CHECKING:
    from .store import HistoryStore

#: The parameters of a filter (``f0``...) and a page, renamed per slot;
#: others (anonymous, holding their values) are left as they are.
_SLOT_PARAM = re.compile(r"f[0-9]+|start_key|start_id")


class JsonStatement:
    """Builds the statement of a root spec on ``table``, each slot's filter
    condition given (on ``table``, its parameters named as ``conditions``
    has them: they are renamed per slot)."""

    def __init__(
        self,
        table: sa.Table,
        conditions: Mapping[int, sa.ColumnElement[bool]],
        rendering: Rendering,
    ) -> None:
        self.table = table
        self.conditions = conditions
        self.rendering = rendering

    def build(self, root: RootSpec) -> sa.Select[Any]:
        """The statement: one row, one column, the text of ``data``."""
        pairs: list[tuple[str, Any]] = []
        for item in root:
            if isinstance(item, Const):
                pairs.append((item.key, literal(item.value)))
            elif isinstance(item, Connection):
                pairs.append((item.key, self._connection(item, None)))
            else:
                pairs.append((item.key, self._by_id(item)))
        data = sa.func.to_json(json_object(pairs), type_=JSON)
        return sa.select(sa.cast(data, sa.Text).label("data"))

    # Parameters and conditions, per slot

    def _condition(self, slot: int, alias: Any) -> sa.ColumnElement[bool]:
        """The slot's condition on ``alias``, its parameters renamed."""
        found: sa.ColumnElement[bool] = self._adapt(self.conditions[slot], slot, alias)
        return found

    def _adapt(self, element: Any, slot: int, alias: Any) -> Any:
        """``element`` on ``alias`` instead of the table, with its named
        parameters prefixed by the slot's."""
        table, prefix = self.table, f"p{slot}_"

        def replace(item: Any) -> Any:
            if isinstance(item, sa.Column) and item.table is table:
                return alias.c[item.name]
            if isinstance(item, BindParameter) and _SLOT_PARAM.fullmatch(item.key):
                return sa.bindparam(
                    prefix + item.key, type_=item.type, expanding=item.expanding
                )
            return None

        return visitors.replacement_traverse(element, {}, replace)  # type: ignore[call-overload]

    def _param(self, slot: int, name: str, type_: Any) -> BindParameter[Any]:
        return sa.bindparam(f"p{slot}_{name}", type_=type_)

    # Runs

    def _run(self, spec: RunSpec, c: Any) -> sa.ColumnElement[Any]:
        """The JSON object of the run of columns ``c``."""
        pairs: list[tuple[str, Any]] = []
        for item in spec:
            if isinstance(item, Const):
                value: Any = literal(item.value)
            elif isinstance(item, Scalar):
                value = self._scalar(item.field, c)
            elif isinstance(item, ErrorObject):
                value = self._error(item, c)
            elif isinstance(item, Lineage):
                value = self._lineage(item, c)
            else:
                value = self._connection(item, c)
            pairs.append((item.key, value))
        return json_object(pairs)

    def _scalar(self, name: str, c: Any) -> Any:
        rendering = self.rendering
        if name == "id":
            encoded = sa.func.encode(
                sa.func.convert_to(concat(literal("TaskRun:"), c.id), literal("UTF8")),
                literal("base64"),
            )
            return sa.func.replace(encoded, sa.literal_column("E'\\n'"), literal(""))
        if name in ("queued", "start", "end", "updated"):
            return iso_time(c[name])
        if name == "duration":
            return duration_json(c)
        if name == "state":
            return enum_names(c.state, rendering.states)
        if name == "priority":
            return enum_names(c.priority, rendering.priorities)
        if name == "params":
            return sa.func.coalesce(c.params, sa.literal_column("'{}'::jsonb"))
        if name == "tags":
            tags: list[Any] = [sa.func.to_json(c.tags)]
            if rendering.live_tags:
                live = sa.bindparam("live_tags", type_=JSON)
                tags.append(live.op("->", return_type=JSON)(c.name))
            return sa.func.coalesce(*tags, sa.literal_column("'[]'::json"))
        if name in ("parentRunId", "rootRunId"):
            column = c.from_run_id if name == "parentRunId" else c.root_run_id
            return sa.func.nullif(column, literal(""))
        columns = {"runId": "id", "task": "name", "retryAttempt": "retry_attempt"}
        return c[columns.get(name, name)]

    def _error(self, spec: ErrorObject, c: Any) -> Any:
        kind = sa.func.coalesce(c.error_type, literal(""))
        message = sa.func.coalesce(c.error_message, literal(""))
        pairs = [
            (
                item.key,
                literal(item.value)
                if isinstance(item, Const)
                else (kind if item.field == "type" else message),
            )
            for item in spec.fields
        ]
        return sa.case(
            (sa.or_(kind != literal(""), message != literal("")), json_object(pairs))
        )

    def _lineage(self, spec: Lineage, c: Any) -> Any:
        run = self.table.alias(f"p{spec.slot}_r")
        found = sa.func.nullif(c[spec.column], literal(""))
        return (
            sa.select(self._run(spec.run, run.c))
            .where(run.c.id == found, self._condition(spec.slot, run))
            .correlate_except(run)
            .scalar_subquery()
        )

    def _by_id(self, spec: RunById) -> Any:
        run = self.table.alias(f"p{spec.slot}_r")
        condition = self._condition(spec.slot, run)
        if not spec.many:
            return (
                sa.select(self._run(spec.run, run.c))
                .where(run.c.id == self._param(spec.slot, "id", sa.Text), condition)
                .scalar_subquery()
            )
        ids = (
            sa.func.unnest(self._param(spec.slot, "ids", ARRAY(sa.Text)))
            .table_valued(sa.column("id", sa.Text), with_ordinality="n")
            .render_derived(name=f"p{spec.slot}_ids")
        )
        joined = ids.outerjoin(run, sa.and_(run.c.id == ids.c.id, condition))
        # a run's object is null where it is absent: json_agg keeps nulls
        node = sa.case((run.c.id.is_not(None), self._run(spec.run, run.c)))
        listed = sa.func.json_agg(aggregate_order_by(node, ids.c.n))
        return sa.func.coalesce(
            sa.select(listed).select_from(joined).scalar_subquery(),
            sa.literal_column("'[]'::json"),
        )

    # Connections

    def _connection(self, spec: Connection, parent: Any) -> Any:
        slot = spec.slot

        def condition(alias: Any) -> sa.ColumnElement[bool]:
            found = self._condition(slot, alias)
            if parent is None:
                return found
            return sa.and_(alias.c.from_run_id == parent.id, found)

        reads_page = any(isinstance(item, Edges | PageInfo) for item in spec.fields)
        if not reads_page:
            pairs = [
                (item.key, self._connection_field(spec, item, None, condition))
                for item in spec.fields
            ]
            return sa.select(json_object(pairs)).scalar_subquery()
        t = self.table.alias(f"p{slot}_t")
        select = sa.select(*(t.c[name] for name in RUN_FIELDS))
        page = page_statement(
            t,  # type: ignore[arg-type]  # an alias: the same columns
            select,
            condition(t),
            order=spec.order,
            backward=spec.backward,
            has_start=spec.has_start,
            probe=False,
            rows=spec.size + 1,
        )
        page = self._adapt(page, slot, t).correlate_except(t)
        p = page.subquery(f"p{slot}_p")
        columns: list[Any] = [
            *p.c,
            sa.func.row_number()
            .over(order_by=page_order(p.c, spec.order, spec.backward))
            .label("n"),
        ]
        if _edge_cursors(spec):
            columns.append(self._cursor(p.c, spec.order).label("cursor"))
        q = sa.select(*columns).subquery(f"p{slot}_q")
        pairs = [
            (item.key, self._connection_field(spec, item, q, condition))
            for item in spec.fields
        ]
        return sa.select(json_aggregates(pairs)).select_from(q).scalar_subquery()

    def _connection_field(
        self,
        spec: Connection,
        item: Any,
        q: Any,
        condition: Callable[[Any], sa.ColumnElement[bool]],
    ) -> Any:
        slot = spec.slot
        if isinstance(item, Const):
            return literal(item.value)
        if isinstance(item, Scalar):  # totalCount
            counted = self.table.alias(f"p{slot}_c")
            counting = sa.select(sa.func.count()).select_from(counted)
            return (
                counting.where(condition(counted))
                .correlate_except(counted)
                .scalar_subquery()
            )
        size = row_limit(spec.size)
        on_page = q.c.n <= size
        order = q.c.n.desc() if spec.backward else q.c.n
        if isinstance(item, Edges):
            pairs: list[tuple[str, Any]] = []
            for field in item.fields:
                if isinstance(field, Const):
                    pairs.append((field.key, literal(field.value)))
                elif isinstance(field, Scalar):
                    pairs.append((field.key, q.c.cursor))
                else:
                    pairs.append((field.key, self._run(field.run, q.c)))
            edges = sa.func.json_agg(
                aggregate_order_by(json_object(pairs), order)
            ).filter(on_page)
            return sa.func.coalesce(edges, sa.literal_column("'[]'::json"))
        has_more = sa.func.count() > size
        has_before: Any = sa.false()
        if spec.probe:
            probed = self.table.alias(f"p{slot}_b")
            before = self._adapt(
                before_start(probed.c, spec.order, spec.backward), slot, probed
            )
            earlier = sa.select(probed.c.id).where(condition(probed), before)
            has_before = sa.exists(earlier.correlate_except(probed))
        after_, before_ = (
            (has_before, has_more) if spec.backward else (has_more, has_before)
        )
        pairs = []
        for field in item.fields:
            if isinstance(field, Const):
                pairs.append((field.key, literal(field.value)))
                continue
            if field.field in ("startCursor", "endCursor"):
                first = (field.field == "startCursor") != spec.backward
                value: Any = self._boundary_cursor(spec, q, first, on_page)
            else:
                value = after_ if field.field == "hasNextPage" else before_
            pairs.append((field.key, value))
        return json_aggregates(pairs)

    def _boundary_cursor(
        self, spec: Connection, q: Any, first: bool, on_page: Any
    ) -> sa.ColumnElement[Any]:
        """The cursor of the page's first or last row: each edge's, if they
        are selected, else signed for that row alone."""

        def pick(column: Any, type_: Any) -> Any:
            ordered = aggregate_order_by(column, q.c.n if first else q.c.n.desc())
            return sa.func.array_agg(ordered, type_=ARRAY(type_)).filter(on_page)[1]

        if _edge_cursors(spec):
            return pick(q.c.cursor, sa.Text)  # type: ignore[no-any-return]
        names = {"id", *(("start", "end") if spec.order.key == "duration" else ())}
        names.add(spec.order.key if spec.order.key != "duration" else "id")
        row = {name: pick(q.c[name], q.c[name].type) for name in names}
        return self._cursor(_Row(row), spec.order)

    def _cursor(self, c: Any, order: RunOrder) -> sa.ColumnElement[Any]:
        """The cursor ``CursorCodec.encode`` writes for the row in ``order``."""
        if order.key == "duration":
            key = sa.func.coalesce(
                concat(literal("["), micros_text(c.end - c.start), literal("]")),
                literal("null"),
            )
        else:
            key = sa.func.coalesce(micros_text(c[order.key]), literal("null"))
        body = concat(
            literal(f'["{order.value}",'),
            key,
            literal(","),
            sa.cast(sa.func.to_json(c.id), sa.Text),
            literal("]"),
        )
        payload = sa.func.convert_to(body, literal("UTF8"), type_=sa.LargeBinary)
        inner = sa.func.sha256(
            concat(sa.bindparam("ipad", type_=sa.LargeBinary), payload),
            type_=sa.LargeBinary,
        )
        outer = sa.func.sha256(
            concat(sa.bindparam("opad", type_=sa.LargeBinary), inner),
            type_=sa.LargeBinary,
        )
        signature = sa.func.substring(
            outer,
            sa.literal_column("1"),
            sa.literal_column(str(SIGNATURE_BYTES)),
            type_=sa.LargeBinary,
        )
        encoded = sa.func.encode(concat(signature, payload), literal("base64"))
        return sa.func.rtrim(
            sa.func.translate(encoded, sa.literal_column("E'+/\\n'"), literal("-_")),
            literal("="),
        )


class _Row(dict[str, Any]):
    """Columns by name or as attributes, as a row's ``c`` has them."""

    def __getattr__(self, name: str) -> Any:
        return self[name]


def _edge_cursors(spec: Connection) -> bool:
    """Whether the connection's edges select their cursor."""
    return any(
        isinstance(item, Edges)
        and any(isinstance(field, Scalar) for field in item.fields)
        for item in spec.fields
    )


async def read_json(
    store: HistoryStore,
    root: RootSpec,
    filters: Mapping[int, BoundFilter],
    params: Mapping[str, Any],
    names: tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]],
) -> str:
    """The text of the ``data`` of ``root`` read on ``store``, each slot
    reading where its filter holds; raises ``ValueError`` for a table
    lacking gql_history's columns (a TaskDbPlugin table is read otherwise)."""
    present = await store.present_columns()
    if not present.issuperset(RUN_FIELDS):
        raise ValueError("the table lacks gql_history's columns")
    registry = store.live_tasks
    rendering = Rendering(*names, live_tags=bool(registry.registry))
    shapes = tuple(bound.shape for bound in filters.values())
    read = store.reads.get(
        ("json", root, shapes, rendering),
        lambda: JsonStatement(
            store.table,
            {slot: bound.condition for slot, bound in filters.items()},
            rendering,
        ).build(root),
    )
    values = {**read.values, **params}
    if rendering.live_tags:
        values["live_tags"] = {
            name: registry.tags_of(name) for name in registry.registry
        }
    rows = await store.reads.fetch(read, values)
    text: str = rows[0][0]
    return text
