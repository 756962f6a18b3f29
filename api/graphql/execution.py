"""A faster path through graphql-core's executor for the common shapes of a response.

A page of 50 notices is ~600 fields: plain leaves (id, reference, status, at...), objects
and lists of objects held by plain attributes or returned by resolvers. For
each, graphql-core builds a resolve-info object and a path, walks `complete_value` through
the non-null wrapper, `complete_object_value`, `collect_and_execute_subfields` and
`execute_collected_subfields`, and checks twice for awaitables; that walk was over half of a
page's CPU in the read profile. Here each selection set gets a plan (which fields are plain
leaves, objects or lists of them) once per request, or once for as long as the parser cache
keeps the query when nothing in the selection depends on the request, and values of those
shapes are completed directly: resolve info only for fields that have a resolver, paths only
where something can need them.

Anything unusual takes graphql-core's own path from the point it was found, with the value
already resolved (a resolver, an `is_type_of` or a scalar's serialize is never called twice): a
null, an error, an awaitable, an abstract or nested-list type, directives (`@defer`, `@stream`),
middleware, arguments strawberry must convert itself (see `_direct_resolver`). So errors, null propagation, paths and locations stay exactly as
graphql-core makes them: the fast path only ever returns what the slow path would have, having
called what it would have called (tests/test_execution.py runs the same queries through both).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from types import CoroutineType, GeneratorType, WrapperDescriptorType
from typing import Any, Final

from graphql import (
    FragmentSpreadNode,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLField,
    GraphQLID,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLResolveInfoHelpers,
    GraphQLScalarType,
    GraphQLString,
    InlineFragmentNode,
    Undefined,
)
from graphql.execution.collect_fields import FieldDetails
from graphql.execution.executor import Executor, collect_iterator_awaitables, invalid_return_type_error
from graphql.execution.values import get_argument_values
from graphql.pyutils import Path, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import CustomGraphQLEnumType, GraphQLCoreConverter
from strawberry.types.cast import TYPE_CAST_ATTRIBUTE
from strawberry.types.field import StrawberryField
from strawberry.types.fields.resolver import StrawberryResolver
from strawberry.types.info import Info

from .compiled import compile_plan
from .identity import WhileAlive
from .inputs import argument_context, argument_plan

logger = logging.getLogger("takedown.graphql")

_Leaf = GraphQLScalarType | GraphQLEnumType
_Info = GraphQLResolveInfo[Any]
_Direct = Callable[[Any, _Info], Any]  # a strawberry resolver called as strawberry calls it
# the same, given what builds its info on first use: the execution context, the field, its parent type and path
_Lazy = Callable[[Any, "ExecutionContext", "_Field", GraphQLObjectType, Path], Any]
# Values of these types are never awaitable: no need to ask. Types seen not to be awaitable join
# _SETTLED (at most _MAX_SETTLED of them: the schema's own types, dates, enums).
_PLAIN: Final = frozenset({str, int, float, bool, list, tuple, dict})
_SETTLED: set[type] = set(_PLAIN)
_MAX_SETTLED: Final = 2000
# Types whose values have been found completable as they are: not null, not an error, never
# awaitable (a subset of _SETTLED). A compiled plan completes values of these types directly.
_ORDINARY: set[type] = set()
_NULLS: Final = frozenset({type(None), type(Undefined)})  # never ordinary, whoever asks
_UNCHANGED: Final[dict[Any, type]] = {GraphQLString: str, GraphQLID: str, GraphQLBoolean: bool}


# A Path (a NamedTuple) made without its Python-level __new__: half the cost, the same object,
# for the few hundred a page makes.
_new_path: Final = tuple.__new__
if Path._fields != ("prev", "key", "typename"):
    raise ImportError(f"graphql-core's Path has fields {Path._fields}: _new_path builds it from three")

# Returned by a fast completion that cannot complete the value (before doing any work):
# graphql-core's own completion takes it from there.
_SLOW: Final = object()

# Shapes a field's type can have on the fast path.
LEAF, OBJECT, LIST = 1, 2, 3


class _Shape:
    """What completing a value of one output type takes: computed once per type and field."""

    __slots__ = ("output", "kind", "non_null", "leaf", "object_type", "item", "unchanged", "names", "blind_check", "exact")

    def __init__(self, output: GraphQLOutputType, kind: int, non_null: bool, leaf: _Leaf | None = None,
                 object_type: GraphQLObjectType | None = None, item: _Shape | None = None) -> None:
        self.output = output
        self.kind = kind
        self.non_null = non_null
        self.leaf = leaf
        self.object_type = object_type
        self.item = item
        # The Python type a built-in scalar returns as it is (its coercion is a type check).
        self.unchanged = _UNCHANGED.get(leaf) if leaf is not None else None
        self.names = _enum_names(leaf) if leaf is not None else None
        # strawberry's own is_type_of (types with interfaces) ignores its info: no need to build one
        check = object_type.is_type_of if object_type is not None else None
        self.blind_check = check is not None and getattr(check, "__module__", "") == GraphQLCoreConverter.__module__ \
            and check.__code__.co_varnames[1:2] == ("_info",)
        # The class whose own instances (not cast to another type) that is_type_of accepts without
        # looking further, unless the type is a generic's specialization: compiled plans test for
        # it inline (compiled.py), where the call was 1.3% of a page.
        definition = object_type.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF) if self.blind_check else None  # type: ignore[union-attr]
        self.exact = getattr(definition, "origin", None) if getattr(definition, "concrete_of", True) is None else None


def _enum_names(leaf: _Leaf) -> dict[int, str] | None:
    """strawberry's enum coercion as a table: member -> the first name whose value equals the member's
    (its `coerce_output_value` scans the values for each one). Keyed by the member's id: members are
    singletons living as long as their enum (and the schema holding this table), and an Enum's
    __hash__ is Python code, ~3x the cost of the lookup itself."""
    if getattr(type(leaf), "coerce_output_value", None) is not CustomGraphQLEnumType.coerce_output_value:
        return None
    names: dict[int, str] = {}
    for member in leaf.wrapped_cls:  # type: ignore[union-attr]
        for name, value in leaf.values.items():  # type: ignore[union-attr]
            if member.value == value.value:
                names.setdefault(id(member), name)
                break
    return names


def _shape(type_: GraphQLOutputType, *, in_list: bool = False) -> _Shape | None:
    non_null = isinstance(type_, GraphQLNonNull)
    named = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
    if isinstance(named, GraphQLScalarType | GraphQLEnumType):
        return _Shape(type_, LEAF, non_null, leaf=named)
    if isinstance(named, GraphQLObjectType):
        return _Shape(type_, OBJECT, non_null, object_type=named)
    if isinstance(named, GraphQLList) and not in_list:
        item = _shape(named.of_type, in_list=True)
        return None if item is None else _Shape(type_, LIST, non_null, item=item)
    return None  # interfaces, unions, lists of lists: graphql-core's path


# The plan of a field definition is kept on the definition itself: it lives exactly as long as
# its schema (an id() key could be reused by a field of a later schema, and tests build many).
_PLAN = "_takedown_field_plan"
_UNPLANNED = object()


class _Definition:
    """How to resolve and complete one field definition, when it can take the fast path."""

    __slots__ = ("resolve", "shape", "attribute", "strawberry", "lazy", "method", "arguments")

    def __init__(self, resolve: Callable[..., Any], shape: _Shape, attribute: str | None = None,
                 strawberry: StrawberryField | None = None, lazy: _Lazy | None = None,
                 method: Callable[[Any, Any], Any] | None = None, arguments: bool = False) -> None:
        self.resolve = resolve
        # Called with the field's arguments as graphql-core gives a resolver them (`_arguments`)
        self.arguments = arguments
        self.shape = shape
        # strawberry reads this attribute with the field's default resolver (getattr unless configured;
        # read on every call, as strawberry does: a later schema may configure another): no resolve info
        self.attribute = attribute
        self.strawberry = strawberry
        self.lazy = lazy  # the resolver called with a lazily built Info (see _direct_resolver)
        self.method = method  # with `lazy`, when the resolver is `def field(self, info)`: called so directly


def _definition(field: GraphQLField) -> _Definition | None:
    plan = field.__dict__.get(_PLAN, _UNPLANNED)
    if plan is _UNPLANNED:
        plan = field.__dict__[_PLAN] = _plan_definition(field)
    return plan  # type: ignore[no-any-return]


def _plan_definition(field: GraphQLField) -> _Definition | None:
    if field.resolve is None:
        return None
    shape = _shape(field.type)
    if shape is None:
        return None
    definition = field.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if not isinstance(definition, StrawberryField) or type(definition).get_result is not StrawberryField.get_result:
        return _Definition(field.resolve, shape, arguments=bool(field.args))
    if getattr(field.resolve, "__name__", "") == "_get_basic_result" and definition.is_basic_field \
            and definition.base_resolver is None and not field.args:
        # strawberry's wrapper for a field without resolver, extensions or permissions: it reads the
        # attribute with the default resolver and ignores info
        return _Definition(field.resolve, shape, definition.python_name, definition)
    calls = _direct_resolver(field, definition)
    if calls is None:
        return _Definition(field.resolve, shape, arguments=bool(field.args))
    direct, lazy, method = calls
    return _Definition(direct, shape, strawberry=definition, lazy=lazy, method=method if lazy is not None else None,
                       arguments=bool(field.args))


def _direct_resolver(field: GraphQLField, definition: StrawberryField) -> tuple[_Direct, _Lazy | None, Callable[..., Any] | None] | None:
    """The call strawberry's resolver wrapper makes, without its extension chain, for a resolver that
    has no extensions and no exception handlers (for anything else, None: the wrapper itself is
    called). Its arguments, if any, are converted by a plan made once (inputs.argument_plan), as
    strawberry converts them on every call; an async resolver's coroutine is handed to graphql-core
    as strawberry's own coroutine would have been, without that wrapping one. With it, for a
    resolver without arguments, where strawberry would pass a plain `strawberry.Info`, the same
    call with an Info that builds graphql-core's resolve info on first use (most resolvers only
    read `context`)."""
    resolve = field.resolve
    resolver = definition.base_resolver
    wrapper = "_async_resolver" if resolver is not None and resolver.is_async else "_resolver"
    if resolve is None or getattr(resolve, "__name__", "") != wrapper or resolve.__closure__ is None or resolver is None \
            or definition.extensions or (resolver.is_async and not inspect.iscoroutinefunction(resolver.wrapped_func)) \
            or type(resolver).__call__ is not StrawberryResolver.__call__ or not callable(resolver.wrapped_func):
        return None
    try:
        cells = dict(zip(resolve.__code__.co_freevars, (c.cell_contents for c in resolve.__closure__), strict=True))
        make_info = cells.get("_strawberry_info_from_graphql")
        converter = dict(zip(make_info.__code__.co_freevars, (c.cell_contents for c in make_info.__closure__ or ()),
                             strict=True)).get("self") if make_info is not None else None
    except (ValueError, AttributeError):  # an empty cell, or not the wrapper this was written against
        return None
    if make_info is None or cells.get("field_exception_handlers", None) != ():
        return None
    config, registry = getattr(converter, "config", None), getattr(converter, "scalar_registry", None)
    arguments: list[tuple[str, str, Any]] | None = []
    if definition.arguments:
        if config is None or registry is None:
            return None
        arguments = argument_plan(definition.arguments, config, registry)
    if arguments is None:
        return None
    func: Callable[..., Any] = resolver.wrapped_func
    wants_self = resolver.self_parameter is not None
    source_names = [p.name for p in (resolver.parent_parameter, resolver.root_parameter) if p is not None]
    info_name = resolver.info_parameter.name if resolver.info_parameter is not None else None
    if {"info", "_source"} & set(source_names) or info_name == "_source":
        return None  # strawberry's wrapper passes these names its own way (or fails): leave it to it

    def call(source: Any, strawberry_info: Any, kwargs: dict[str, Any]) -> Any:
        """`kwargs` (the converted arguments) completed as strawberry's get_arguments completes them."""
        for source_name in source_names:
            kwargs[source_name] = source
        if info_name is not None:
            kwargs[info_name] = strawberry_info
        return func(source, **kwargs) if wants_self else func(**kwargs)

    if arguments:  # given by the executor on each call: never called lazily
        builds = any(convert is not None for _, _, convert in arguments)

        def direct(source: Any, info: _Info, **given: Any) -> Any:
            strawberry_info = make_info(info) if info_name is not None or builds else None
            kwargs = {}
            for name, python_name, convert in arguments:
                if name in given:
                    value = given[name]
                    kwargs[python_name] = value if convert is None else convert(
                        value, argument_context(strawberry_info, config, registry, name), name)  # type: ignore[arg-type]
            return call(source, strawberry_info, kwargs)

        if resolver.is_async and builds:
            converting = direct

            async def direct(source: Any, info: _Info, **given: Any) -> Any:  # type: ignore[misc]
                """Inputs built inside the coroutine, as strawberry's wrapper builds them: an input refusing
                itself fails the field when it is awaited, after its siblings have run, not before."""
                return await converting(source, info, **given)

        return direct, None, None

    def direct(source: Any, info: _Info) -> Any:  # type: ignore[no-redef]
        return call(source, make_info(info) if info_name is not None else None, {})

    method: Callable[..., Any] | None = None
    if wants_self and not source_names and info_name is not None and _second_positional(func) == info_name:
        method = func

        def lazy(source: Any, executor: ExecutionContext, planned: _Field, parent_type: GraphQLObjectType, path: Path) -> Any:
            """The usual shape, `def field(self, info)`: info passed by position, no keywords built."""
            return func(source, _LazyInfo(executor, planned, parent_type, path, definition))
    else:
        def lazy(source: Any, executor: ExecutionContext, planned: _Field, parent_type: GraphQLObjectType, path: Path) -> Any:
            return call(source, _LazyInfo(executor, planned, parent_type, path, definition) if info_name is not None else None, {})

    plain_info = getattr(config, "info_class", None) is Info
    return direct, lazy if plain_info else None, method


