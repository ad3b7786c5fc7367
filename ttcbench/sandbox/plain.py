"""Plain data across the sandbox boundary: what a function under test may hand to the grader.

A value crosses as JSON text in which every scalar is a JSON scalar (None, bools, ints of any
size, floats including nan/inf, strings) and every container is a ``[tag, payload]`` pair.
Types are matched exactly (``type(x) is int``, never ``isinstance``): a subclass of ``int`` or
``list`` may override ``__eq__``, which is the always-equal attack this codec exists to stop.
The decoder rebuilds only builtin and standard-library types, so whatever the untrusted side
writes, the grader compares values whose ``__eq__``, ``__hash__`` and ``__bool__`` are Python's.

Floats cross exactly (``repr`` round-trips), so a test's own tolerance (``math.isclose``,
``abs(a - b) < eps``) is what decides, as it would in-process.  Iterators (generators, ``map``,
``zip`` ...) cross as their items and come back as a list iterator, so ``list(f(x)) == [...]``
holds and ``f(x) == [...]`` stays false, as in-process.

This module is also shipped as source into the sandbox (the harness there has no ttcbench), so
it imports only the standard library.
"""

from __future__ import annotations

import collections
import decimal
import fractions
import json
import types
from typing import Any

MAX_ITEMS = 1_000_000
"""Items read from one iterator: an endless generator is an error, not a hang."""


class NotPlain(TypeError):
    """The value holds an object that cannot cross as plain data."""


_EMPTY_ITERATORS: tuple[Any, ...] = (
    iter([]), iter(()), iter(""), iter(range(0)), iter(set()), iter({}), iter(b""),
    map(int, []), filter(None, []), zip(), enumerate([]), reversed([]),
    (c for c in ""), iter({}.values()), iter({}.items()),
)  # fmt: skip
_ITERATORS = tuple(type(x) for x in _EMPTY_ITERATORS)
_SCALARS = (type(None), bool, int, float, str)
_VIEWS = {type({}.keys()): "keys", type({}.values()): "values", type({}.items()): "items"}


def encode(value: Any) -> str:
    """JSON text for ``value``; raises NotPlain naming the first foreign type met."""
    try:
        return json.dumps(_enc(value), allow_nan=True, separators=(",", ":"))
    except RecursionError as exc:
        raise NotPlain("value nested too deeply (or refers to itself)") from exc


def _enc(x: Any) -> Any:  # noqa: C901 -- one flat dispatch on the exact type reads best
    t = type(x)
    if t in _SCALARS:
        return x
    if t is list:
        return ["list", [_enc(v) for v in x]]
    if t is tuple:
        return ["tuple", [_enc(v) for v in x]]
    if t in (set, frozenset):
        return [t.__name__, [_enc(v) for v in x]]
    if t in (dict, collections.OrderedDict, collections.defaultdict, collections.Counter):
        name = "dict" if t in (dict, collections.defaultdict) else t.__name__
        return [name, [[_enc(k), _enc(v)] for k, v in x.items()]]
    if t is collections.deque:
        return ["deque", [_enc(v) for v in x]]
    if t in (bytes, bytearray):
        return [t.__name__, x.hex()]
    if t is complex:
        return ["complex", [x.real, x.imag]]
    if t is range:
        return ["range", [x.start, x.stop, x.step]]
    if t in (decimal.Decimal, fractions.Fraction):
        return [t.__name__, str(x)]
    if t in _VIEWS:
        return [_VIEWS[t], [_enc(v) for v in x]]
    if t in _ITERATORS or t is types.GeneratorType:
        items: list[Any] = []
        for item in x:
            if len(items) >= MAX_ITEMS:
                raise NotPlain(f"iterator yields more than {MAX_ITEMS} items")
            items.append(_enc(item))
        return ["iter", items]
    raise NotPlain(f"a {t.__module__}.{t.__qualname__} object, which is not plain data")


def decode(text: str | bytes) -> Any:
    """The value ``encode`` wrote; ValueError for anything else (the writer is untrusted).
    The limits are encode's, so whatever decodes can be encoded again."""
    try:
        return _dec(json.loads(text))
    except (RecursionError, TypeError, KeyError, IndexError, decimal.InvalidOperation) as exc:
        raise ValueError(f"not an encoded plain value ({type(exc).__name__})") from exc


_BUILD: dict[str, Any] = {
    "list": list,
    "tuple": tuple,
    "set": set,
    "frozenset": frozenset,
    "deque": collections.deque,
    "iter": iter,
    "dict": dict,
    "OrderedDict": collections.OrderedDict,
    "Counter": lambda pairs: collections.Counter(dict(pairs)),
    "keys": lambda items: dict.fromkeys(items).keys(),
    "values": lambda items: dict(enumerate(items)).values(),
    "items": lambda pairs: dict(pairs).items(),
}
_PAIRS = {"dict", "OrderedDict", "Counter", "items"}


def _dec(x: Any) -> Any:
    if type(x) in _SCALARS:
        return x
    if type(x) is not list or len(x) != 2 or type(x[0]) is not str:
        raise TypeError("malformed value")
    tag, payload = x
    if tag in _PAIRS:
        if type(payload) is not list or len(payload) > MAX_ITEMS:
            raise TypeError("malformed mapping")
        return _BUILD[tag]([(_dec(k), _dec(v)) for k, v in payload])
    if tag in _BUILD:
        if type(payload) is not list or len(payload) > MAX_ITEMS:
            raise TypeError("malformed container")
        return _BUILD[tag]([_dec(v) for v in payload])
    if tag in ("bytes", "bytearray"):
        return (bytes if tag == "bytes" else bytearray).fromhex(_str(payload))
    if tag == "complex":
        return complex(_float(payload[0]), _float(payload[1]))
    if tag == "range":
        return range(*(_int(v) for v in payload))
    if tag == "Decimal":
        return decimal.Decimal(_str(payload))
    if tag == "Fraction":
        return fractions.Fraction(_str(payload))
    raise TypeError(f"unknown tag {tag!r}")


def _str(x: Any) -> str:
    if type(x) is not str:
        raise TypeError("expected a string")
    return x


def _int(x: Any) -> int:
    if type(x) is not int:
        raise TypeError("expected an int")
    return x


def _float(x: Any) -> float:
    if type(x) not in (int, float):
        raise TypeError("expected a number")
    return float(x)
