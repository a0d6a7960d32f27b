"""Safe YAML for files users share: bounded size, depth and alias expansion, no duplicate keys, no NaN/inf.

PyYAML's ``safe_load`` stops code execution but not denial of service: a billion-laughs document
expands to gigabytes once anything walks it, deep nesting overflows the recursive composer, and
duplicate keys silently keep the last value. Every scenario, persona and ``--set`` value goes
through :func:`load_yaml`, which checks each of these at the boundary and fails with one line that
says where (line and column, or the field path).
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

#: largest file read (bytes): scenario files are a few KB
MAX_BYTES = 4 * 1024 * 1024
#: deepest nesting of mappings and lists as written
MAX_DEPTH = 64
#: most values a document may hold once its aliases are expanded
MAX_EXPANDED_NODES = 200_000
#: deepest nesting once aliases are expanded
MAX_EXPANDED_DEPTH = 128
#: what YAML 1.1 (PyYAML's reader) refuses: C0 controls but tab/LF/CR, DEL, C1 but NEL, surrogates, U+FFFE/F
_NOT_YAML_TEXT = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class UnsafeYAMLError(ValueError):
    """A YAML text that is invalid or unsafe to load; the message says where, in one line."""


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses deep nesting while composing and duplicate keys while constructing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                event = self.peek_event()
                raise UnsafeYAMLError(f"{_where(event.start_mark)}nesting deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: the base constructor reports it
                continue
            if duplicate:
                raise UnsafeYAMLError(f"{_where(key_node.start_mark)}duplicate key {key!r}")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """Parse one YAML document safely; :class:`UnsafeYAMLError` (one line) if it is invalid or unsafe."""
    if len(text) > MAX_BYTES:
        raise UnsafeYAMLError(f"the text is larger than {MAX_BYTES // (1024 * 1024)} MB")
    _check_characters(text)
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node)
        data = loader.construct_document(node)
    except UnsafeYAMLError:
        raise
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UnsafeYAMLError(f"invalid YAML: {_where(mark)}{problem}") from None
    except RecursionError:  # a shape the depth guard did not foresee: still one line
        raise UnsafeYAMLError(f"nesting deeper than {MAX_DEPTH} levels") from None
    finally:
        loader.dispose()
    _check_finite(data)
    return data


def decode_yaml_bytes(raw: bytes) -> str:
    """The UTF-8 text of a YAML file's bytes; :class:`UnsafeYAMLError` naming the offset if not UTF-8."""
    if len(raw) > MAX_BYTES:
        raise UnsafeYAMLError(f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB ({len(raw):,} bytes)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnsafeYAMLError(
            f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at offset {exc.start}"
        ) from None


def _check_characters(text: str) -> None:
    """Refuse NUL, ESC and the other characters YAML does not allow, naming the first one's line and
    column (PyYAML's own error says only "position N", and escapes the check's try)."""
    bad = _NOT_YAML_TEXT.search(text)
    if bad is None:
        return
    offset = bad.start()
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    raise UnsafeYAMLError(
        f"line {line}, column {column}: control character U+{ord(bad.group()):04X} is not allowed in YAML text"
    )


def _where(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""


def _check_expansion(root: Node) -> None:
    """Refuse documents whose aliases expand past the limits (billion laughs), without expanding them.

    Sizes and depths are computed once per node of the composed graph (aliases share nodes), in
    an explicit post-order walk, so neither time nor the Python stack grows with the expansion.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in size:
            continue
        children = _children(node)
        if not children_done:
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in size)
            continue
        size[key] = 1 + sum(size[id(c)] for c in children)
        depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
        if size[key] > MAX_EXPANDED_NODES:
            raise UnsafeYAMLError(
                f"{_where(node.start_mark)}the document expands to more than {MAX_EXPANDED_NODES:,} values "
                "(aliases repeat too much)"
            )
        if depth[key] > MAX_EXPANDED_DEPTH:
            raise UnsafeYAMLError(
                f"{_where(node.start_mark)}nesting deeper than {MAX_EXPANDED_DEPTH} levels once aliases are expanded"
            )


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_finite(data: Any) -> None:
    """Refuse NaN and infinities anywhere (every numeric field of a scenario must be a real number)."""
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            raise UnsafeYAMLError(f"{path or '(top level)'}: {value} is not a finite number")
        if isinstance(value, dict):
            stack.extend((v, f"{path}.{k}" if path else str(k)) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, f"{path}.{i}" if path else str(i)) for i, v in enumerate(value))