def _second_positional(func: Callable[..., Any]) -> str | None:
    """The name of `func`'s second parameter when strawberry's keyword and a position reach it alike
    (the first is self). The function's own signature, not that of what it wraps: a decorator's
    `def wrapper(self, **kwargs)` must get its info by keyword, as strawberry gives it."""
    try:
        parameters = list(inspect.signature(func, follow_wrapped=False).parameters.values())
    except (TypeError, ValueError):
        return None
    if len(parameters) < 2 or any(p.kind is not p.POSITIONAL_OR_KEYWORD for p in parameters[:2]):
        return None
    return parameters[1].name


class _LazyInfo(Info[Any, Any]):
    """strawberry's Info, with graphql-core's resolve info (a 14-field object and its path) built on
    first use: a page's `provider` and `history` resolvers only read `context`, which the executor
    holds (it is what the resolve info would carry). Every property and method answers as
    strawberry's does; what differs is what nothing here does: `type(info) is Info`, its repr,
    `dataclasses.replace` on it, assigning `_raw_info`, and an `info_class` changed on the schema's
    config after the field was planned (strawberry reads it per call; the plan, once)."""

    def __init__(self, executor: ExecutionContext, planned: _Field, parent_type: GraphQLObjectType, path: Path,  # noqa: D107
                 field: StrawberryField) -> None:
        self._executor = executor
        self._planned = planned
        self._parent_type = parent_type
        self._path = path
        self._field = field
        self._built: _Info | None = None

    @property
    def _raw_info(self) -> _Info:  # type: ignore[override]
        if self._built is None:
            self._built = self._executor._info(self._planned, self._parent_type, self._path)
        return self._built

    @property
    def context(self) -> Any:
        return self._executor.context_value


