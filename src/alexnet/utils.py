"""Small shared helpers: the one place outputs are opened (atomic, checked, one-line errors)."""
from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from .errors import OutputError

_ERRNO_TEXT = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
               errno.EACCES: "permission denied", errno.EPERM: "permission denied",
               errno.EROFS: "read-only file system", errno.EEXIST: "exists", errno.ENOTDIR: "a path part is a file",
               errno.EISDIR: "is a folder", errno.ENAMETOOLONG: "name too long", errno.ELOOP: "symlink loop",
               errno.EFBIG: "file too large (over the file-size limit)"}
TMP_MARK = ".alexnet-tmp"     # every temporary output is named .NAME.PID.RANDOM.alexnet-tmp[.SUFFIX]


def output_error(path: str | os.PathLike, e: OSError) -> OutputError:
    """One line naming the output and what is wrong with writing it."""
    reason = _ERRNO_TEXT.get(e.errno or -1) or (e.strerror or type(e).__name__)
    return OutputError(f"cannot write {path}: {reason}")


def prepare_output_dir(folder: str | os.PathLike) -> Path:
    """Create ``folder`` (and parents) for outputs; a one-line OutputError if that is impossible or not writable."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"cannot write into {folder}: it is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise output_error(folder, e) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write into {folder}: permission denied")
    return folder


def check_writable(path: str | os.PathLike, folder: bool = False) -> None:
    """Before any work: can ``path`` (a file, or a folder when ``folder``) be created? Writes nothing."""
    path = Path(path)
    if path.exists():
        if folder and not path.is_dir():
            raise OutputError(f"cannot write into {path}: it is a file, not a folder")
        if not folder and path.is_dir():
            raise OutputError(f"cannot write {path}: it is a folder; give a file name")
        target = path if folder else path.parent
        if not os.access(target, os.W_OK | os.X_OK):
            raise OutputError(f"cannot write {'into ' if folder else ''}{path}: permission denied")
        return
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"cannot write {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {path}: {parent} is not writable")


def check_output(path: str | os.PathLike, overwrite: bool = True) -> Path:
    """Before any work: ``path`` can be written, and (unless ``overwrite``) does not exist yet. Writes nothing.

    Verbs call this first, so a mistake in ``-o`` costs nothing; ``atomic_output`` checks again when it writes."""
    path = Path(path)
    _refuse_existing(path, overwrite)
    check_writable(path)
    return path


def sweep_stale_temporaries(folder: str | os.PathLike, name: str | None = None) -> int:
    """Remove temporaries of ours left by killed writers (their process is gone); returns how many."""
    removed = 0
    pattern = f".{name}.*{TMP_MARK}*" if name else f".*{TMP_MARK}*"
    for p in Path(folder).glob(pattern):
        parts = p.name.split(".")
        pid = next((int(x) for x in parts[2:-1] if x.isdigit()), None)
        if pid is None or pid == os.getpid() or _alive(pid):
            continue
        with contextlib.suppress(OSError):
            p.unlink()
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, suffix: str | None = None, overwrite: bool = True):
    """Yield a temporary path in the same folder; rename it onto ``path`` only if the block succeeds.

    The one place outputs are opened: the folder is created and checked writable first; a killed or failing writer
    never leaves a truncated file at ``path`` (the old file, if any, stays) nor its temporary file (killed writers'
    temporaries are swept by the next writer in that folder); an OSError (full disk, read-only place, ...) becomes a
    one-line OutputError naming ``path``. ``overwrite=False`` refuses an existing ``path``. ``suffix`` keeps an
    extension on the temp file for writers that infer the format from it (PNG, ...).
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder; give a file name")
    _refuse_existing(path, overwrite)
    created = _missing_folders(path.parent)
    prepare_output_dir(path.parent)
    sweep_stale_temporaries(path.parent, path.name)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.",
                                   suffix=TMP_MARK + (suffix if suffix is not None else path.suffix), dir=path.parent)
    except OSError as e:
        _remove_folders(created)
        raise output_error(path, e) from None
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
    except OSError as e:
        _remove(tmp)
        _remove_folders(created)
        raise output_error(path, e) from None
    except BaseException:
        _remove(tmp)
        _remove_folders(created)
        raise


def _refuse_existing(path: Path, overwrite: bool) -> None:
    if not overwrite and (path.exists() or path.is_symlink()):
        raise OutputError(f"{path} exists; pass --overwrite to replace it, or choose another output name")


def _remove(tmp: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)


def _missing_folders(folder: Path) -> list[Path]:
    """The folders (deepest first) that creating ``folder`` would make."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _remove_folders(folders: list[Path]) -> None:
    """Remove folders a failed write created, deepest first, if they are still empty."""
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """The hex digest of a file's bytes (``hashlib`` algorithm name), read in 1 MiB chunks."""
    import hashlib

    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_output(path) as tmp:
        Path(tmp).write_text(text)


def write_bytes_atomic(path: str | os.PathLike, data: bytes, overwrite: bool = True) -> Path:
    """``data`` as the file ``path``, atomically, written by Python's own ``write`` (so a full disk is an
    OSError we turn into one line, never a C++ abort inside a library's writer)."""
    with atomic_output(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
    return Path(path)


class ErrorRecordingFile:
    """A binary file wrapper that remembers the OSError of a failed ``write``.

    Writers in C++ (``torch.save`` to a file object) turn a failed write into a RuntimeError without the errno;
    ``raise_recorded()`` re-raises the original OSError (ENOSPC, EFBIG, ...) so ``atomic_output`` can name it."""

    def __init__(self, f):
        self._f = f
        self.error: OSError | None = None

    def write(self, data) -> int:
        try:
            return self._f.write(data)
        except OSError as e:
            self.error = e
            raise

    def flush(self) -> None:
        self._f.flush()

    def raise_recorded(self) -> None:
        if self.error is not None:
            raise self.error


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
