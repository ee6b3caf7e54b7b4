"""A minimal reader for MATLAB level-5 MAT files: enough for the ILSVRC-2012 devkit's ``meta.mat`` without scipy.

Supports numeric, char, cell and struct arrays, little- or big-endian, with or without zlib compression
(``miCOMPRESSED``).  Arrays come back as numpy arrays (numeric), str (char), lists (cells, in column-major order)
or lists of dicts (structs).
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError

_MI = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 9: "f8", 12: "i8", 13: "u8"}
MI_MATRIX, MI_COMPRESSED, MI_UTF8, MI_UTF16, MI_UTF32 = 14, 15, 16, 17, 18
MX_CELL, MX_STRUCT, MX_OBJECT, MX_CHAR, MX_SPARSE = 1, 2, 3, 4, 5


class _Reader:
    def __init__(self, data: bytes, endian: str, path: Path):
        self.data, self.e, self.path = data, endian, path

    def elements(self, data: bytes):
        """(type, payload) for each data element in ``data``."""
        pos, n = 0, len(data)
        while pos + 8 <= n:
            word = struct.unpack_from(self.e + "I", data, pos)[0]
            if word >> 16:                       # small data element: 2-byte size, 2-byte type, 4 bytes of data
                typ, size = word & 0xFFFF, word >> 16
                payload, pos = data[pos + 4:pos + 4 + size], pos + 8
            else:
                typ, size = word, struct.unpack_from(self.e + "I", data, pos + 4)[0]
                payload = data[pos + 8:pos + 8 + size]
                if len(payload) != size:
                    raise DataError(f"{self.path}: truncated MAT file")
                pos += 8 + size
                if typ != MI_COMPRESSED:
                    pos += (-size) % 8
            yield typ, payload

    def numeric(self, typ: int, payload: bytes) -> np.ndarray:
        if typ in (MI_UTF8,):
            return np.frombuffer(payload, "u1")
        if typ in (MI_UTF16, MI_UTF32):
            return np.frombuffer(payload, self.e + ("u2" if typ == MI_UTF16 else "u4"))
        if typ not in _MI:
            raise DataError(f"{self.path}: unsupported MAT data type {typ}")
        return np.frombuffer(payload, self.e + _MI[typ])

    def value(self, typ: int, payload: bytes):
        if typ == MI_COMPRESSED:
            try:
                raw = zlib.decompress(payload)
            except zlib.error as e:
                raise DataError(f"{self.path}: corrupt compressed MAT element ({e})") from None
            inner = list(self.elements(raw))
            return self.value(*inner[0]) if inner else None
        if typ != MI_MATRIX:
            return self.numeric(typ, payload)
        if not payload:
            return np.zeros((0, 0))
        subs = list(self.elements(payload))
        flags = self.numeric(*subs[0])
        cls = int(flags[0]) & 0xFF
        dims = tuple(int(d) for d in self.numeric(*subs[1]))
        count = int(np.prod(dims)) if dims else 0
        rest = subs[3:]
        if cls == MX_CHAR:
            codes = self.numeric(*rest[0]) if rest else np.zeros(0, "u2")
            if rest and rest[0][0] == MI_UTF8:
                return bytes(codes).decode("utf-8", errors="replace")
            return "".join(map(chr, codes.reshape(dims, order="F").reshape(-1) if count else []))
        if cls == MX_CELL:
            return [self.value(*r) for r in rest[:count]]
        if cls in (MX_STRUCT, MX_OBJECT):
            if cls == MX_OBJECT:
                rest = rest[1:]                  # class name
            flen = int(self.numeric(*rest[0])[0])
            raw = bytes(self.numeric(*rest[1]))
            names = [raw[i:i + flen].split(b"\0", 1)[0].decode() for i in range(0, len(raw), flen)]
            vals = rest[2:]
            out = []
            for k in range(count):
                out.append({name: self.value(*vals[k * len(names) + j]) for j, name in enumerate(names)})
            return out
        if cls == MX_SPARSE:
            raise DataError(f"{self.path}: sparse MAT arrays are not supported")
        if not rest:
            return np.zeros(dims)
        real = self.numeric(*rest[0]).astype(np.float64 if cls in (6, 7) else np.int64)
        return real.reshape(dims, order="F") if count == real.size else real


def read_mat(path: str | Path) -> dict:
    """{variable name: value} for a level-5 MAT file (see module doc)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e})") from None
    if len(data) < 128 or data[126:128] not in (b"IM", b"MI"):
        raise DataError(f"{path}: not a MATLAB 5 MAT file (MAT 7.3/HDF5 files are not supported)")
    r = _Reader(data, "<" if data[126:128] == b"IM" else ">", path)
    out = {}
    for typ, payload in r.elements(data[128:]):
        if typ == MI_COMPRESSED:
            try:
                payload = zlib.decompress(payload)
            except zlib.error as e:
                raise DataError(f"{path}: corrupt compressed MAT element ({e})") from None
            typ, payload = next(r.elements(payload))
        if typ != MI_MATRIX or not payload:
            continue
        subs = list(r.elements(payload))
        name = bytes(r.numeric(*subs[2])).decode("ascii", errors="replace") if len(subs) > 2 else ""
        out[name] = r.value(typ, payload)
    return out


def read_ilsvrc_meta(path: str | Path) -> dict[int, str]:
    """ILSVRC2012_ID -> WNID from the devkit's ``data/meta.mat`` (the 1,000 leaf classes and their ancestors)."""
    synsets = read_mat(path).get("synsets")
    if not isinstance(synsets, list) or not synsets or "WNID" not in synsets[0]:
        raise DataError(f"{path}: no 'synsets' struct with ILSVRC2012_ID and WNID fields (not the devkit's meta.mat?)")
    out = {}
    for s in synsets:
        ids = np.asarray(s.get("ILSVRC2012_ID", [])).reshape(-1)
        if ids.size:
            out[int(ids[0])] = str(s["WNID"])
    return out


__all__ = ["read_ilsvrc_meta", "read_mat"]