_SHARED = "_takedown_shared_subfields"
_COLLECTED = "collected"  # marks the key of a plan of collected fields (`_collected`)
_MAX_COLLECTED: Final = 8  # such plans kept per operation
_Plans = dict[tuple[Any, ...], tuple[list[Any], "_Fields"]]


def _request_independent(details: list[FieldDetails], fragments: dict[str, Any]) -> bool:
    """Whether collecting these fields' subfields gives the same result for every request: no
    @defer above them, no fragment arguments, and no directive (@skip, @include, @defer) in their
    selection sets, the fragments those spread included."""
    if any(d.defer_usage is not None or d.fragment_variable_values is not None for d in details):
        return False
    pending = [d.node.selection_set for d in details]
    seen: set[str] = set()
    while pending:
        selection_set = pending.pop()
        for selection in selection_set.selections if selection_set is not None else ():
            if selection.directives:
                return False
            if isinstance(selection, InlineFragmentNode):
                pending.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
                seen.add(selection.name.value)
                fragment = fragments.get(selection.name.value)
                if fragment is None or fragment.directives:
                    return False
                pending.append(fragment.selection_set)
    return True


class _Fields(list["_Field"]):
    """A plan: the fields of one selection set on one object type, in response order. A plan kept
    across requests is compiled (compiled.py) once it has completed `compile_after` objects."""

    __slots__ = ("run", "to_compile")

    def __init__(self, fields: list[_Field]) -> None:
        super().__init__(fields)
        self.run: Callable[[ExecutionContext, Any, Path | None], Any] | None = None
        # Objects still to complete before compiling: set when the plan is kept, None once it is
        # compiled (or failed to), or for a plan made for one request.
        self.to_compile: int | None = None


