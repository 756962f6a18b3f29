"""The fast path's loop over a selection set (`ExecutionContext._run`), written out as Python
source for one kept plan and compiled: the same steps, in the same order, with the same calls,
but each field's branch chosen once here instead of for every object.

A 50-notice page completes ~250 objects of four plans; interpreting them read the plan's
attributes and dispatched on each field's kind ~500 times a page, and each object went through
four calls (`_execute`, `_object`, `_checked`, `_run`) before its first field. The compiled plan
has its constants as globals of its own namespace and completes an object-valued field, or a
list of objects (resolved by an attribute or an argument-free resolver), straight into the
subplan. `python -m bench.inprocess_read --instructions`: 10.49 million instructions a page
interpreted, 9.11 compiled.

Only what the interpreter would do on its fast path is written out; everything else calls the
very method the interpreter calls at that point (with the value already resolved), so errors,
nulls, awaitables and paths come out as graphql-core makes them. tests/test_execution.py runs
every query three ways (graphql-core, interpreted, compiled) and compares answers and calls.

Names in the source are Python identifiers made here (`f0`, `d0`...); response keys are GraphQL
names (validated by the parser), written with repr() all the same. Nothing from a request's
values reaches the source.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def source_of(fields: Sequence[Any], can_inline: Callable[[Any], bool]) -> tuple[str, dict[str, Any]]:
    """The source of `run(self, source, path)` for a plan, and the constants it refers to by name."""
    constants: dict[str, Any] = {}
    lines = [
        "def run(self, source, path):",
        "    results = {}",
        "    pending = None",
        "    is_awaitable = self.is_awaitable",
        "    try:",
        "        pass",  # a selection can be empty: every field skipped, or only fragments on other types
    ]
    for i, planned in enumerate(fields):
        key = repr(planned.name)
        constants[f"f{i}"] = planned
        definition = planned.definition
        if planned.attribute is not None:
            lines += _leaf_by_attribute(i, key, planned, constants)
        elif definition is None:
            lines += [
                f"        r = self.execute_field(parent_type, source, f{i}.details, Path(path, {key}, type_name), None)",
                "        if r is not Undefined:",
                *_store(key, "r", indent=12),
            ]
        else:
            constants[f"d{i}"] = definition
            lines += _resolved(i, key, planned, can_inline(planned), constants)
    lines += [
        "    except Exception:",
        "        if pending:",
        "            self.settle_in_background([results[k] for k in pending])",
        "        raise",
        "    if pending is None:",
        "        return results",
        "    return gather_fields(results, pending)",
    ]
    return "\n".join(lines) + "\n", constants


def _store(key: str, value: str, indent: int = 8) -> list[str]:
    """A field's result into the response, remembered when it is still to be awaited."""
    pad = " " * indent
    return [
        f"{pad}results[{key}] = {value}",
        f"{pad}if type({value}) not in SETTLED and awaitable(is_awaitable, {value}):",
        f"{pad}    if pending is None:",
        f"{pad}        pending = []",
        f"{pad}    pending.append({key})",
    ]


