"""The sandbox prompt templates render in: Jinja's immutable sandbox with a budget for every render.

Prompt templates come with shared scenario files, so a template is hostile until it has rendered.
Jinja's sandbox keeps it away from Python internals; it does not stop a template from building a
gigabyte string (``'{:>999999999}'.format(1)``, ``"x"|center(10**9)``, ``~`` in a loop), looping
for hours (nested loops over ``range``) or recursing without end (a macro calling itself, a
template including itself). Here every render has a budget, enforced while it runs:

- each value one operation builds is at most :data:`MAX_TEMPLATE_STRING` characters, checked
  before anything is allocated where the size is known up front (widths, counts, repetitions,
  format specs, joins) and on the result otherwise; a list or dict counts the characters it would
  print as, so ``[big] * n`` is as long as ``big * n``;
- everything one render builds adds up to at most :data:`MAX_TEMPLATE_BUILT_CHARS` characters
  (its memory), and the prompt it produces to at most :data:`MAX_PROMPT_CHARS`;
- it runs at most :data:`MAX_TEMPLATE_OPS` operations (loop iterations, calls, filters, tests,
  operators, attribute and item look-ups, outputs) and for at most :data:`MAX_RENDER_SECONDS` of
  wall time;
- macro calls, recursive loops, includes, imports and extends nest at most
  :data:`MAX_TEMPLATE_DEPTH` deep;
- numbers have at most :data:`MAX_TEMPLATE_INT_BITS` bits, ``tojson`` indents at most
  :data:`MAX_JSON_INDENT`, a quadratic filter (``striptags``, ``sum`` of lists) moves at most
  :data:`MAX_FILTER_WORK` characters.

The checks sit where a template's work happens: the sandbox's hooks for calls, operators and
look-ups (also those a filter makes for each item: ``groupby``, ``sort(attribute=...)``), every
filter and test (wrapped), ``str.format`` (a bounded formatter), the output of every ``{{ }}``
(``finalize``), the root of every template (depth) and a pass over each compiled template's syntax
tree that adds a check to what Jinja would run unchecked (loop iterations, ``~``, slices,
comparisons, list and dict literals, literal text: counted once per template root, loop
iteration and macro call, every branch). A template over budget stops with
:class:`TemplateBudgetError`, one line saying which limit. Unseeded randomness (the ``random``
filter, ``lipsum``) is refused: a prompt must be the same for the same seed.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import re
import time
import types
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, MutableMapping
from contextvars import ContextVar
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.runtime import markup_join, str_join
from jinja2.sandbox import (
    MAX_RANGE,
    ImmutableSandboxedEnvironment,
    SandboxedFormatter,
    SecurityError,
)
from jinja2.utils import Namespace, _PassArg, pass_eval_context
from jinja2.visitor import NodeTransformer
from markupsafe import EscapeFormatter, Markup

#: longest prompt one render may produce (characters)
MAX_PROMPT_CHARS = 200_000
#: longest string, list or other value one operation of a template may build (characters, counted
#: as the value would print)
MAX_TEMPLATE_STRING = 1_000_000
#: characters everything one render builds may add up to (bounds the memory a render takes)
MAX_TEMPLATE_BUILT_CHARS = 10_000_000
#: operations one render may run: loop iterations, calls, filters, tests, operators, attribute and
#: item look-ups, outputs
MAX_TEMPLATE_OPS = 1_000_000
#: wall time one render may take (seconds; compiling an included template is not counted)
MAX_RENDER_SECONDS = 1.0
#: operations between two readings of the render's clock (each can take at most what one
#: operation of a bounded size takes: a render stops within a few milliseconds of its time)
CLOCK_EVERY = 32
#: deepest nesting of macro calls, recursive loops, includes, imports and extends
MAX_TEMPLATE_DEPTH = 50
#: largest number a template may compute (bits: about 1,233 decimal digits)
MAX_TEMPLATE_INT_BITS = 4096
#: largest exponent of ``**``
MAX_TEMPLATE_EXPONENT = 64
#: widest ``tojson`` indent
MAX_JSON_INDENT = 16
#: characters a quadratic filter (``striptags``, ``sum`` of lists) may move in one call
MAX_FILTER_WORK = 20_000_000


class TemplateBudgetError(SecurityError):
    """A template went over its render budget (too long a value, too many operations, too slow,
    nested too deep) or used something a prompt may not (unseeded randomness)."""


class _RenderBudget:
    """What one render has used so far; the sandbox's hooks charge it and stop the render."""

    __slots__ = ("ops", "built", "depth", "deadline", "failure", "next_check")

    def __init__(self) -> None:
        self.ops = 0
        self.built = 0
        self.depth = 0
        self.deadline = time.monotonic() + MAX_RENDER_SECONDS
        self.failure: str | None = None
        #: the operation at which the clock and the operation count are checked next
        self.next_check = 0

    def fail(self, reason: str) -> TemplateBudgetError:
        """The error to raise for ``reason``, remembered: a render that caught it somewhere (no
        template can, but Python code a template calls might) still fails at its next step."""
        self.failure = reason
        return TemplateBudgetError(reason)

    def step(self, chars: int = 0) -> None:
        """Count one operation that built ``chars`` characters, and check the size budget and an
        earlier failure at once, the operation count and the clock every :data:`CLOCK_EVERY`
        operations and at the operation limit (this runs for every operation of every render:
        reading the clock each time was a fifth of its cost)."""
        self.ops += 1
        if chars:
            self.built += chars
            if self.built > MAX_TEMPLATE_BUILT_CHARS:
                raise self.fail(self._over())
        if self.ops >= self.next_check or self.failure is not None:
            self._check()

    def _check(self) -> None:
        if (
            self.ops > MAX_TEMPLATE_OPS
            or self.built > MAX_TEMPLATE_BUILT_CHARS
            or self.failure is not None
            or time.monotonic() > self.deadline
        ):
            raise self.fail(self._over())
        self.next_check = min(self.ops + CLOCK_EVERY, MAX_TEMPLATE_OPS + 1)

    def charge(self, chars: int) -> None:
        """Count ``chars`` more characters built by the current operation."""
        self.built += chars
        if self.built > MAX_TEMPLATE_BUILT_CHARS:
            raise self.fail(self._over())

    def _over(self) -> str:
        if self.failure is not None:
            return self.failure
        if self.ops > MAX_TEMPLATE_OPS:
            return f"ran more than {MAX_TEMPLATE_OPS:,} operations (loop iterations, calls, filters)"
        if self.built > MAX_TEMPLATE_BUILT_CHARS:
            return f"built more than {MAX_TEMPLATE_BUILT_CHARS:,} characters in all"
        return f"took longer than {MAX_RENDER_SECONDS:g} s"

    def enter(self) -> None:
        """One level deeper (a call, a recursive loop, an include); :meth:`leave` undoes it."""
        self.depth += 1
        if self.depth > MAX_TEMPLATE_DEPTH:
            raise self.fail(f"nested macros, calls or includes deeper than {MAX_TEMPLATE_DEPTH}")

    def leave(self) -> None:
        self.depth -= 1


