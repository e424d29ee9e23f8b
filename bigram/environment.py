"""The environment as the project declares it, not as it happens to be installed.

The exact versions of the libraries the stages import are pinned once, in
pyproject.toml's [tool.bigram.pins] (requirements.txt installs the same pins; a test
holds them equal). A stage depends on the pins of the libraries its code imports (its
import closure, as for its code deps): dvc.yaml tracks those pins as params, so changing
one reruns exactly the stages that use that library; checkpoints record the train stage's
pins; and a stage refuses to run under other versions than the pinned ones, so an
artifact's bytes never change silently with an upgrade.
"""

import importlib
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from bigram.codedeps import PACKAGES, imported_roots, stage_entry
from bigram.console import PipelineError

PINS_FILE = "pyproject.toml"
PINS_KEY = "tool.bigram.pins"
# The libraries stage code may import: import name -> pin (PyPI distribution) name.
LIBRARIES = {"numpy": "numpy", "ruamel": "ruamel-yaml", "safetensors": "safetensors"}


def imported(entry: str, root: str | Path = ".") -> set[str]:
    """The top-level names of every module outside the project and the standard library
    that the code of `entry` imports (its whole import closure)."""
    return imported_roots(entry, root) - set(PACKAGES) - set(sys.stdlib_module_names)


def stage_libraries(stage: str, root: str | Path = ".") -> list[str]:
    """The pin names of the libraries `stage` imports."""
    names = imported(stage_entry(stage), root)
    unknown = sorted(names - set(LIBRARIES))
    if unknown:  # a new library needs a pin before a stage may use it
        raise PipelineError(
            f"{stage_entry(stage)} imports {', '.join(unknown)}, which {PINS_FILE} does not "
            f"pin; add it to [{PINS_KEY}] and to bigram.environment.LIBRARIES"
        )
    return sorted(LIBRARIES[n] for n in names)


def pins(root: str | Path = ".", text: str | None = None) -> dict[str, str]:
    """[tool.bigram.pins] of pyproject.toml (or of `text`, its content elsewhere): pin
    name -> exact version."""
    try:
        if text is None:
            text = (Path(root) / PINS_FILE).read_text(encoding="utf-8")
        table = tomllib.loads(text)["tool"]["bigram"]["pins"]
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, KeyError, TypeError):
        raise PipelineError(
            f"{PINS_FILE}: no [{PINS_KEY}] table of exact versions; run from the project root "
            f"(`git checkout {PINS_FILE}` restores it)"
        ) from None
    return {str(k): str(v) for k, v in table.items()}


def declared(
    stage: str, root: str | Path = ".", pinned: dict[str, str] | None = None
) -> dict[str, str]:
    """The pinned versions of the libraries `stage` imports: what its artifacts record
    (`pinned`: the pins to use instead of root's pyproject.toml's)."""
    pinned = pins(root) if pinned is None else pinned
    libraries = stage_libraries(stage, root)
    missing = [name for name in libraries if name not in pinned]
    if missing:
        raise PipelineError(
            f"{PINS_FILE}: [{PINS_KEY}] has no pin for {', '.join(missing)}, which "
            f"{stage_entry(stage)} imports; add it"
        )
    return {name: pinned[name] for name in libraries}


def _installed(name: str, module: str) -> str:
    """The installed version: the module's own __version__ (the stage imports it anyway),
    or the distribution's metadata, which is slower to find."""
    try:
        found = importlib.import_module(_VERSION_MODULE.get(module, module)).__version__
        if isinstance(found, str):
            return found
    except (ImportError, AttributeError):
        pass
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


# Where a library's __version__ is, when not in its top-level package.
_VERSION_MODULE = {"ruamel": "ruamel.yaml"}


def check(stage: str) -> None:
    """Refuse to run `stage` under other library versions than the pinned ones."""
    modules = {pin_name: module for module, pin_name in LIBRARIES.items()}
    for name, pin in declared(stage).items():
        installed = _installed(name, modules[name])
        if installed != pin:
            raise PipelineError(
                f"{name} {installed} is installed, but {PINS_FILE} pins {name} {pin}, the "
                f"version this pipeline's bytes are recorded with: run `pip install -r "
                f"requirements.txt` (or change the pin in [{PINS_KEY}] and requirements.txt, "
                "then `dvc repro`)"
            )