class _Field:
    """One response key of a selection set, with what the fast path needs to execute it."""

    __slots__ = ("name", "details", "definition", "field", "nodes", "subfields", "attribute", "strawberry", "shape",
                 "unchanged", "enum", "names")

    def __init__(self, name: str, details: list[FieldDetails], field: GraphQLField | None) -> None:
        self.name = name
        self.details = details
        self.field = field
        self.nodes = [d.node for d in details]
        plain = field is not None and all(not n.directives for n in self.nodes)
        definition = _definition(field) if plain and field is not None else None
        if definition is not None and not definition.arguments and any(n.arguments for n in self.nodes):
            definition = None  # arguments the field does not define (validation refuses them): graphql-core's
        self.definition = definition
        self.subfields: _Fields | None = None  # of its object type, once known not to depend on the request
        # A leaf read off the object (the commonest field of all) is executed inline, from these.
        leaf = definition is not None and definition.attribute is not None and definition.shape.kind == LEAF
        self.attribute = definition.attribute if leaf and definition is not None else None
        self.strawberry = definition.strawberry if definition is not None else None
        self.shape = definition.shape if definition is not None else None
        self.unchanged = self.shape.unchanged if self.shape is not None else None
        self.names = self.shape.names if self.shape is not None else None
        self.enum = self.shape.leaf.wrapped_cls if self.names is not None else None  # type: ignore[union-attr]


class _AsyncWork:
    """The executor's `info.async_helpers` without the executor: graphql-core builds them from its
    bound methods and keeps them on the executor, a reference cycle that left every request (the
    executor, and through it the context, the HTTP request, the variables) to Python's cyclic
    collector. Its full collections then paused the process for 14-25 ms every 1.5-2 s at 32
    concurrent pages, and those pauses set the p99. graphql-core's own functions run here, on the
    only state they read: the predicate and the set of background work, shared by sub-executors."""

    __slots__ = ("is_awaitable", "background_futures")

    def __init__(self, executor: Executor[Any]) -> None:
        self.is_awaitable = executor.is_awaitable
        self.background_futures = executor.background_futures

    gather_async_work = Executor.gather_async_work
    track_async_work = Executor.track_async_work
    settle_in_background = Executor.settle_in_background

    def helpers(self) -> GraphQLResolveInfoHelpers:
        # mypy wants an Executor as their self; these functions read only the two attributes above.
        return GraphQLResolveInfoHelpers(gather=self.gather_async_work, track=self.track_async_work)  # type: ignore[misc]