#: the budget of the render in progress in this thread or task (set by a template's root)
_ACTIVE: ContextVar[_RenderBudget | None] = ContextVar("mesa_llm_template_budget", default=None)


def _budget() -> _RenderBudget:
    """The budget of the render in progress, or a fresh one (a hook called outside a render)."""
    return _ACTIVE.get() or _RenderBudget()


def start_render() -> tuple[_RenderBudget, Any]:
    """Start a render's budget (its clock starts now); ``end_render(token)`` ends it."""
    budget = _RenderBudget()
    return budget, _ACTIVE.set(budget)


def end_render(token: Any) -> None:
    """End the budget :func:`start_render` started."""
    # closed from another context (a generator dropped elsewhere): nothing to undo there
    with contextlib.suppress(ValueError):
        _ACTIVE.reset(token)


def _too_long(what: str, size: int, limit: int = MAX_TEMPLATE_STRING) -> TemplateBudgetError:
    return _budget().fail(f"built too long a value ({what}: {_count(size)} characters, at most {limit:,})")


def _count(size: int) -> str:
    return f"{size:,}" if size < 10**15 else f"about 10**{len(str(size)) - 1}"


# ---------------------------------------------------------------------------- sizes

#: containers :func:`weight` walks item by item (mappings walk keys and values)
_SEQUENCES: tuple[type[Collection[Any]], ...] = (
    list, tuple, set, frozenset, type({}.keys()), type({}.values()), type({}.items())
)


def weight(value: Any, limit: int = MAX_TEMPLATE_STRING, indent: int = 0) -> int:
    """About how many characters ``value`` prints as (a container counts every item it refers
    to, each time; with ``indent``, every item on a line indented by its depth, as ``tojson``
    writes it), stopping early once past ``limit``: what ``str(value)``, ``~``, ``join`` or
    ``tojson`` would build from it, known before building it."""
    kind = type(value)
    if kind is str or kind is bytes or kind is Markup:
        return len(value)
    if kind is int:
        return _int_chars(value)
    if kind is float or kind is bool or value is None:
        return 24
    total = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack and total <= limit:
        item, depth = stack.pop()
        if indent:
            total += indent * depth + 1
        if isinstance(item, str | bytes | bytearray):
            total += len(item) + 4  # quotes and a separator
        elif isinstance(item, int):
            total += _int_chars(item)  # its +2 stands for the separator
        elif isinstance(item, float | bool) or item is None:
            total += 26
        elif isinstance(item, Mapping):
            total += 2 + 2 * len(item)
            stack.extend((key, depth + 1) for key in item)
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, _SEQUENCES):
            total += 2 + 2 * len(item)
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, Namespace):
            total += 16
            stack.append((object.__getattribute__(item, "_Namespace__attrs"), depth))
        else:  # ranges, macros, loop contexts, cyclers, undefined: a short repr
            total += 64
    return total


def _int_chars(number: int) -> int:
    """Digits of ``number`` (from its bits: 77/256 is just above log10(2)), sign and one more."""
    return (number.bit_length() * 77 >> 8) + 2


def _check_weight(value: Any, what: str) -> int:
    size = weight(value)
    if size > MAX_TEMPLATE_STRING:
        raise _too_long(what, size)
    return size


