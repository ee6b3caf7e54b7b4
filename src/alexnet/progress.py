"""Progress bars: tqdm on a terminal, a few plain lines in a log.

On a terminal a bar redraws itself in place.  When stderr is a file or a pipe (``make demo > log 2>&1``, a batch
job, CI) tqdm would still write every refresh as ``\\r``-separated text on one endless line; here each refresh is
its own line instead, written at most every ``LOG_INTERVAL`` seconds (and once at the end), so a log stays short
and readable with ``cat`` or ``tail -f``.  Every long loop in the library makes its bar through ``progress_bar``.
"""
from __future__ import annotations

import re
import sys

from tqdm.autonotebook import tqdm as auto_tqdm
from tqdm.std import tqdm

LOG_INTERVAL = 30.0   # seconds between lines when stderr is not a terminal
_COUNT = re.compile(r"\d+(\.\d+)?[kMG]?/\d+(\.\d+)?[kMG]?")   # tqdm's n/total


class _LineWriter:
    """A file for tqdm that turns each in-place redraw into one finished line.  Blank clears are dropped, so is the
    opening 0/N line (a loop shorter than the interval writes nothing: the line after it says what it did), and so
    is a redraw at the same count as the line before (tqdm redraws the last state when it closes)."""

    def __init__(self, stream):
        self.stream = stream
        self.last_count = None

    def write(self, text: str) -> int:
        line = text.replace("\r", "").strip()
        counts = list(_COUNT.finditer(line))     # the last n/total: a description may hold one ("epoch 1/12")
        count = counts[-1] if counts else None
        key = line[:count.end()] if count else line
        started = not (count and count.group(0).startswith("0/"))      # "0/93": nothing done yet, nothing to say
        if line and started and key != self.last_count:
            self.stream.write(line + "\n")
            self.last_count = key
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def progress_bar(iterable=None, *, disable: bool = False, **kwargs) -> tqdm:
    """``tqdm(iterable, **kwargs)`` to stderr: redrawn in place on a terminal, sparse plain lines otherwise."""
    if auto_tqdm is not tqdm:     # in a notebook: its own widget
        return auto_tqdm(iterable, disable=disable, **kwargs)
    stream = kwargs.pop("file", None) or sys.stderr
    if not _is_terminal(stream):
        kwargs.setdefault("mininterval", LOG_INTERVAL)
        kwargs.setdefault("maxinterval", LOG_INTERVAL * 4)
        kwargs.setdefault("ascii", True)
        kwargs.setdefault("dynamic_ncols", False)
        kwargs.setdefault("ncols", 100)
        stream = _LineWriter(stream)
    return tqdm(iterable, file=stream, disable=disable, **kwargs)


__all__ = ["LOG_INTERVAL", "progress_bar"]
