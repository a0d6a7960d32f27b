"""The ``content`` column of a recording's events table: each event's content as a read-only
mapping (`LazyContent`) decoded from the recording when first read.

A million events would otherwise need a million `LazyContent` objects before the table exists
(0.3-0.6 s, and a garbage collection over all of them after): `ContentArray` keeps only the
events' positions and makes an event's `LazyContent` when a cell is read. Anything that needs
the column as Python objects (``to_numpy()``, ``astype(object)``, writing a cell, stacking the
events of several recordings) gets them then, as the table used to hold them.
"""

from __future__ import annotations

import builtins
import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol, cast

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionArray, ExtensionDtype, take
from pandas.api.indexers import check_array_indexer
from pandas.api.types import is_integer, is_list_like

__all__ = ["ContentArray", "ContentDtype", "ContentSource", "LazyContent"]


class ContentSource(Protocol):
    """Where the contents of a recording's events come from (the loader's event store)."""

    def content(self, index: int) -> dict[str, Any]:
        """The decoded content of the event at this position."""
        ...


class LazyContent(Mapping[str, Any]):
    """The content of one event, decoded from the recording on first access (a read-only mapping).

    ``dict(content)`` or `to_dict` gives a plain dict. Contents are decoded for all events of a
    type at once (one JSON call), except observations and LLM calls (`LAZY_TYPES`), which are large
    and decoded one by one until their table is built. Pickling or deep-copying gives a dict.
    """

    __slots__ = ("_store", "_index")

    def __init__(self, store: ContentSource, index: int) -> None:
        self._store = store
        self._index = index

    def to_dict(self) -> dict[str, Any]:
        """The decoded content (a dict shared with the recording's tables: do not modify it)."""
        return self._store.content(self._index)

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())

    def __repr__(self) -> str:
        return repr(self.to_dict())

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (self.to_dict(),))


class ContentDtype(ExtensionDtype):
    """The dtype of the events table's ``content`` column (not registered with pandas by name:
    importing this module changes nothing)."""

    name = "content"
    type = Mapping
    kind = "O"
    na_value = None

    @classmethod
    def construct_array_type(cls) -> builtins.type[ContentArray]:
        """The array class of this dtype."""
        return ContentArray


_DTYPE = ContentDtype()


def _objects_of(values: Sequence[Any] | Iterator[Any], count: int) -> np.ndarray:
    # np.fromiter stores each value as it is (an array built from a list would take a mapping
    # for a sequence and ask it for its length, decoding it)
    return np.fromiter(values, dtype=object, count=count)