def _leaf_by_attribute(i: int, key: str, planned: Any, constants: dict[str, Any]) -> list[str]:
    """`_run`'s inline leaf: the attribute read as strawberry reads it, then a type check or a table."""
    constants[f"s{i}"] = planned.strawberry
    lines = [
        "        try:",
        f"            value = s{i}.default_resolver(source, {planned.attribute!r})",
        "        except Exception as raw_error:",
        f"            r = self._finish(f{i}, parent_type, Path(path, {key}, type_name), None, raw_error)",
        *_store(key, "r", indent=12),
        "        else:",
        "            kind = type(value)",
    ]
    test = "if"
    if planned.unchanged is not None:
        constants[f"u{i}"] = planned.unchanged
        lines += [f"            if kind is u{i}:", f"                results[{key}] = value"]
        test = "elif"
    if planned.enum is not None:
        constants[f"e{i}"], constants[f"n{i}"] = planned.enum, planned.names
        lines += [f"            {test} kind is e{i} and (label := n{i}.get(id(value))) is not None:",
                  f"                results[{key}] = label"]
        test = "elif"
    # Any other value of a type seen to pass the checks for null, error and awaitable: serialized,
    # as graphql-core's complete_leaf_value does (a DateTime, an Int).
    constants[f"l{i}"] = planned.shape.leaf
    lines += [
        f"            {test} kind in ORDINARY:",
        "                try:",
        f"                    r = complete_leaf(l{i}, value)",
        "                except Exception as raw_error:",
        f"                    self.handle_field_error(raw_error, f{i}.field.type, f{i}.details, Path(path, {key}, type_name))",
        "                    r = None",
        *_store(key, "r", indent=16),
        "            else:",
        f"                r = self._leaf_rest(f{i}, parent_type, path, value)",
        *_store(key, "r", indent=16),
    ]
    return lines


def _resolved(i: int, key: str, planned: Any, inline: bool, constants: dict[str, Any]) -> list[str]:
    """`_execute` for a planned field: resolve as it does, then complete an object value straight
    into its compiled subplan, or anything else through `_completing` (the rest of `_execute`)."""
    definition = planned.definition
    lines = [f"        p = new_path(Path, (path, {key}, type_name))"]
    if definition.attribute is not None:
        info = "None"
        resolve = f"value = d{i}.strawberry.default_resolver(source, {definition.attribute!r})"
    elif definition.method is not None:  # `def field(self, info)`, given an info built on first use
        info = "None"
        resolve = f"value = d{i}.method(source, LazyInfo(self, f{i}, parent_type, p, d{i}.strawberry))"
    elif definition.lazy is not None:
        info = "None"
        resolve = f"value = d{i}.lazy(source, self, f{i}, parent_type, p)"
    else:
        info = "info"
        lines.append("        info = None")
        given = f", **self._arguments(f{i})" if definition.arguments else ""
        resolve = f"info = self._info(f{i}, parent_type, p); value = d{i}.resolve(source, info{given})"
    lines += [
        "        try:",
        f"            {resolve}",
        "        except Exception as raw_error:",
        f"            r = self._finish(f{i}, parent_type, p, {info}, raw_error)",
        "        else:",
    ]
    rest = f"self._completing(f{i}, d{i}, parent_type, p, {info}, value)"
    if not inline:
        return lines + [f"            r = {rest}", *_store(key, "r")]
    shape = definition.shape
    target = shape.item if shape.item is not None else shape  # a list's items, or the object
    constants[f"t{i}"], constants[f"sub{i}"] = target.object_type, planned.subfields
    constants[f"check{i}"], constants[f"x{i}"] = target.object_type.is_type_of, target.exact
    if shape.item is not None:
        return lines + _list_of_objects(i, shape, info, rest, constants) + _store(key, "r")
    lines += [
        "            if type(value) in ORDINARY:",
        "                try:",
        f"                    run = sub{i}.run",
        *_object_into(i, shape, "value", "p", "r", info, indent=20),
        "                except Exception as raw_error:",
        f"                    self.handle_field_error(raw_error, f{i}.field.type, f{i}.details, p)",
        "                    r = None",
        "                else:",
        "                    if type(r) is not dict and awaitable(is_awaitable, r):",
        f"                        r = self._guarded(r, f{i}.field.type, f{i}.details, p)",
        "            else:",
        f"                r = {rest}",
        *_store(key, "r"),
    ]
    return lines


