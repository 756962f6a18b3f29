"""Building input objects from GraphQL values with a plan made once per input type.

strawberry converts every input value field by field, resolving each field's type
annotation again for every value: for `reportNotices` with 1000 inputs that was
~52,000 conversion calls and ~120 ms of a 750 ms call. graphql-core has already
coerced and validated the value (enums are members, scalars parsed, defaults filled),
so what is left is constructing the classes. `fast_input` gives an input type a
`from_input` hook (strawberry's hook for types that build their own value) that does
just that, from a plan built on first use. Types it does not know how to plan (a
Maybe, a lazy or generic type) are converted by strawberry as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING
from typing import Any, TypeVar

from strawberry.relay.types import GlobalID
from strawberry.scalars import is_scalar
from strawberry.schema.config import StrawberryConfig
from strawberry.types.arguments import InputContext, StrawberryArgument
from strawberry.types.base import StrawberryList, StrawberryMaybe, StrawberryOptional, has_object_definition
from strawberry.types.enum import StrawberryEnumDefinition, has_enum_definition

T = TypeVar("T")
Convert = Callable[[Any, InputContext, str], Any]


def fast_input(cls: type[T]) -> type[T]:
    """Class decorator (above @strawberry.input): build this input type from a plan made once."""
    plan: list[tuple[str, str, Convert]] | None = None
    definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    # As strawberry does: a nullable field without a default that the client left out is None.
    absent = {f.python_name: None for f in definition.fields if f.default_value is MISSING and f.default_factory is MISSING}

    def build(target: type, value: Mapping[str, Any], context: InputContext) -> Any:
        nonlocal plan
        if plan is None:
            plan = _plan(target, context)
        kwargs = dict(absent)
        for name, python, convert in plan:
            if name in value:
                kwargs[python] = convert(value[name], context, name)
        return target(**kwargs)

    build.planned = True  # type: ignore[attr-defined]
    definition.from_input = build
    return cls


def argument_plan(arguments: list[StrawberryArgument], config: StrawberryConfig,
                  scalar_registry: Mapping[object, Any]) -> list[tuple[str, str, Convert | None]] | None:
    """A field's arguments as `fast_input` plans an input type's fields: (GraphQL name, Python name,
    conversion, None when the value is passed as it is) each, for graphql-core's coerced values.
    None when one of them is converted by strawberry after all (a Maybe, a lazy or generic type, a
    GlobalID, a list of inputs), so that the field keeps strawberry's own conversion throughout.
    An input object's conversion is called with the InputContext strawberry would give it
    (`argument_context`)."""
    context = InputContext(info=None, config=config, scalar_registry=scalar_registry, path=())
    plan: list[tuple[str, str, Convert | None]] = []
    for argument in arguments:
        convert = _argument_converter(argument.type, context)
        if convert is None or argument.python_name is None:
            return None
        plan.append((config.name_converter.from_argument(argument), argument.python_name,
                     None if convert is _identity else convert))
    return plan


def argument_context(info: Any, config: StrawberryConfig, scalar_registry: Mapping[object, Any], name: str) -> InputContext:
    """What strawberry hands an input built from the argument `name` (its `convert_argument`)."""
    return InputContext(info=info, config=config, scalar_registry=scalar_registry, path=(name,))


def _argument_converter(type_: Any, context: InputContext) -> Convert | None:
    if isinstance(type_, StrawberryMaybe):
        return None
    if isinstance(type_, StrawberryOptional):
        inner = _argument_converter(type_.of_type, context)
        if inner is None or inner is _identity:
            return inner
        return lambda value, ctx, key: None if value is None else inner(value, ctx, key)
    convert = _converter(type_, context)
    if convert is _identity:
        return _identity
    if isinstance(type_, StrawberryList):
        # strawberry copies a list of leaves (graphql-core hands every request the same default);
        # anything else in a list is converted with paths that name the index, which this does not
        return convert if _converter(type_.of_type, context) is _identity else None
    if has_object_definition(type_) and getattr(type_.__strawberry_definition__.from_input, "planned", False):
        return convert
    return None


def _plan(cls: type, context: InputContext) -> list[tuple[str, str, Convert]]:
    definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    return [
        (
            context.config.name_converter.from_field(field),
            field.python_name,
            _converter(field.resolve_type(type_definition=definition), context),
        )
        for field in definition.fields
    ]


def _identity(value: Any, context: InputContext, key: str) -> Any:
    return value


def _converter(type_: Any, context: InputContext) -> Convert:
    """How to turn graphql-core's coerced value of `type_` into the Python value strawberry would give."""
    if isinstance(type_, StrawberryMaybe):
        return _strawberry(type_)
    if isinstance(type_, StrawberryOptional):
        inner = _converter(type_.of_type, context)
        if inner is _identity:
            return _identity
        return lambda value, ctx, key: None if value is None else inner(value, ctx, key)
    if isinstance(type_, StrawberryList):
        item = _converter(type_.of_type, context)
        if item is _identity:
            return lambda value, ctx, key: list(value)
        return lambda value, ctx, key: [item(v, ctx, key) for v in value]
    if type_ is not GlobalID and (
        isinstance(type_, StrawberryEnumDefinition) or has_enum_definition(type_) or is_scalar(type_, context.scalar_registry)
    ):
        return _identity  # graphql-core already gives enum members and parsed scalars (as strawberry's leaves)
    if has_object_definition(type_) and getattr(type_.__strawberry_definition__.from_input, "planned", False):
        hook = type_.__strawberry_definition__.from_input
        return lambda value, ctx, key: hook(type_, value, ctx)  # type: ignore[misc]
    return _strawberry(type_)


def _strawberry(type_: Any) -> Convert:
    return lambda value, ctx, key: ctx.convert(value, type_, key)
