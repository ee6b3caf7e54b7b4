"""Small shared helpers: atomic outputs."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, suffix: str | None = None):
    """Yield a temporary path in the same folder; rename it onto ``path`` only if the block succeeds.

    A killed or failing writer never leaves a truncated file at ``path`` (the old file, if any, stays).
    ``suffix`` keeps an extension on the temp file for writers that infer the format from it (PNG, ...).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix if suffix is not None else ".tmp" + path.suffix,
                               dir=path.parent)
    os.close(fd)
    # mkstemp makes the file 0600; give the output the permissions an ordinary open() would (0666 & ~umask).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_output(path) as tmp:
        Path(tmp).write_text(text)


def publish_dir(tmp: str | os.PathLike, out: str | os.PathLike) -> None:
    """Move the completely written folder ``tmp`` to ``out``; an existing ``out`` is swapped out only then, so
    readers see the old folder or the new one, never a half-written one."""
    import shutil

    tmp, out = Path(tmp), Path(out)
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)