def _object_into(i: int, shape: Any, value: str, path: str, result: str, info: str, indent: int) -> list[str]:
    """`_checked` (or `_run`) for an object of the field's type: its is_type_of asked as `_object` asks
    it, then the subplan run (compiled or not: `run` holds the compiled one, or None). strawberry's
    own is_type_of is not asked about an instance of the type's own class that is not cast to
    another (`_Shape.exact`): it says yes to those without looking further."""
    pad = " " * indent
    object_type = shape.object_type
    if object_type.is_type_of is None:
        return [f"{pad}{result} = run(self, {value}, {path}) if run is not None else self._run(t{i}, {value}, {path}, sub{i})"]
    asked = "None" if shape.blind_check else f"{info} or self._info(f{i}, parent_type, p)"
    checked = [
        f"{pad}ok = check{i}({value}, {asked})",
        f"{pad}if ok is True and run is not None:",
        f"{pad}    {result} = run(self, {value}, {path})",
        f"{pad}else:",
        f"{pad}    {result} = self._checked(t{i}, ok, {value}, {path}, f{i}.details, sub{i})",
    ]
    if shape.exact is None:
        return checked
    return [
        f"{pad}if type({value}) is x{i} and getattr({value}, CAST, None) is None and run is not None:",
        f"{pad}    {result} = run(self, {value}, {path})",
        f"{pad}else:",
        *["    " + line for line in checked],
    ]


def _list_of_objects(i: int, shape: Any, info: str, rest: str, constants: dict[str, Any]) -> list[str]:
    """`_list` for a list (or tuple) of objects: each item of an ordinary type straight into the
    subplan, any other through `_list_entry` (what `_list` does with it); anything but a list or
    tuple through `_completing`."""
    item = shape.item
    constants[f"item{i}"] = item.output
    return [
        "            if type(value) is list or type(value) is tuple:",
        "                completed = []",
        "                awaiting = None",
        f"                run = sub{i}.run",
        "                iterator = iter(value)",
        "                index = 0",
        "                try:",
        "                    try:",
        "                        for entry in iterator:",
        "                            item_path = new_path(Path, (p, index, None))",
        "                            if type(entry) in ORDINARY:",
        "                                try:",
        *_object_into(i, item, "entry", "item_path", "done", info, indent=36),
        "                                except Exception as raw_error:",
        f"                                    self.handle_field_error(raw_error, item{i}, f{i}.details, item_path)",
        "                                    done = None",
        "                                if type(done) is not dict and awaitable(is_awaitable, done):",
        f"                                    completed.append(self._guarded(done, item{i}, f{i}.details, item_path))",
        "                                    if awaiting is None:",
        "                                        awaiting = []",
        "                                    awaiting.append(index)",
        "                                else:",
        "                                    completed.append(done)",
        f"                            elif self._list_entry(f{i}, parent_type, p, sub{i}, entry, item_path, completed):",
        "                                if awaiting is None:",
        "                                    awaiting = []",
        "                                awaiting.append(index)",
        "                            index += 1",
        "                    except Exception:",
        "                        self._settle_list(completed, awaiting, iterator)",
        "                        raise",
        "                except Exception as raw_error:",
        f"                    self.handle_field_error(raw_error, f{i}.field.type, f{i}.details, p)",
        "                    r = None",
        "                else:",
        "                    r = completed if awaiting is None else self._guarded(",
        f"                        gather_items(completed, awaiting), f{i}.field.type, f{i}.details, p)",
        "            else:",
        f"                r = {rest}",
    ]


def compile_plan(parent_type: Any, fields: Sequence[Any], can_inline: Callable[[Any], bool],
                 helpers: dict[str, Any]) -> Callable[..., Any]:
    """The compiled `run(self, source, path)` of a plan on `parent_type`."""
    source, constants = source_of(fields, can_inline)
    namespace = {**helpers, **constants, "parent_type": parent_type, "type_name": parent_type.name}
    exec(compile(source, f"<plan of {parent_type.name}>", "exec"), namespace)  # noqa: S102 - our own source, see above
    # Taken out of its own globals: no cycle, so it goes (with the plan) as soon as its query does.
    return namespace.pop("run")  # type: ignore[no-any-return]
