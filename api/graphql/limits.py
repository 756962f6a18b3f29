"""Query depth and cost, measured once the document is valid and refused with QUERY_TOO_COMPLEX.

One pass over the document computes both. Cost is the number of fields, each
list multiplied by how many items it may return: the `first` argument (its
value, its variable, or its default) or a fixed fan-out for plain lists.
Fragments are measured once each, so a document of nested fragment spreads
cannot make the measuring itself expensive. Introspection fields are free, so
GraphiQL keeps working under tight limits.

strawberry's QueryDepthLimiter counts depth only and reports no contract
code; this rule does both in one walk and reports the code clients expect.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
)
from strawberry.types.execution import ExecutionContext as StrawberryExecutionContext

from .identity import WhileAlive

MAX_PAGE = 1000
LIST_FANOUT = 10


@dataclass(frozen=True)
class Measure:
    depth: int
    cost: int


def measure(
    schema: GraphQLSchema, document: DocumentNode, operation_name: str | None, variables: Mapping[str, Any] | None
) -> Measure:
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name is not None and o.name.value == operation_name]
    if len(operations) != 1:
        return Measure(0, 0)  # validation reports the ambiguity
    operation = operations[0]
    root = schema.get_root_type(operation.operation)
    # What a `first: $n` will be: the value given (an integral float is an Int to GraphQL: 1000.0
    # is 1000), else the operation's default for $n (`query($n: Int = 1000)`).
    values = {d.variable.name.value: int(d.default_value.value) for d in operation.variable_definitions or ()
              if isinstance(d.default_value, IntValueNode)}
    for name, given in (variables or {}).items():
        if isinstance(given, float) and given.is_integer():
            given = int(given)
        if isinstance(given, int) and not isinstance(given, bool):
            values[name] = given
        elif given is None:
            values.pop(name, None)  # null: the field's own default
    walker = _Walker(schema, fragments, values)
    return walker.walk(operation.selection_set, root, frozenset())


class _Walker:
    def __init__(
        self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode], variables: Mapping[str, int]
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.memo: dict[str, Measure] = {}

    def walk(self, selection_set: SelectionSetNode, parent: GraphQLNamedType | None, visiting: frozenset[str]) -> Measure:
        depth = cost = 0
        typenames = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                name = selection.name.value
                if name == "__typename":  # one a selection is free (Apollo's clients add it to each); more
                    typenames += 1  # cost 1 each: 16,000 aliases of it cost nothing and took a second
                    cost += 1 if typenames > 1 else 0
                    continue
                if name.startswith("__"):  # introspection is free: GraphiQL works under tight limits
                    continue
                fields = getattr(parent, "fields", None) or {}
                definition = fields.get(name)
                child_type = get_named_type(definition.type) if definition is not None else None
                inner = (
                    self.walk(selection.selection_set, child_type, visiting)
                    if selection.selection_set
                    else Measure(0, 0)
                )
                depth = max(depth, inner.depth + 1)
                cost += 1 + self._multiplier(selection, definition) * inner.cost
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self.schema.get_type(condition.name.value) if condition else parent
                inner = self.walk(selection.selection_set, target, visiting)
                depth, cost = max(depth, inner.depth), cost + inner.cost
            elif isinstance(selection, FragmentSpreadNode):
                inner = self._fragment(selection.name.value, visiting)
                depth, cost = max(depth, inner.depth), cost + inner.cost
        return Measure(depth, cost)

    def _fragment(self, name: str, visiting: frozenset[str]) -> Measure:
        if name in self.memo:
            return self.memo[name]
        fragment = self.fragments.get(name)
        if fragment is None or name in visiting:
            return Measure(0, 0)  # unknown or cyclic: validation reports it
        target = self.schema.get_type(fragment.type_condition.name.value)
        result = self.walk(fragment.selection_set, target, visiting | {name})
        self.memo[name] = result
        return result

    def _multiplier(self, node: FieldNode, definition: Any) -> int:
        first = self._first(node, definition)
        if first is not None:
            return max(1, min(first, MAX_PAGE))
        if definition is None or node.name.value == "edges":
            return 1  # a connection's edges are already counted by its `first`
        field_type = definition.type.of_type if isinstance(definition.type, GraphQLNonNull) else definition.type
        return LIST_FANOUT if isinstance(field_type, GraphQLList) else 1

    def _first(self, node: FieldNode, definition: Any) -> int | None:
        for argument in node.arguments or ():
            if argument.name.value != "first":
                continue
            value = argument.value
            if isinstance(value, IntValueNode):
                return int(value.value)
            if isinstance(value, VariableNode) and value.name.value in self.variables:
                return self.variables[value.name.value]
            break
        if definition is not None and "first" in definition.args:
            default = definition.args["first"].default_value
            return default if isinstance(default, int) else MAX_PAGE
        return None


class Measures:
    """Measures remembered per document, by operation and the numbers (and nulls) among the variables,
    which a `first` may read (the only variables a measure depends on). Parsing hands back the same
    document object for the same query text, so a client repeating a query is measured once. Kept with
    the document and no longer (identity.WhileAlive): they once kept a thousand documents alive of
    their own, refused ones included, beside the parser cache's."""

    PER_DOCUMENT = 64  # variants kept for one document: a client may vary `first` with every request

    def __init__(self) -> None:
        self._by_document: WhileAlive[dict[tuple[str | None, tuple[tuple[str, Any], ...]], Measure]] = WhileAlive()

    def of(
        self, schema: GraphQLSchema, document: DocumentNode, operation_name: str | None, variables: Mapping[str, Any] | None
    ) -> Measure:
        numbers = tuple(sorted((k, v) for k, v in (variables or {}).items()
                               if (isinstance(v, int | float) and not isinstance(v, bool)) or v is None))  # True == 1
        kept = self._by_document.get(document)
        if kept is None:
            kept = self._by_document.put(document, {})
        found = kept.get((operation_name, numbers))
        if found is None:
            if len(kept) >= self.PER_DOCUMENT:
                kept.clear()
            found = kept[(operation_name, numbers)] = measure(schema, document, operation_name, variables)
        return found


class QueryLimits:
    """The measure's limits, checked where the parsed document and the variables are both known
    (RequestValidation, api/graphql/validation.py)."""

    def __init__(self, *, max_depth: int, max_cost: int, measures: Measures | None = None) -> None:
        self.max_depth = max_depth
        self.max_cost = max_cost
        self.measures = measures or Measures()

    def errors(self, context: StrawberryExecutionContext, document: DocumentNode) -> list[GraphQLError]:
        """QUERY_TOO_COMPLEX, or none."""
        found = self.measures.of(context.schema._schema, document, context.operation_name, context.variables)  # noqa: SLF001
        if found.depth > self.max_depth:
            problem = f"the query is {found.depth} levels deep; at most {self.max_depth} are allowed"
        elif found.cost > self.max_cost:
            problem = f"the query may cost {found.cost} field resolutions; at most {self.max_cost} are allowed"
        else:
            return []
        return [GraphQLError(problem, extensions={"code": "QUERY_TOO_COMPLEX"})]