class ContentArray(ExtensionArray):
    """The contents of some events of one recording, by position (``source`` and ``positions``),
    or any values as Python objects (``objects``) once it has been written to or mixes recordings."""

    def __init__(
        self,
        source: ContentSource | None = None,
        positions: np.ndarray | None = None,
        objects: np.ndarray | None = None,
    ) -> None:
        if objects is None and (source is None or positions is None):
            raise ValueError("a ContentArray needs a source and positions, or objects")
        self._source = source
        self._positions = positions
        self._objects = objects

    # -- what pandas builds it from --------------------------------------------------------------

    @classmethod
    def _from_sequence(cls, scalars: Any, *, dtype: Any = None, copy: bool = False) -> ContentArray:
        if isinstance(scalars, ContentArray):
            return scalars.copy() if copy else scalars
        values = list(scalars)
        return cls(objects=_objects_of(values, len(values)))

    @classmethod
    def _concat_same_type(cls, to_concat: Sequence[ContentArray]) -> ContentArray:
        first = to_concat[0]
        if first._objects is None and all(
            a._objects is None and a._source is first._source for a in to_concat
        ):
            return cls(first._source, np.concatenate([cast(np.ndarray, a._positions) for a in to_concat]))
        return cls(objects=np.concatenate([a._as_objects() for a in to_concat]))

    # -- reading ---------------------------------------------------------------------------------

    @property
    def dtype(self) -> ContentDtype:
        return _DTYPE

    def __len__(self) -> int:
        return len(self._objects if self._objects is not None else cast(np.ndarray, self._positions))

    @property
    def nbytes(self) -> int:
        return int((self._objects if self._objects is not None else cast(np.ndarray, self._positions)).nbytes)

    def _as_objects(self) -> np.ndarray:
        """The values as an object array (one `LazyContent` per event, made now)."""
        if self._objects is not None:
            return self._objects
        positions = cast(np.ndarray, self._positions)
        return _objects_of(
            map(LazyContent, itertools.repeat(cast(ContentSource, self._source)), positions.tolist()), len(positions)
        )

    def __iter__(self) -> Iterator[Any]:
        if self._objects is not None:
            return iter(self._objects)
        return map(LazyContent, itertools.repeat(cast(ContentSource, self._source)), cast(np.ndarray, self._positions).tolist())

    def __getitem__(self, item: Any) -> Any:
        if is_integer(item):
            if self._objects is not None:
                return self._objects[item]
            return LazyContent(cast(ContentSource, self._source), int(cast(np.ndarray, self._positions)[item]))
        if not isinstance(item, slice):
            item = check_array_indexer(self, item)
        if self._objects is not None:
            return ContentArray(objects=self._objects[item])
        return ContentArray(self._source, cast(np.ndarray, self._positions)[item])

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        objects = self._as_objects()
        if dtype is not None and np.dtype(dtype) != np.dtype(object):
            return np.asarray(objects, dtype=dtype)
        return objects.copy() if copy and self._objects is not None else objects

    def isna(self) -> np.ndarray:
        if self._objects is None:
            return np.zeros(len(self), dtype=bool)
        return np.asarray(pd.isna(self._objects), dtype=bool)

    def take(self, indices: Any, *, allow_fill: bool = False, fill_value: Any = None) -> ContentArray:
        index = np.asarray(indices, dtype=np.intp)
        if self._objects is None and not (allow_fill and bool((index < 0).any())):
            return ContentArray(self._source, cast(np.ndarray, self._positions).take(index))
        objects = take(self._as_objects(), index, allow_fill=allow_fill, fill_value=fill_value)
        return ContentArray(objects=objects)

    def copy(self) -> ContentArray:
        if self._objects is not None:
            return ContentArray(objects=self._objects.copy())
        return ContentArray(self._source, cast(np.ndarray, self._positions).copy())

    def _formatter(self, boxed: bool = False) -> Any:
        return repr

    def _values_for_factorize(self) -> tuple[np.ndarray, Any]:
        return self._as_objects(), None

    def __eq__(self, other: Any) -> Any:
        if isinstance(other, pd.Series | pd.Index | pd.DataFrame):
            return NotImplemented
        left = self._as_objects()
        if isinstance(other, ContentArray):
            right = other._as_objects()
        elif is_list_like(other) and not isinstance(other, Mapping):
            right = _objects_of(iter(other), len(other))
        else:
            return np.fromiter((value == other for value in left), dtype=bool, count=len(left))
        if len(right) != len(left):
            raise ValueError("lengths must match to compare")
        return np.fromiter((a == b for a, b in zip(left, right, strict=True)), dtype=bool, count=len(left))

    # -- writing ---------------------------------------------------------------------------------

    def __setitem__(self, key: Any, value: Any) -> None:
        objects = self._as_objects()
        if self._objects is None:
            self._objects, self._source, self._positions = objects, None, None
        if not is_integer(key) and not isinstance(key, slice):
            key = check_array_indexer(self, key)
        if is_integer(key):
            objects[key] = value
            return
        if isinstance(value, Mapping):  # one mapping for every cell (numpy would iterate it)
            for i in np.arange(len(objects))[key].tolist():
                objects[i] = value
            return
        if isinstance(value, ContentArray):
            value = value._as_objects()
        elif is_list_like(value):
            value = _objects_of(iter(value), len(value))
        objects[key] = value

    def __reduce__(self) -> tuple[Any, ...]:
        # a copy holds the contents as dicts (what pickling a `LazyContent` gives), not the recording
        return (ContentArray._from_sequence, ([dict(v) if isinstance(v, LazyContent) else v for v in self],))