class ExecutionContext(StrawberryGraphQLCoreExecutionContext):
    # A kept plan is compiled once it has completed this many objects (over any number of
    # requests): a page's plans on its first request, a one-object query's after a few repeats.
    # None: never (tests compare both ways with graphql-core's).
    compile_after: int | None = 20

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.async_helpers = _AsyncWork(self).helpers()

    def _fields(self, parent_type: GraphQLObjectType, grouped_field_set: Any) -> _Fields:
        """The plan of a selection set: made once per request (the grouped field set is the same
        object for every item of a list: graphql-core memoizes it), kept alive with it."""
        plans: dict[tuple[GraphQLObjectType, int], tuple[Any, _Fields]] = self.__dict__.setdefault("_takedown_plans", {})
        key = (parent_type, id(grouped_field_set))
        found = plans.get(key)
        if found is not None:
            return found[1]
        get_field = self.schema.get_field
        fields = _Fields([_Field(name, details, get_field(parent_type, details[0].node.name.value))
                          for name, details in grouped_field_set.items()])
        plans[key] = (grouped_field_set, fields)
        return fields

    def _subfields(self, object_type: GraphQLObjectType, planned: _Field) -> _Fields | None:
        """The planned subfields of a field on an object type; None when they use @defer.

        Kept across requests when nothing in the selection depends on the request (no directives,
        no defer, no fragment arguments): with the parser cache, a repeated query has the very same
        operation and field nodes. Kept per operation node, weakly: the plans live as long as the
        parser cache keeps the document (their nodes pin its text, so they must not outlive it), and
        the key's node ids are those of live nodes (the entry keeps them too).
        """
        if planned.subfields is not None:
            return planned.subfields
        details = planned.details
        shared = self._kept()
        key = (object_type, tuple([id(d.node) for d in details]))
        found = shared.get(key)
        if found is not None:
            planned.subfields = found[1]
            return found[1]
        grouped_field_set, new_defer_usages, _ = self.collect_subfields(object_type, details)
        if new_defer_usages:
            return None
        fields = self._fields(object_type, grouped_field_set)
        if _request_independent(details, self.fragment_definitions):
            shared[key] = ([d.node for d in details], fields)
            planned.subfields = fields
            fields.to_compile = self.compile_after
        return fields

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: Any,
        position_context: Any,
    ) -> Any:
        middleware = self.middleware_manager
        if position_context is not None or (middleware is not None and middleware.middlewares):
            return super().execute_fields(parent_type, source_value, path, grouped_field_set, position_context)
        return self._run(parent_type, source_value, path, self._collected(parent_type, grouped_field_set))

    def execute_fields_serially(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: Any,
        position_context: Any,
    ) -> Any:
        """A mutation of one field (nearly every mutation) has no order to keep: it runs as a query's
        fields do, on the planned path. With more, or an abort signal to check before each, graphql-core's."""
        if len(grouped_field_set) == 1 and self.abort_signal is None:
            return self.execute_fields(parent_type, source_value, path, grouped_field_set, position_context)
        return super().execute_fields_serially(parent_type, source_value, path, grouped_field_set, position_context)

    def _kept(self) -> _Plans:
        """The plans kept for this operation (see `_subfields`)."""
        by_operation: WhileAlive[_Plans] = self.schema.__dict__.setdefault(_SHARED, WhileAlive())
        shared = by_operation.get(self.operation)
        return by_operation.put(self.operation, {}) if shared is None else shared

    def _collected(self, parent_type: GraphQLObjectType, grouped_field_set: Any) -> _Fields:
        """The plan of fields graphql-core has collected (the operation's, or an object's that it completed
        itself, as after an async resolver): kept across requests by the fields' nodes, which say what
        the collection gave (a field left out by @skip is a node missing), unless @defer or fragment
        arguments took part."""
        details = [d for field_details in grouped_field_set.values() for d in field_details]
        if any(d.defer_usage is not None or d.fragment_variable_values is not None for d in details):
            return self._fields(parent_type, grouped_field_set)
        shared = self._kept()
        key = (_COLLECTED, parent_type, tuple([id(d.node) for d in details]))
        found = shared.get(key)
        if found is not None:
            return found[1]
        fields = self._fields(parent_type, grouped_field_set)
        # Variables can collect other fields (@skip, @include): 2^n selections for n of them. Only a
        # few per operation are kept; beyond those, plans are made per request, as before.
        if sum(1 for kept in shared if kept[0] is _COLLECTED) < _MAX_COLLECTED:
            shared[key] = ([d.node for d in details], fields)
            fields.to_compile = self.compile_after
        return fields

    def _run(self, parent_type: GraphQLObjectType, source_value: Any, path: Path | None, fields: _Fields) -> Any:
        """graphql-core's `execute_fields` over a planned selection set (compiled, once it has been used enough)."""
        run = fields.run
        if fields.to_compile is not None:
            fields.to_compile -= 1
            if fields.to_compile <= 0:
                fields.to_compile = None  # one attempt: a plan that does not compile stays interpreted
                try:
                    run = fields.run = compile_plan(parent_type, fields, _inlined, _HELPERS)
                except Exception:  # a bug of the compiler's, never the request's: interpreting answers the same
                    logger.exception("a plan of %s did not compile; it is interpreted", parent_type.name)
        if run is not None:
            return run(self, source_value, path)
        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        type_name = parent_type.name
        try:
            for planned in fields:
                name = planned.name
                attribute = planned.attribute
                if attribute is not None:
                    # A plain leaf, inline: the attribute (read as strawberry reads it) and, for the
                    # common cases, a coercion that is a type check (str, ID, Boolean) or a table (enums).
                    try:
                        value = planned.strawberry.default_resolver(source_value, attribute)  # type: ignore[union-attr]
                    except Exception as raw_error:  # noqa: BLE001 - completed (and located) by graphql-core below
                        value, result = raw_error, _SLOW
                    else:
                        kind = type(value)
                        if kind is planned.unchanged:
                            results[name] = value
                            continue
                        if kind is planned.enum:
                            label = planned.names.get(id(value))  # type: ignore[union-attr]
                            if label is not None:
                                results[name] = label
                                continue
                        result = self._leaf_rest(planned, parent_type, path, value)
                    if result is _SLOW:
                        result = self._finish(planned, parent_type, Path(path, name, type_name), None, value)
                elif planned.definition is None:
                    result = self.execute_field(parent_type, source_value, planned.details, Path(path, name, type_name), None)
                    if result is Undefined:
                        continue
                else:
                    result = self._execute(planned, planned.definition, parent_type, source_value,
                                           _new_path(Path, (path, name, type_name)))
                results[name] = result
                if type(result) not in _SETTLED and _awaitable(is_awaitable, result):
                    awaitable_fields.append(name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[name] for name in awaitable_fields])
            raise
        if not awaitable_fields:
            return results
        return _gather_fields(results, awaitable_fields)

    def _leaf_rest(self, planned: _Field, parent_type: GraphQLObjectType, path: Path | None, value: Any) -> Any:
        """An inline leaf whose value is not of the type it is usually: coerced, or completed by
        graphql-core (a null, an error, an awaitable), as `execute_field` would."""
        try:
            result = _leaf(planned.shape, value, self.is_awaitable)  # type: ignore[arg-type]
        except Exception as raw_error:  # noqa: BLE001 - as execute_field handles completion errors
            self.handle_field_error(raw_error, planned.field.type, planned.details,  # type: ignore[union-attr]
                                    Path(path, planned.name, parent_type.name))
            return None
        if result is _SLOW:
            return self._finish(planned, parent_type, Path(path, planned.name, parent_type.name), None, value)
        return result

    def _info(self, planned: _Field, parent_type: GraphQLObjectType, path: Path) -> _Info:
        assert planned.field is not None
        return self.build_resolve_info(planned.field, planned.nodes, parent_type, path)

    def _arguments(self, planned: _Field) -> dict[str, Any]:
        """The arguments graphql-core's `execute_field` gives the resolver (coerced, defaults filled in)."""
        field, first = planned.field, planned.details[0]
        assert field is not None
        if not (field.args or first.node.arguments):
            return {}
        return get_argument_values(field, first.node, self.variable_values, first.fragment_variable_values,
                                   self.hide_suggestions)

    def _execute(self, planned: _Field, definition: _Definition, parent_type: GraphQLObjectType, source: Any,
                 path: Path) -> Any:
        """`execute_field` for a planned field: resolve, then complete on the fast path if the value allows."""
        info = None
        try:
            if definition.attribute is not None:
                value = definition.strawberry.default_resolver(source, definition.attribute)  # type: ignore[union-attr]
            elif definition.lazy is not None:
                value = definition.lazy(source, self, planned, parent_type, path)
            else:
                info = self._info(planned, parent_type, path)
                value = definition.resolve(source, info, **self._arguments(planned)) if definition.arguments \
                    else definition.resolve(source, info)
        except Exception as raw_error:  # noqa: BLE001 - graphql-core's completion raises and locates it
            return self._finish(planned, parent_type, path, info, raw_error)
        return self._completing(planned, definition, parent_type, path, info, value)

    def _completing(self, planned: _Field, definition: _Definition, parent_type: GraphQLObjectType, path: Path,
                    info: _Info | None, value: Any) -> Any:
        """The rest of `_execute`, once the value is resolved: completed on the fast path if it allows."""
        shape = definition.shape
        try:
            if shape.kind == LEAF:
                result = _leaf(shape, value, self.is_awaitable)
            elif shape.kind == OBJECT:
                result = self._object(planned, shape, parent_type, path, info, value)
            else:
                result = self._list(planned, shape, parent_type, path, info, value)
        except Exception as raw_error:  # noqa: BLE001 - exactly what execute_field does with completion errors
            self.handle_field_error(raw_error, planned.field.type, planned.details, path)  # type: ignore[union-attr]
            return None
        if result is _SLOW:
            return self._finish(planned, parent_type, path, info, value)
        if type(result) not in _SETTLED and _awaitable(self.is_awaitable, result):
            return self._guarded(result, planned.field.type, planned.details, path)  # type: ignore[union-attr]
        return result

    def _object(self, planned: _Field, shape: _Shape, parent_type: GraphQLObjectType, path: Path,
                info: _Info | None, value: Any) -> Any:
        """`complete_object_value` without the walk; _SLOW (before any work) when it cannot."""
        if value is None or value is Undefined:
            return _SLOW if shape.non_null else None
        if isinstance(value, Exception) or _awaitable(self.is_awaitable, value):
            return _SLOW
        _ordinary(value)
        object_type = shape.object_type
        assert object_type is not None
        fields = self._subfields(object_type, planned)
        if fields is None:
            return _SLOW
        if object_type.is_type_of is not None:
            check_info = None if shape.blind_check else info or self._info(planned, parent_type, path)
            return self._checked(object_type, object_type.is_type_of(value, check_info), value, path,  # type: ignore[arg-type]
                                 planned.details, fields)
        return self._run(object_type, value, path, fields)

    def _checked(self, object_type: GraphQLObjectType, is_type_of: Any, value: Any, path: Path,
                 details: list[FieldDetails], fields: _Fields) -> Any:
        """`complete_object_value` once `is_type_of` has answered (awaitable or not)."""
        if is_type_of is not True and _awaitable(self.is_awaitable, is_type_of):
            return self._checked_later(object_type, is_type_of, value, path, details, fields)
        if not is_type_of:
            raise invalid_return_type_error(object_type, value, details)
        return self._run(object_type, value, path, fields)

    async def _checked_later(self, object_type: GraphQLObjectType, is_type_of: Awaitable[Any], value: Any, path: Path,
                             details: list[FieldDetails], fields: _Fields) -> Any:
        if not await self.with_abort_signal(is_type_of):
            raise invalid_return_type_error(object_type, value, details)
        result = self._run(object_type, value, path, fields)
        return await result if self.is_awaitable(result) else result

    def _list(self, planned: _Field, shape: _Shape, parent_type: GraphQLObjectType, path: Path,
              info: _Info | None, value: Any) -> Any:
        """`complete_iterable_value` for lists and tuples of leaves or objects: each item that is not
        plain goes through graphql-core's `complete_list_item_value`, as it would have."""
        if value is None or value is Undefined:
            return _SLOW if shape.non_null else None
        if type(value) not in (list, tuple):
            return _SLOW  # async iterables, generators, non-iterables: graphql-core's checks and errors
        item = shape.item
        assert item is not None and planned.field is not None
        is_awaitable = self.is_awaitable
        completed: list[Any] = []
        awaitable_indices: list[int] = []
        fields: _Fields | None = None
        if item.object_type is not None:
            fields = self._subfields(item.object_type, planned)
            if fields is None:
                return _SLOW
        iterator = iter(value)
        index = 0
        try:
            for entry in iterator:
                item_path = _new_path(Path, (path, index, None))
                if fields is not None:
                    if self._list_entry(planned, parent_type, path, fields, entry, item_path, completed):
                        awaitable_indices.append(index)
                    index += 1
                    continue
                try:
                    result = _leaf(item, entry, is_awaitable)
                except Exception as raw_error:  # noqa: BLE001 - as complete_list_item_value does
                    self.handle_field_error(raw_error, item.output, planned.details, item_path)
                    result = None
                if result is _SLOW:
                    info = info or self._info(planned, parent_type, path)
                    if is_awaitable(entry):
                        completed.append(self.complete_awaitable_list_item_value(entry, item.output, planned.details,
                                                                                 info, item_path, None))
                        awaitable_indices.append(index)
                    elif self.complete_list_item_value(entry, completed, item.output, planned.details, info, item_path, None):
                        awaitable_indices.append(index)
                else:
                    completed.append(result)
                index += 1
        except Exception:
            self._settle_list(completed, awaitable_indices, iterator)
            raise
        if not awaitable_indices:
            return completed
        return _gather_items(completed, awaitable_indices)

    def _list_entry(self, planned: _Field, parent_type: GraphQLObjectType, path: Path, fields: _Fields, entry: Any,
                    item_path: Path, completed: list[Any]) -> bool:
        """One item of a list of objects, completed on the fast path if it allows (else by graphql-core's
        `complete_list_item_value`) and appended to `completed`: True when it is still to be awaited."""
        item = planned.definition.shape.item  # type: ignore[union-attr]
        object_type, item_type, details = item.object_type, item.output, planned.details  # type: ignore[union-attr]
        is_awaitable = self.is_awaitable
        if entry is not None and entry is not Undefined and not isinstance(entry, Exception) \
                and not _awaitable(is_awaitable, entry):
            _ordinary(entry)
            check = object_type.is_type_of  # type: ignore[union-attr]
            try:
                if check is None:
                    result = self._run(object_type, entry, item_path, fields)  # type: ignore[arg-type]
                else:
                    check_info = None if item.blind_check else self._info(planned, parent_type, path)  # type: ignore[union-attr]
                    result = self._checked(object_type, check(entry, check_info), entry, item_path, details, fields)  # type: ignore[arg-type]
            except Exception as raw_error:  # noqa: BLE001 - as complete_list_item_value does
                self.handle_field_error(raw_error, item_type, details, item_path)
                result = None
            if type(result) is not dict and _awaitable(is_awaitable, result):
                completed.append(self._guarded(result, item_type, details, item_path))
                return True
            completed.append(result)
            return False
        info = self._info(planned, parent_type, path)
        if is_awaitable(entry):
            completed.append(self.complete_awaitable_list_item_value(entry, item_type, details, info, item_path, None))
            return True
        return self.complete_list_item_value(entry, completed, item_type, details, info, item_path, None)

    def _settle_list(self, completed: list[Any], awaitable_indices: list[int] | None, rest: Any) -> None:
        """As graphql-core does when completing a list fails: settle what was started, and what the
        rest of the list holds."""
        pending = [completed[i] for i in awaitable_indices or ()]
        pending.extend(collect_iterator_awaitables(rest, self.is_awaitable))
        if pending:
            self.settle_in_background(pending)

    def _finish(self, planned: _Field, parent_type: GraphQLObjectType, path: Path, info: _Info | None,
                result: Any) -> Any:
        """`execute_field` from just after its resolver call: graphql-core's own completion of the value
        (an exception raised by the resolver is passed as the value: complete_value raises it)."""
        field = planned.field
        assert field is not None
        return_type, details = field.type, planned.details
        try:
            info = info or self._info(planned, parent_type, path)
            if self.is_awaitable(result):
                return self.complete_awaitable_value(return_type, details, info, path, result, None)
            completed = self.complete_value(return_type, details, info, path, result, None)
            if self.is_awaitable(completed):
                return self._guarded(completed, return_type, details, path)
        except Exception as raw_error:  # noqa: BLE001 - graphql-core's handling, as in execute_field
            self.handle_field_error(raw_error, return_type, details, path)
            return None
        return completed

    async def _guarded(self, completed: Awaitable[Any], return_type: GraphQLOutputType, details: list[FieldDetails],
                       path: Path) -> Any:
        try:
            return await completed
        except Exception as raw_error:  # noqa: BLE001 - as execute_field's await_completed
            self.handle_field_error(raw_error, return_type, details, path)
            return None


