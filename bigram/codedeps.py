"""Which project files a module runs: the transitive closure of its imports
within the project. dvc.yaml's code deps of each stage and the code identity
recorded in checkpoints are both this closure, so neither can drift from the
code (a test compares dvc.yaml with it)."""

import ast
import functools
from pathlib import Path

PACKAGES = ("bigram", "stages")


def _file_of(module: str, root: Path) -> Path | None:
    parts = module.split(".")
    if parts[0] not in PACKAGES:
        return None
    base = root.joinpath(*parts)
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None  # a name imported from a module, not a module


def _imported_modules(path: Path) -> frozenset[str]:
    st = path.stat()
    return _parsed_imports(path, st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=512)
def _parsed_imports(path: Path, mtime_ns: int, size: int) -> frozenset[str]:
    # Cached by content's stamp: a stage asks for its closure several times (its code
    # identity, its pinned libraries), and parsing ~20 files is most of a stage's start-up.
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from bigram import artifacts` imports a module by a name in a package.
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
    return frozenset(".".join(m.split(".")[:i]) for m in found for i in range(1, m.count(".") + 2))


def imported_roots(entry: str, root: str | Path = ".") -> set[str]:
    """The top-level names of every module that the files code_files(entry) lists import
    (project packages, the standard library and third-party libraries alike)."""
    return {
        m.split(".")[0] for p in code_files(entry, root) for m in _imported_modules(Path(root) / p)
    }


def code_files(entry: str, root: str | Path = ".") -> list[str]:
    """Sorted paths, relative to `root`, of the file `entry` and of every project
    file that running it imports, directly or not (package __init__ files too)."""
    root = Path(root)
    start = root / entry
    parts = Path(entry).with_suffix("").parts
    seen = {start} | {f for i in range(1, len(parts)) if (f := _file_of(".".join(parts[:i]), root))}
    todo = list(seen)
    while todo:
        for module in _imported_modules(todo.pop()):
            path = _file_of(module, root)
            if path is not None and path not in seen:
                seen.add(path)
                todo.append(path)
    return sorted(p.relative_to(root).as_posix() for p in seen)


def blob_id(data: bytes) -> str:
    """git's blob id of a file's content (`git hash-object`): the same for a committed
    file and an uncommitted one, computed without git."""
    import hashlib

    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def code_digests(entry: str, root: str | Path = ".") -> dict[str, str]:
    """{path: git blob id} of every file code_files(entry, root) lists: what the code
    *is*, whatever the history around it (a shallow clone, a rebase, uncommitted work)."""
    return {p: blob_id((Path(root) / p).read_bytes()) for p in code_files(entry, root)}


def stage_entry(stage: str) -> str:
    """The module a DVC stage runs (dvc.yaml's `python -m stages.<stage>`)."""
    return f"stages/{stage}.py"