def built(value: Any, what: str = "a value") -> Any:
    """``value``, once checked and charged as something a template built; an iterator is
    wrapped so every item it yields counts as an operation."""
    budget = _budget()
    if type(value) is str:  # the common case, first
        if len(value) > MAX_TEMPLATE_STRING:
            raise _too_long(what, len(value))
        budget.charge(len(value))
        return value
    if isinstance(value, Iterator):
        return _ticking(value, budget)
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_TEMPLATE_INT_BITS:
        raise budget.fail(f"built too large a number (more than {MAX_TEMPLATE_INT_BITS} bits)")
    budget.charge(_check_weight(value, what))
    return value


def _ticking(items: Iterator[Any], budget: _RenderBudget) -> Iterator[Any]:
    for item in items:
        budget.step()
        yield item


def _materialize(items: Iterable[Any], what: str) -> list[Any]:
    """``items`` as a list, every item counted as an operation (a generator's length is not
    known before it runs)."""
    if isinstance(items, list | tuple | str):
        return list(items)
    budget = _budget()
    out = []
    size = 0
    for item in items:
        budget.step()
        out.append(item)
        size += weight(item) + 2
        if size > MAX_TEMPLATE_STRING:
            raise _too_long(what, size)
    return out


def _digits(number: Any) -> int:
    """Characters ``number`` prints as with any format (a bound)."""
    if isinstance(number, int):
        return number.bit_length() // 3 + 4
    return 330  # a float: at most 309 digits before the point, plus sign and exponent


# ---------------------------------------------------------------------------- formatting


def _spec_numbers(spec: str) -> list[int]:
    """Width and precision of a ``format()`` spec (every run of digits but a fill character)."""
    if len(spec) >= 2 and spec[1] in "<>=^":
        spec = spec[2:]
    return [_number(run) for run in re.findall(r"\d+", spec)]


def _number(digits: str) -> int:
    """``int(digits)`` (0 for none; a run too long for Python's int parsing counts as 10**4000)."""
    if not digits:
        return 0
    return int(digits) if len(digits) <= 4000 else 10**4000


def _check_spec(spec: str) -> None:
    for number in _spec_numbers(spec):
        if number > MAX_TEMPLATE_STRING:
            raise _too_long("a format width or precision", number)


def printf_size(fmt: str, args: Any) -> int:
    """An upper bound of ``len(fmt % args)``, found by parsing ``fmt`` as Python does (widths and
    precisions, ``*`` taking them from ``args``, ``%(key)s`` taking values from a mapping);
    TemplateBudgetError for a width or precision past :data:`MAX_TEMPLATE_STRING`."""
    values = list(args) if isinstance(args, tuple) else [args]
    mapping = args if isinstance(args, Mapping) else None
    size = len(fmt)
    index = 0
    pos = fmt.find("%")
    end = len(fmt)

    def number_at(at: int) -> tuple[int, int]:
        """The number written at ``at`` (a ``*`` takes the next argument), and where it ends."""
        nonlocal index
        if at < end and fmt[at] == "*":
            value = values[index] if index < len(values) else 0
            index += 1
            return (abs(value) if isinstance(value, int) else 0), at + 1
        stop = at
        while stop < end and fmt[stop].isdigit():
            stop += 1
        return _number(fmt[at:stop]), stop

    while pos != -1 and pos < end - 1:
        at = pos + 1
        key = None
        if fmt[at] == "(":
            depth, stop = 1, at + 1
            while stop < end and depth:
                depth += {"(": 1, ")": -1}.get(fmt[stop], 0)
                stop += 1
            key, at = fmt[at + 1 : stop - 1], stop
        while at < end and fmt[at] in "-+ #0":
            at += 1
        width, at = number_at(at)
        precision = -1
        if at < end and fmt[at] == ".":
            precision, at = number_at(at + 1)
        while at < end and fmt[at] in "hlL":
            at += 1
        conversion = fmt[at] if at < end else "%"
        size -= at + 1 - pos  # the spec is replaced by what it formats
        if max(width, precision) > MAX_TEMPLATE_STRING:
            raise _too_long("a format width or precision", max(width, precision))
        if conversion == "%":
            size += 1
        else:
            if key is not None:
                value = mapping.get(key) if mapping is not None else None
            else:
                value = values[index] if index < len(values) else None
                index += 1
            if conversion in "sra":  # a repr escapes (at most 4 characters for one) and quotes
                base = weight(value) if conversion == "s" else weight(value) * 4 + 2
                if precision >= 0:
                    base = min(base, precision)
            else:
                base = _digits(value) + max(precision, 0)
            size += max(width, base)
        pos = fmt.find("%", at + 1)
    return size