def _awaitable(is_awaitable: Callable[[Any], bool], value: Any) -> bool:
    """The executor's is_awaitable, asked once per type whose instances can never be awaited
    (not a coroutine or generator, no __await__): most values are of a handful of types."""
    kind = type(value)
    if kind in _SETTLED:
        return False
    if is_awaitable(value):
        return True
    if not (issubclass(kind, CoroutineType | GeneratorType) or hasattr(kind, "__await__")) and _ordinary_lookup(kind) \
            and len(_SETTLED) < _MAX_SETTLED:
        _SETTLED.add(kind)
    return False


def _ordinary_lookup(kind: type) -> bool:
    """Instances of `kind` look attributes up the ordinary way: no Python-level __getattr__ or
    __getattribute__, which could make one instance look awaitable and the next not."""
    for cls in kind.__mro__:
        attributes = vars(cls)
        if "__getattr__" in attributes:
            return False
        lookup = attributes.get("__getattribute__")
        if lookup is not None and not isinstance(lookup, WrapperDescriptorType):
            return False
    return True


def _leaf(shape: _Shape, value: Any, is_awaitable: Callable[[Any], bool]) -> Any:
    """The coerced value of a plain leaf (raising as graphql-core's `complete_leaf_value` does), or
    _SLOW for a null, an error or an awaitable, which graphql-core must judge."""
    kind = type(value)
    if kind is shape.unchanged:
        return value
    names = shape.names
    if names is not None and kind is shape.leaf.wrapped_cls:  # type: ignore[union-attr]
        name = names.get(id(value))
        if name is not None:
            return name
    if value is None or value is Undefined:
        return _SLOW if shape.non_null else None
    if isinstance(value, Exception) or _awaitable(is_awaitable, value):
        return _SLOW
    _ordinary(value)
    return Executor.complete_leaf_value(shape.leaf, value)  # type: ignore[arg-type]


