"""A faster path through graphql-core's executor for plain leaf fields.

A page of 50 notices is ~500 fields, ~350 of them plain leaves (id, reference,
status, at...) read off the object with strawberry's default resolver. For each,
graphql-core builds a resolve-info object, checks twice for awaitables and walks
`complete_value`; that walk was the largest item in the read profile (~20 µs a
field). Here such a field is read and coerced directly. Anything unusual (a null,
an error, an awaitable, middleware, arguments, a non-leaf type) takes graphql-core's
own path, so errors, null propagation and locations stay exactly as graphql-core
makes them: the fast path only ever returns what the slow path would have.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLEnumType, GraphQLField, GraphQLNonNull, GraphQLObjectType, GraphQLScalarType, Undefined
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

# The plan of a field definition (its leaf type, or None when it is not a plain leaf) is kept
# on the definition itself: it lives exactly as long as its schema (an id() key could be reused
# by a field of a later schema, and tests build many).
_Leaf = GraphQLScalarType | GraphQLEnumType
_PLAN = "_takedown_leaf_plan"
_UNPLANNED = object()


def _plain_leaf(field: GraphQLField) -> _Leaf | None:
    """The field's leaf type if strawberry resolves it by plain attribute access (no resolver, no
    field extensions or permissions: its `_get_basic_result`) and it takes no arguments."""
    definition = field.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if field.args or not isinstance(definition, StrawberryField) or not definition.is_basic_field:
        return None
    if getattr(field.resolve, "__name__", "") != "_get_basic_result":  # strawberry's wrapper for basic fields
        return None
    named = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
    return named if isinstance(named, GraphQLScalarType | GraphQLEnumType) else None


def _plan(field: GraphQLField) -> _Leaf | None:
    plan = field.__dict__.get(_PLAN, _UNPLANNED)
    if plan is _UNPLANNED:
        plan = field.__dict__[_PLAN] = _plain_leaf(field)
    return plan  # type: ignore[no-any-return]


class ExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Path,
        position_context: Any,
    ) -> Any:
        node = field_details_list[0].node
        field = self.schema.get_field(parent_type, node.name.value)
        middleware = self.middleware_manager
        if field is not None and not node.arguments and (middleware is None or not middleware.middlewares):
            leaf = _plan(field)
            if leaf is not None:
                try:
                    value = field.resolve(source, None)  # type: ignore[misc]
                    if value is not None and value is not Undefined and not isinstance(value, Exception) \
                            and not self.is_awaitable(value):
                        coerced = leaf.coerce_output_value(value)
                        if coerced is not None and coerced is not Undefined:
                            return coerced
                except Exception:  # noqa: BLE001 - graphql-core's path below raises it properly located
                    pass
        return super().execute_field(parent_type, source, field_details_list, path, position_context)