class _BoundedFormatter(SandboxedFormatter):
    """``str.format`` in the sandbox, refusing widths, precisions and results past the limit."""

    def __init__(self, env: jinja2.Environment, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self._size = 0

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if conversion is not None:
            _check_weight(value, f"format !{conversion}")
        return super().convert_field(value, conversion)

    def format_field(self, value: Any, format_spec: str) -> Any:
        _budget().step()
        _check_spec(format_spec)
        _check_weight(value, "a formatted value")
        text = super().format_field(value, format_spec)
        self._size += len(text)
        if self._size > MAX_TEMPLATE_STRING:
            raise _too_long("str.format", self._size)
        return text


class _BoundedEscapeFormatter(_BoundedFormatter, EscapeFormatter):
    """:class:`_BoundedFormatter` for ``Markup.format`` (escapes what it inserts)."""


# ---------------------------------------------------------------------------- calls


def _check_method_call(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Refuse a call of a builtin method that would build too long a value, before it runs;
    returns the arguments to call it with (a generator given to ``join`` becomes a list)."""
    owner = getattr(method, "__self__", None)
    name = getattr(method, "__name__", "")
    if isinstance(owner, str | bytes | bytearray):
        length = len(owner)
        if name in ("center", "ljust", "rjust", "zfill") and args:
            width = args[0]
            if isinstance(width, int) and width > MAX_TEMPLATE_STRING:
                raise _too_long(name, width)
        elif name == "expandtabs":
            tabsize = args[0] if args else kwargs.get("tabsize", 8)
            if isinstance(tabsize, int):
                tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
                size = length + tabs * max(tabsize, 0)
                if size > MAX_TEMPLATE_STRING:
                    raise _too_long("expandtabs", size)
        elif name == "replace" and len(args) >= 2:
            size = _replace_size(owner, args[0], args[1], args[2] if len(args) > 2 else kwargs.get("count", -1))
            if size > MAX_TEMPLATE_STRING:
                raise _too_long("replace", size)
        elif name == "join" and args:
            items = _materialize(args[0], "join")
            size = sum(weight(item) for item in items) + length * max(len(items) - 1, 0)
            if size > MAX_TEMPLATE_STRING:
                raise _too_long("join", size)
            return (items, *args[1:])
        elif name == "translate" and args and isinstance(owner, str):
            # a table maps each character to a string (a dict, or a list indexed by code point)
            table = args[0]
            values = table.values() if isinstance(table, Mapping) else table if isinstance(table, list | tuple) else ()
            size = length * max((weight(v) for v in values), default=1)
            if size > MAX_TEMPLATE_STRING:
                raise _too_long("translate", size)
    elif isinstance(owner, int) and name == "to_bytes":
        size = args[0] if args else kwargs.get("length", 1)
        if isinstance(size, int) and size > MAX_TEMPLATE_STRING:
            raise _too_long("to_bytes", size)
    return args


def _replace_size(text: Any, old: Any, new: Any, count: Any) -> int:
    if not isinstance(old, str | bytes) or not isinstance(new, str | bytes):
        return len(text)
    try:
        found = text.count(old) if old else len(text) + 1
    except TypeError:
        return len(text)
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(text) + found * max(len(new) - len(old), 0)


def checked_range(*args: Any) -> range:
    """``range`` for templates: at most Jinja's ``MAX_RANGE`` items, counted without building it
    (``range(10**18)`` is refused, not an OverflowError)."""
    if not 1 <= len(args) <= 3 or not all(isinstance(a, int) for a in args):
        return range(*args)  # the TypeError Python gives
    start, stop, step = (0, args[0], 1) if len(args) == 1 else (args[0], args[1], args[2] if len(args) == 3 else 1)
    if step == 0:
        return range(start, stop, step)  # ValueError
    items = max(0, (stop - start + step - (1 if step > 0 else -1)) // step)
    if items > MAX_RANGE:
        raise _budget().fail(f"range of {_count(items)} items (at most {MAX_RANGE:,})")
    return range(start, stop, step)


def _refused(name: str, why: str) -> Callable[..., Any]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise _budget().fail(f"{name} is not available in prompt templates ({why})")

    return refuse


_UNSEEDED = "a prompt must not depend on unseeded random numbers"

#: container methods that return part of the container (or a view of it), not a new value
_CONTAINERS = (dict, list, tuple)
_LOOKUPS = frozenset({"get", "items", "keys", "values", "index", "count"})


# ---------------------------------------------------------------------------- filters


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], position: int, key: str, default: Any) -> Any:
    return args[position] if len(args) > position else kwargs.get(key, default)


def _text_len(value: Any) -> int:
    return len(value) if isinstance(value, str) else weight(value)


_Checked = tuple[Any, tuple[Any, ...]]


def _check_center(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Checked:
    width = _arg(args, kwargs, 0, "width", 80)
    if isinstance(width, int) and width > MAX_TEMPLATE_STRING:
        raise _too_long("center", width)
    return value, args


def _check_indent(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Checked:
    width = _arg(args, kwargs, 0, "width", 4)
    pad = width if isinstance(width, int) else weight(width)
    lines = value.count("\n") + 1 if isinstance(value, str) else 1
    size = _text_len(value) + lines * max(pad, 0)
    if size > MAX_TEMPLATE_STRING:
        raise _too_long("indent", size)
    return value, args


def _check_wordwrap(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Checked:
    wrapstring = _arg(args, kwargs, 2, "wrapstring", None)
    length = _text_len(value)
    # at worst a break after every character
    size = length + (length + 1) * (weight(wrapstring) if wrapstring is not None else 1)
    if size > MAX_TEMPLATE_STRING:
        raise _too_long("wordwrap", size)
    return value, args


def _check_tojson(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Checked:
    indent = _arg(args, kwargs, 0, "indent", None)
    wide = indent if isinstance(indent, int) else weight(indent) if indent is not None else 0
    if wide > MAX_JSON_INDENT:
        raise _budget().fail(f"tojson indent {_count(wide)} (at most {MAX_JSON_INDENT})")
    if wide > 0:  # every line indented as deep as it is nested
        size = weight(value, indent=wide)
        if size > MAX_TEMPLATE_STRING:
            raise _too_long("tojson", size)
    return value, args


def _check_format(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Checked:
    size = printf_size(value if isinstance(value, str) else str(value), kwargs or args)
    if size > MAX_TEMPLATE_STRING:
        raise _too_long("format", size)
    return value, args


def _check_replace(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Checked:
    if len(args) >= 2:
        size = _replace_size(str(value), args[0], args[1], _arg(args, kwargs, 2, "count", -1))
        if size > MAX_TEMPLATE_STRING:
            raise _too_long("replace", size)
    return value, args


def _check_join(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Checked:
    items = _materialize(value, "join")
    glue = _arg(args, kwargs, 0, "d", "")
    size = sum(weight(item) for item in items) + weight(glue) * max(len(items) - 1, 0)
    if size > MAX_TEMPLATE_STRING:
        raise _too_long("join", size)
    return items, args


def _check_count_arg(name: str, key: str) -> Callable[[Any, tuple[Any, ...], dict[str, Any]], _Checked]:
    def check(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Checked:
        count = _arg(args, kwargs, 0, key, 1)
        if isinstance(count, int) and count > MAX_TEMPLATE_STRING:
            raise _too_long(name, count)
        return value, args

    return check


def _check_sum(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Checked:
    start = _arg(args, kwargs, 1, "start", 0)
    if isinstance(start, int | float):
        return value, args
    items = _materialize(value, "sum")
    # adding sequences copies the growing total each time: quadratic
    size = len(items) * (weight(start) + sum(weight(item) for item in items))
    if size > MAX_FILTER_WORK:
        raise _too_long("sum", size)
    return items, args


def _check_striptags(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Checked:
    text = str(value)
    tags = text.count("<")
    if (tags + 1) * len(text) > MAX_FILTER_WORK:  # markupsafe copies the text once per tag
        raise _budget().fail(f"striptags on {len(text):,} characters with {tags:,} tags is too much work")
    return value, args


def _check_urlize(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Checked:
    extra = weight(_arg(args, kwargs, 2, "target", None)) + weight(_arg(args, kwargs, 3, "rel", None)) + 80
    length = _text_len(value)
    size = length + (length // 2 + 1) * extra  # at worst a link every other character
    if size > MAX_TEMPLATE_STRING:
        raise _too_long("urlize", size)
    return value, args


#: checks of the filters whose result can be much longer than their input, made before they run
_FILTER_CHECKS: dict[str, Callable[[Any, tuple[Any, ...], dict[str, Any]], _Checked]] = {
    "center": _check_center,
    "indent": _check_indent,
    "wordwrap": _check_wordwrap,
    "tojson": _check_tojson,
    "format": _check_format,
    "replace": _check_replace,
    "join": _check_join,
    "batch": _check_count_arg("batch", "linecount"),
    "slice": _check_count_arg("slice", "slices"),
    "sum": _check_sum,
    "striptags": _check_striptags,
    "urlize": _check_urlize,
}


#: filters that return (part of) what they get or a number: their result is not weighed (what
#: they get was weighed when it was built, or is the context's own data)
_PICKING_FILTERS = frozenset(
    {"abs", "attr", "count", "d", "default", "first", "float", "int", "last", "length", "max", "min", "round"}
)


def checked_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` (the filter ``name``) with the budget's checks around it."""
    skip = 1 if _PassArg.from_obj(func) is not None else 0
    check = _FILTER_CHECKS.get(name)
    picks = name in _PICKING_FILTERS
    what = f"the {name} filter"

    # No check of the input: every value a template holds was checked when it was built (or is
    # the context's own data), so a filter's work is bounded by it, but for the filters whose
    # result can be far longer than their input (a width, a count, a joiner): _FILTER_CHECKS.
    @functools.wraps(func)
    def filter_(*args: Any, **kwargs: Any) -> Any:
        _budget().step()
        if check is not None and len(args) > skip:
            value, extra = check(args[skip], args[skip + 1 :], kwargs)
            args = (*args[:skip], value, *extra)
        result = func(*args, **kwargs)
        if picks and not isinstance(result, Iterator):
            return result
        return built(result, what)

    filter_.budget_checked = True  # type: ignore[attr-defined]
    return filter_


def checked_test(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` (a test) counted as an operation."""

    @functools.wraps(func)
    def test(*args: Any, **kwargs: Any) -> Any:
        _budget().step()
        return func(*args, **kwargs)

    test.budget_checked = True  # type: ignore[attr-defined]
    return test


class _CheckedFilters(dict[str, Callable[..., Any]]):
    """An environment's filters: each one registered (``env.filters["x"] = f``) gets the
    budget's checks around it, so a filter added later is bounded too."""

    def __setitem__(self, name: str, func: Callable[..., Any]) -> None:
        if not name.startswith("~") and not getattr(func, "budget_checked", False):
            func = checked_filter(name, func)
        super().__setitem__(name, func)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for name, func in dict(*args, **kwargs).items():
            self[name] = func


class _CheckedTests(dict[str, Callable[..., Any]]):
    """An environment's tests: each one registered is counted as an operation."""

    def __setitem__(self, name: str, func: Callable[..., Any]) -> None:
        if not getattr(func, "budget_checked", False):
            func = checked_test(func)
        super().__setitem__(name, func)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for name, func in dict(*args, **kwargs).items():
            self[name] = func


# ---------------------------------------------------------------------------- the tree pass

#: internal filters the tree pass calls (not names a template can write: they are not identifiers)
_EMIT, _CONCAT, _BUILT, _PASS = "~emit", "~concat", "~built", "~pass"


def _emit(chars: int) -> str:
    """Count an iteration, a call or a template's root, and the literal text it may output
    (``chars``: a constant the tree pass wrote; templates cannot call this filter)."""
    _budget().step(chars)
    return ""


@pass_eval_context
def _concat(eval_ctx: Any, parts: list[Any]) -> str:
    """``a ~ b ~ c``, refused before it builds too long a string."""
    size = sum(weight(part) for part in parts)
    if size > MAX_TEMPLATE_STRING:
        raise _too_long("~", size)
    result = markup_join(parts) if eval_ctx.autoescape else str_join(parts)
    _budget().step(len(result))
    return result


def _pass(value: Any) -> Any:
    """An operation Jinja runs unchecked (a comparison, a loop's test), counted."""
    _budget().step()
    return value


@pass_eval_context
def _finalize(eval_ctx: Any, value: Any) -> Any:
    """Every ``{{ }}`` output: counted, and refused before printing a value too long to print."""
    if isinstance(value, str):
        _budget().step(len(value))
        return value
    if isinstance(value, jinja2.Undefined):
        return value  # printing it raises (StrictUndefined) or prints nothing
    text = str(value) if weight(value) <= MAX_TEMPLATE_STRING else None
    if text is None or len(text) > MAX_TEMPLATE_STRING:
        raise _too_long("an output", weight(value) if text is None else len(text))
    _budget().step(len(text))
    return text


#: nodes whose body runs again and again within one render: their literal text is counted each
#: time it runs (at the start of every iteration or call), not with the template's
_REPEATED = (nodes.For, nodes.Macro, nodes.CallBlock)


def _literal_chars(body: list[nodes.Node]) -> int:
    """Characters of literal text ``body`` outputs at most (every branch), not counting the
    bodies of loops, macros and call blocks in it (they count their own)."""
    total = 0
    stack: list[nodes.Node] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, nodes.TemplateData):
            total += len(node.data)
        elif isinstance(node, nodes.For):
            stack.extend(node.else_)  # runs once, when the loop ran no iteration
        elif not isinstance(node, _REPEATED):
            stack.extend(node.iter_child_nodes())
    return total


class _Instrument(NodeTransformer):
    """Adds a budget check to what Jinja runs without calling the sandbox."""

    def __init__(self, environment: jinja2.Environment) -> None:
        self.environment = environment

    def _filter(self, node: nodes.Expr, name: str, lineno: int) -> nodes.Filter:
        out = nodes.Filter(node, name, [], [], None, None, lineno=lineno)
        out.set_environment(self.environment)
        return out

    def _count(self, body: list[nodes.Node], lineno: int) -> None:
        """Count an operation and the literal text of ``body`` each time it starts."""
        charge = nodes.ExprStmt(self._filter(nodes.Const(_literal_chars(body)), _EMIT, lineno), lineno=lineno)
        charge.set_environment(self.environment)
        body.insert(0, charge)

    def visit_Template(self, node: nodes.Template) -> nodes.Node:
        self.generic_visit(node)
        self._count(node.body, 1)  # every time the template's root runs (also as an include)
        return node

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        self._count(node.body, node.lineno)  # every iteration, also of a recursive loop
        if node.test is not None:  # every item the loop's filter looks at
            node.test = self._filter(node.test, _PASS, node.lineno)  # type: ignore[arg-type]
        return node

    def visit_Macro(self, node: nodes.Macro) -> nodes.Node:
        self.generic_visit(node)
        self._count(node.body, node.lineno)
        return node

    def visit_CallBlock(self, node: nodes.CallBlock) -> nodes.Node:
        self.generic_visit(node)
        self._count(node.body, node.lineno)  # the body is the caller(): once per call
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        parts = nodes.List(node.nodes, lineno=node.lineno)
        parts.set_environment(self.environment)
        return self._filter(parts, _CONCAT, node.lineno)

    def visit_Getitem(self, node: nodes.Getitem) -> nodes.Node:
        self.generic_visit(node)
        if isinstance(node.arg, nodes.Slice):  # Jinja slices without the sandbox's getitem
            return self._filter(node, _BUILT, node.lineno)
        return node

    def visit_Compare(self, node: nodes.Compare) -> nodes.Node:
        self.generic_visit(node)
        return self._filter(node, _PASS, node.lineno)

    def _literal(self, node: nodes.Expr) -> nodes.Node:
        self.generic_visit(node)
        if getattr(node, "ctx", "load") != "load":  # an assignment target
            return node
        return self._filter(node, _BUILT, node.lineno)

    visit_List = visit_Tuple = visit_Dict = _literal


# ---------------------------------------------------------------------------- the environment


def _bounded_root(render: Callable[[Any], Iterator[str]]) -> Callable[[Any], Iterator[str]]:
    """A template's root render function counted as one level of nesting (an include, import or
    extends of itself ends at the depth limit), starting a budget when no render has one (a
    template rendered directly rather than through :class:`~mesa_llm.agents.prompts.PromptLibrary`)."""

    def root(context: Any) -> Iterator[str]:
        token = None
        budget = _ACTIVE.get()
        if budget is None:
            budget, token = start_render()
        budget.enter()
        try:
            yield from render(context)
        finally:
            budget.leave()
            if token is not None:
                end_render(token)

    return root


class BudgetedTemplate(jinja2.Template):
    """A template of :class:`PromptSandbox`: however it is rendered (``render``, ``generate``,
    as an include, import or parent), its root runs within a budget."""

    @property
    def root_render_func(self) -> Callable[[Any], Iterator[str]]:
        return self._bounded_root

    @root_render_func.setter
    def root_render_func(self, render: Callable[[Any], Iterator[str]]) -> None:
        self._bounded_root = _bounded_root(render)




#: every attribute a plain dict has (a template's ``d.items`` is the method, not the key "items")
_DICT_ATTRIBUTES = frozenset(dir(dict))

#: `dict_key`'s answer when ``obj.attribute`` is not a plain dict's key
NO_KEY: Any = object()


def dict_key(obj: Any, attribute: str) -> Any:
    """A template's ``obj.attribute`` when ``obj`` is a plain dict with that key and no such
    attribute (``obs.account``: the item, as Jinja's look-up ends up giving), else `NO_KEY`.

    Why: Jinja first tries the attribute and catches the AttributeError; a fifth of a prompt's
    render time went to those."""
    if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
        return obj.get(attribute, NO_KEY)
    return NO_KEY


class PromptSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with a budget for every render (see the module's docstring)."""

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})
    intercepted_unops = frozenset({"+", "-"})
    template_class = BudgetedTemplate

    def __init__(self, **options: Any) -> None:
        # no constant folding: it would run filters at compile time, outside any budget
        super().__init__(optimized=False, finalize=_finalize, **options)
        self.globals["range"] = checked_range
        self.globals["lipsum"] = _refused("lipsum", _UNSEEDED)
        filters, tests = _CheckedFilters(), _CheckedTests()
        filters.update(self.filters)
        tests.update(self.tests)
        filters["random"] = _refused("the random filter", _UNSEEDED)
        filters.update({_EMIT: _emit, _CONCAT: _concat, _BUILT: built, _PASS: _pass})
        self.filters = filters
        self.tests = tests  # type: ignore[assignment]

    # -- compiling

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        """A template's globals: the sandbox's (fixed once it is built) with ``d`` over them, as one
        plain dict. Jinja's ChainMap is flattened into a new dict on every render (``new_context``),
        which cost about half of rendering a short template (~6 of ~12 us: 4 renders per LLM agent
        and step); a template's own globals still never reach the environment's."""
        return {**self.globals, **(d or {})}

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        # Environment._parse is where compile() and parse() get the syntax tree from
        tree = super()._parse(source, name, filename)
        _Instrument(self).visit(tree)
        return tree

    def get_template(self, name: str | jinja2.Template, parent: str | None = None, globals: Any = None) -> jinja2.Template:
        """Load template ``name`` (also for an include, import or extends); compiling it does
        not count against the render's time."""
        started = time.monotonic()
        template = super().get_template(name, parent, globals)
        self._pause_clock(started)
        return template

    def select_template(self, names: Any, parent: str | None = None, globals: Any = None) -> jinja2.Template:
        """:meth:`get_template` for the first of ``names`` that exists (at most
        :data:`MAX_TEMPLATE_DEPTH` names: each one tried is a look-up in the folders)."""
        if isinstance(names, Iterable) and not isinstance(names, str | jinja2.Undefined):
            names = list(itertools.islice(names, MAX_TEMPLATE_DEPTH + 1))
            if len(names) > MAX_TEMPLATE_DEPTH:
                raise _budget().fail(f"include of more than {MAX_TEMPLATE_DEPTH} template names")
        started = time.monotonic()
        template = super().select_template(names, parent, globals)
        self._pause_clock(started)
        return template

    @staticmethod
    def _pause_clock(started: float) -> None:
        budget = _ACTIVE.get()
        if budget is not None:
            budget.deadline += time.monotonic() - started

    # -- the sandbox's hooks

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        """A call from a template: counted, one level deeper, refused before a builtin method
        builds too long a value, its result checked."""
        budget = _budget()
        budget.step()
        # a method of a builtin type, or of Markup (Python wrappers around str's)
        if isinstance(obj, types.BuiltinFunctionType | types.MethodType):
            if obj.__name__ in ("format", "format_map"):
                obj = self.wrap_str_format(obj) or obj
            else:
                args = _check_method_call(obj, args, kwargs)
        if not self.is_safe_callable(obj):
            raise SecurityError(f"{obj!r} is not safely callable")
        budget.enter()
        try:
            result = context.call(obj, *args, **kwargs)
        finally:
            budget.leave()
        if type(result) is str:  # a macro's output, a str method's result: the common case
            if len(result) > MAX_TEMPLATE_STRING:
                raise _too_long(f"the result of {getattr(obj, '__name__', 'a call')}", len(result))
            budget.charge(len(result))
            return result
        if isinstance(getattr(obj, "__self__", None), _CONTAINERS) and obj.__name__ in _LOOKUPS:
            return result  # part of a container the template already holds, or a view of it
        return built(result, f"the result of {getattr(obj, '__name__', 'a call')}")

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        """``+ - * / // % **`` from a template: refused before building too long a value or too
        large a number."""
        budget = _budget()
        budget.step()
        if operator == "**":
            if isinstance(right, int | float) and abs(right) > MAX_TEMPLATE_EXPONENT:
                raise budget.fail("exponent too large in a prompt template")
            if isinstance(left, int) and isinstance(right, int) and right > 0 and left.bit_length() * right > MAX_TEMPLATE_INT_BITS:
                raise budget.fail(f"built too large a number (more than {MAX_TEMPLATE_INT_BITS} bits)")
        elif operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | bytes | list | tuple) and isinstance(times, int) and times > 0:
                    size = weight(seq) * times
                    if size > MAX_TEMPLATE_STRING:
                        raise _too_long("*", size)
            if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > MAX_TEMPLATE_INT_BITS:
                raise budget.fail(f"built too large a number (more than {MAX_TEMPLATE_INT_BITS} bits)")
        elif operator == "+":
            if isinstance(left, str | bytes | list | tuple) and isinstance(right, str | bytes | list | tuple):
                size = weight(left) + weight(right)
                if size > MAX_TEMPLATE_STRING:
                    raise _too_long("+", size)
        elif operator == "%" and isinstance(left, str | bytes):
            fmt = left if isinstance(left, str) else left.decode("latin-1")
            size = printf_size(fmt, right)
            if size > MAX_TEMPLATE_STRING:
                raise _too_long("%", size)
        return built(self.binop_table[operator](left, right), operator)

    def getattr(self, obj: Any, attribute: str) -> Any:
        """``obj.attribute`` from a template (or a filter's ``attribute=``), counted: a filter
        over many items (``groupby``, ``sort(attribute=...)``) is many operations."""
        _budget().step()
        value = dict_key(obj, attribute)
        return super().getattr(obj, attribute) if value is NO_KEY else value

    def getitem(self, obj: Any, argument: Any) -> Any:
        """``obj[argument]`` from a template (or a filter's ``attribute=``), counted."""
        _budget().step()
        return super().getitem(obj, argument)

    def call_unop(self, context: Any, operator: str, arg: Any) -> Any:
        """Unary ``+ -`` from a template, counted."""
        _budget().step()
        return self.unop_table[operator](arg)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``str.format``/``format_map`` through :class:`_BoundedFormatter` (as Jinja's sandbox
        does through its own formatter, plus the budget)."""
        if not isinstance(value, types.MethodType | types.BuiltinMethodType) or value.__name__ not in ("format", "format_map"):
            return None
        owner = value.__self__
        if not isinstance(owner, str):
            return None
        formatter: _BoundedFormatter
        if isinstance(owner, Markup):
            formatter = _BoundedEscapeFormatter(self, escape=owner.escape)
        else:
            formatter = _BoundedFormatter(self)
        is_format_map = value.__name__ == "format_map"
        kind = type(owner)

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_format_map:
                if kwargs:
                    raise TypeError("format_map() takes no keyword arguments")
                if len(args) != 1:
                    raise TypeError(f"format_map() takes exactly one argument ({len(args)} given)")
                kwargs = args[0]
                args = ()
            formatter._size = 0
            return kind(formatter.vformat(owner, args, kwargs))

        return functools.update_wrapper(wrapper, value)

    def call_filter(self, name: str, value: Any, args: Any = None, kwargs: Any = None, context: Any = None, eval_ctx: Any = None) -> Any:
        """A filter by name (``map("upper")``); the tree pass's own filters are not for templates."""
        if name.startswith("~"):
            raise SecurityError(f"no filter named {name!r}")
        return super().call_filter(name, value, args, kwargs, context, eval_ctx)

    def call_test(self, name: str, value: Any, args: Any = None, kwargs: Any = None, context: Any = None, eval_ctx: Any = None) -> Any:
        """A test by name (``select("odd")``)."""
        if name.startswith("~"):
            raise SecurityError(f"no test named {name!r}")
        return super().call_test(name, value, args, kwargs, context, eval_ctx)


__all__ = [
    "MAX_FILTER_WORK",
    "MAX_JSON_INDENT",
    "MAX_PROMPT_CHARS",
    "MAX_RENDER_SECONDS",
    "MAX_TEMPLATE_BUILT_CHARS",
    "MAX_TEMPLATE_DEPTH",
    "MAX_TEMPLATE_EXPONENT",
    "MAX_TEMPLATE_INT_BITS",
    "MAX_TEMPLATE_OPS",
    "MAX_TEMPLATE_STRING",
    "BudgetedTemplate",
    "PromptSandbox",
    "TemplateBudgetError",
    "built",
    "checked_filter",
    "end_render",
    "printf_size",
    "start_render",
    "weight",
]