async def _gather_fields(results: dict[str, Any], awaitable_fields: list[str]) -> dict[str, Any]:
    if len(awaitable_fields) == 1:
        name = awaitable_fields[0]
        results[name] = await results[name]
    else:
        awaited = await gather_with_cancel(*(results[name] for name in awaitable_fields))
        results.update(zip(awaitable_fields, awaited, strict=True))
    return results


async def _gather_items(completed: list[Any], awaitable_indices: list[int]) -> list[Any]:
    if len(awaitable_indices) == 1:
        index = awaitable_indices[0]
        completed[index] = await completed[index]
    else:
        awaited = await gather_with_cancel(*(completed[i] for i in awaitable_indices))
        for index, value in zip(awaitable_indices, awaited, strict=True):
            completed[index] = value
    return completed


def _ordinary(value: Any) -> None:
    """Notes the type of a value found completable as it is (after the checks for null, error and
    awaitable), for compiled plans."""
    kind = type(value)
    if kind not in _ORDINARY and kind in _SETTLED and kind not in _NULLS and len(_ORDINARY) < _MAX_SETTLED:
        _ORDINARY.add(kind)


def _inlined(planned: _Field) -> bool:
    """Whether a compiled plan completes this field's objects (or list of objects) straight into its
    subplan: one whose selection is kept across requests (so its plan is known)."""
    definition = planned.definition
    if definition is None or planned.subfields is None:
        return False
    shape = definition.shape
    return shape.kind == OBJECT or (shape.kind == LIST and shape.item.kind == OBJECT)  # type: ignore[union-attr]


# What compiled plans call besides the execution context's own methods.
_HELPERS: Final[dict[str, Any]] = {
    "Path": Path, "new_path": _new_path, "Undefined": Undefined, "SETTLED": _SETTLED, "ORDINARY": _ORDINARY,
    "awaitable": _awaitable, "gather_fields": _gather_fields, "gather_items": _gather_items, "LazyInfo": _LazyInfo, "CAST": TYPE_CAST_ATTRIBUTE,
    "complete_leaf": Executor.complete_leaf_value,
}
