"""A small protobuf wire-format reader (no ``protobuf`` package needed), enough for Caffe's ``caffe.proto`` messages.

A message is a run of (key, value) pairs: key = field number << 3 | wire type; wire types 0 (varint), 1 (fixed64),
2 (length-delimited: strings, bytes, sub-messages, packed repeated fields) and 5 (fixed32).  Nothing here knows
Caffe's field numbers; ``caffemodel`` does.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

# field number -> [(wire type, value), ...] in file order (the last one wins for a non-repeated field)
Message = dict[int, list[tuple[int, Any]]]


class WireError(ValueError):
    """Bytes that are not a well-formed protobuf message (truncated, or no protobuf at all)."""


def read_varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    """(value, position after it) of the base-128 varint at ``pos``."""
    result = shift = 0
    while True:
        if pos >= end:
            raise WireError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise WireError("varint longer than 10 bytes")


def _take(buf: memoryview, pos: int, n: int, end: int, what: str) -> tuple[memoryview, int]:
    if pos + n > end:
        raise WireError(what)
    return buf[pos:pos + n], pos + n


def iter_fields(buf: memoryview, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of one message: value is an int (varint), or a memoryview (fixed64,
    length-delimited, fixed32)."""
    end = len(buf) if end is None else end
    pos = start
    while pos < end:
        key, pos = read_varint(buf, pos, end)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise WireError("field number 0")
        if wt == 0:
            val, pos = read_varint(buf, pos, end)
        elif wt == 1:
            val, pos = _take(buf, pos, 8, end, "truncated fixed64")
        elif wt == 2:
            n, pos = read_varint(buf, pos, end)
            val, pos = _take(buf, pos, n, end, f"field {num}: length {n} runs past the end of its message "
                                               "(truncated file?)")
        elif wt == 5:
            val, pos = _take(buf, pos, 4, end, "truncated fixed32")
        else:
            raise WireError(f"field {num}: unsupported wire type {wt}")
        yield num, wt, val


def parse_message(buf: memoryview) -> Message:
    """All fields of one message, grouped by field number."""
    out: Message = {}
    for num, wt, val in iter_fields(buf):
        out.setdefault(num, []).append((wt, val))
    return out


def floats(entries: list[tuple[int, Any]], double: bool = False) -> np.ndarray:
    """A repeated float/double field, packed (one length-delimited run) or not (one fixed32/64 per value)."""
    dtype = "<f8" if double else "<f4"
    parts = []
    for wt, val in entries:
        if wt == 2:
            if len(val) % (8 if double else 4):
                raise WireError("packed float run of odd length")
            parts.append(np.frombuffer(val, dtype=dtype))
        elif wt == (1 if double else 5):
            parts.append(np.frombuffer(val, dtype=dtype))
        else:
            raise WireError(f"float field with wire type {wt}")
    if not parts:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def ints(entries: list[tuple[int, Any]]) -> list[int]:
    """A repeated integer field, packed or not; int64 negatives come back as negative."""
    vals = []
    for wt, val in entries:
        if wt == 0:
            vals.append(val)
        elif wt == 2:
            pos = 0
            while pos < len(val):
                v, pos = read_varint(val, pos, len(val))
                vals.append(v)
        else:
            raise WireError(f"integer field with wire type {wt}")
    return [v - (1 << 64) if v >= 1 << 63 else v for v in vals]


def last_int(msg: Message, num: int, default: int | None = None) -> int | None:
    """A non-repeated integer field (the last value wins, as protobuf's parsers do)."""
    vals = ints(msg[num]) if num in msg else []
    return vals[-1] if vals else default


def first_int(msg: Message, num: int, default: int | None = None) -> int | None:
    """The first value of a repeated integer field."""
    vals = ints(msg[num]) if num in msg else []
    return vals[0] if vals else default


def last_float(msg: Message, num: int, default: float | None = None) -> float | None:
    vals = floats(msg[num]) if num in msg else []
    return float(vals[-1]) if len(vals) else default


def last_string(msg: Message, num: int, default: str = "") -> str:
    if num not in msg:
        return default
    wt, val = msg[num][-1]
    if wt != 2:
        raise WireError(f"string field {num} with wire type {wt}")
    return bytes(val).decode("utf-8", errors="replace")


def sub_message(msg: Message, num: int) -> Message | None:
    """The (last) sub-message in field ``num``, parsed; None if absent."""
    return parse_message(msg[num][-1][1]) if num in msg else None
