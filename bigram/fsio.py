"""Files, safely: bounded reads of regular files only, all-or-nothing writes of a
stage's outputs, and OS errors told as one line that names the file.

A stage reads what users and other programs hand it (a names file, params.yaml,
artifacts, checkpoints from anywhere): a FIFO must not hang it, /dev/zero must not
exhaust memory. It writes every output to a temporary file beside its final name
and renames them all into place only when the whole stage has succeeded, so a
stage that fails, is killed or runs out of disk leaves its previous outputs
exactly as they were.
"""

import errno
import fcntl
import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from bigram.console import PipelineError

_REASONS = {
    errno.ENOENT: "no such file",
    errno.EISDIR: "it is a directory",
    errno.ENOTDIR: "a part of its path is a file, not a directory",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.ELOOP: "too many levels of symbolic links (a symlink loop?)",
    errno.ENAMETOOLONG: "file name too long",
    errno.ENOSPC: "no space left on the disk",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "over the file size limit (`ulimit -f`)",
}


def reason(e: OSError) -> str:
    """What went wrong, in words, naming the real cause (not always 'permissions')."""
    fallback = e.strerror or type(e).__name__
    return _REASONS.get(e.errno, fallback) if e.errno is not None else fallback


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: str | Path, hint: str) -> IO[bytes]:
    """`path` opened for reading in binary, refusing anything but a regular file without
    waiting on it (a FIFO would hang the reader, a device never ends)."""
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise PipelineError(f"{path}: {reason(e)}; {hint}") from None
    except ValueError:
        raise PipelineError(f"{str(path)!r}: a path cannot contain a NUL byte; {hint}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise PipelineError(f"{path} is {_kind(st.st_mode)}, not a file; {hint}")
    return os.fdopen(fd, "rb")


def read_bounded(path: str | Path, limit: int, hint: str) -> bytes:
    """The bytes of the regular file `path`, refusing more than `limit` bytes."""
    with open_regular(path, hint) as f:
        st = os.fstat(f.fileno())
        if st.st_size > limit:
            raise PipelineError(
                f"{path} is {st.st_size:,} bytes, over the limit of {limit:,}; {hint}"
            )
        try:
            # Not read(limit + 1): that reserves the whole limit up front, which a memory
            # limit (ulimit -v) refuses even for a small file.
            data = f.read(st.st_size + 1)
        except OSError as e:
            raise PipelineError(f"{path}: {reason(e)}; {hint}") from None
    if len(data) > st.st_size:
        raise PipelineError(f"{path} grew while it was read; run again once it is written")
    return data


def _dvc_cache_dirs() -> list[str]:
    """Where DVC's cache is, as this project's, the user's and the system's DVC config say
    (`cache.dir`; default .dvc/cache): a file DVC links into the workspace lives there."""
    dirs = [os.path.realpath(".dvc/cache")]
    configs = [".dvc/config", ".dvc/config.local"]
    configs += [os.path.expanduser("~/.config/dvc/config"), "/etc/xdg/dvc/config"]
    for config in configs:
        try:
            lines = Path(config).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        section = ""
        for line in lines:
            if m := re.fullmatch(r"\s*\[\s*'?([^\]']+)'?\s*\]\s*", line):
                section = m[1].strip()
            elif section == "cache" and (m := re.fullmatch(r"\s*dir\s*=\s*(.+?)\s*", line)):
                base = os.path.dirname(config)  # a relative cache.dir is relative to its config
                dirs.append(os.path.realpath(os.path.join(base, os.path.expanduser(m[1]))))
    return dirs


def within_project(path: str | Path) -> bool:
    """Whether `path`, its symbolic links followed, is inside the project (the current
    directory) or in DVC's cache, which a workspace file may link to (cache.type symlink)."""
    real = os.path.realpath(path)
    for root in [os.path.realpath("."), *_dvc_cache_dirs()]:
        if os.path.commonpath([root, real]) == root:
            return True
    return False


# --- writing -----------------------------------------------------------------------

_TEMP = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.tmp")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # gone, or no pid at all
        return False
    except PermissionError:
        return True
    return True


_swept: set[Path] = set()


def _sweep(directory: Path) -> None:
    """Remove temporary files that killed runs left in `directory`, once per process:
    only those whose process is gone, never another live run's."""
    if directory in _swept:
        return
    _swept.add(directory)
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        m = _TEMP.fullmatch(entry.name)
        if m and int(m["pid"]) != os.getpid() and not _alive(int(m["pid"])):
            Path(entry.path).unlink(missing_ok=True)


def _write_error(path: Path, e: OSError) -> PipelineError:
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = "free some space and run again; the previous outputs are kept"
    elif e.errno == errno.EFBIG:
        fix = "raise the limit and run again; the previous outputs are kept"
    elif e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = f"make {path.parent} writable; the previous outputs are kept"
    elif e.errno in (errno.ENOTDIR, errno.EEXIST):
        blocking = next(
            (d for d in reversed(path.parents) if d.exists() and not d.is_dir()), path.parent
        )
        return PipelineError(
            f"cannot write {path}: {blocking} is a file where a directory should "
            "be; move it away (the previous outputs are kept)"
        )
    else:
        fix = "the previous outputs are kept"
    return PipelineError(f"cannot write {path}: {reason(e)}; {fix}")


class _Outputs:
    """The outputs of one stage run: temporary files waiting to be renamed into place,
    and files to remove, all at once at the end."""

    def __init__(self) -> None:
        self.pending: dict[Path, Path] = {}
        self.removals: list[Path] = []
        self.created: list[Path] = []  # directories made for the outputs, deepest last

    def commit(self) -> None:
        with _project_lock():
            for final, tmp in self.pending.items():
                try:
                    os.replace(tmp, final)
                except OSError as e:  # atomic() refused a directory there: a race
                    raise _write_error(final, e) from None
            for path in self.removals:
                path.unlink(missing_ok=True)
            for directory in {p.parent for p in [*self.pending, *self.removals]}:
                sync_directory(directory)

    def abort(self) -> None:
        for tmp in self.pending.values():
            tmp.unlink(missing_ok=True)
        for directory in reversed(self.created):
            try:
                directory.rmdir()  # only if still empty: it existed for these outputs alone
            except OSError:
                pass


_current: _Outputs | None = None


def sync_directory(directory: Path) -> None:
    """Make the renames in `directory` durable: without it a power loss right after a stage
    can leave a renamed file empty or missing."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot sync a directory: nothing more to do
        pass
    finally:
        os.close(fd)


@contextmanager
def _project_lock() -> Iterator[None]:
    # Two runs of a stage at once each commit a whole, consistent set of outputs,
    # one after the other: their renames never interleave.
    fd = os.open(".", os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextmanager
def stage_outputs() -> Iterator[None]:
    """Within this block every write_* of bigram.artifacts goes to a temporary file;
    they all take their final names when the block ends without error, and none
    does otherwise (an error, Ctrl-C, a full disk)."""
    global _current
    outputs = _current = _Outputs()
    try:
        yield
        outputs.commit()
        outputs.created.clear()
    finally:
        outputs.abort()  # after a commit nothing is left to remove
        _current = None


def remove(path: str | Path) -> None:
    """Remove `path` together with the other outputs' commit (at once outside a block)."""
    if _current is not None:
        _current.removals.append(Path(path))
    else:
        Path(path).unlink(missing_ok=True)


@contextmanager
def atomic(path: str | Path, binary: bool = False) -> Iterator[IO[Any]]:
    """A file object for `path`'s new content, written to a temporary file that takes
    `path`'s name only once whole (or with the other outputs, in a stage_outputs block)."""
    path = Path(path)
    if path.is_dir():  # os.replace cannot put a file there, and the rename comes last
        raise PipelineError(
            f"cannot write {path}: a directory is in its place; move it away "
            "(the previous outputs are kept)"
        )
    missing = [d for d in (path.parent, *path.parent.parents) if not d.exists()]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _write_error(path, e) from None
    if _current is not None:
        _current.created.extend(reversed(missing))
    _sweep(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    encoding, newline = (None, None) if binary else ("utf-8", "\n")
    try:
        try:
            with open(tmp, "wb" if binary else "w", encoding=encoding, newline=newline) as f:
                yield f
                f.flush()
                os.fsync(f.fileno())  # the content on disk before the name points at it
        except OSError as e:
            raise _write_error(path, e) from None
        if _current is None:
            os.replace(tmp, path)
            sync_directory(path.parent)
        else:
            _current.pending[path] = tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        if _current is not None:
            _current.pending.pop(path, None)
        raise
