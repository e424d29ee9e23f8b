"""The one place params.yaml is read and validated, into typed params.

Every stage validates the whole file before doing any work, so a typo is
reported at once, with the key, the value and what is allowed, instead of
surfacing as a stack trace three stages later. Each param is declared once, as a
field of its section's frozen dataclass that carries its rule: the check, the
allowed values in words and the default (RULES is derived from them, and the
README's params table is checked against them).
"""

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from bigram import fsio
from bigram.console import PipelineError

PARAMS_FILE = "params.yaml"


class Rule(NamedTuple):
    check: Callable[[Any], bool]
    allowed: str  # in words, for messages and the README
    default: object  # the notebook's, and what params.yaml ships with (a test keeps them equal)


def _param(rule: tuple[Callable[[Any], bool], str], default: object) -> Any:
    return field(metadata={"rule": Rule(*rule, default)})


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: object) -> bool:
    # bool is an int in Python; `lr: true` is a typo, not 1.
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# params.yaml holds 16 settings; anything near this size is not a params file.
PARAMS_LIMIT = 64 * 1024
_MAX_NODES = 10_000


def _decode(data: bytes, source: str) -> str:
    if (
        data[:4] in (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")
        or data[:2]
        in (
            b"\xff\xfe",
            b"\xfe\xff",
        )
        or b"\x00" in data
    ):
        raise PipelineError(f"{source} is UTF-16 or UTF-32 text (or binary); save it as UTF-8")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise PipelineError(
            f"{source} line {line}: byte 0x{data[e.start]:02x} is not UTF-8; save it as UTF-8"
        ) from None


def _check_tree(value: object, source: str) -> None:
    """Refuse YAML aliases (one node reached twice: `*name`), which let a few lines
    expand into billions of values, and documents of more than _MAX_NODES nodes."""
    seen: set[int] = set()
    todo = [value]
    while todo:
        node = todo.pop()
        if isinstance(node, (dict, list)):
            if id(node) in seen:
                raise PipelineError(
                    f"{source} uses YAML anchors and aliases (&name, *name); write each value out"
                )
            seen.add(id(node))
            if len(seen) > _MAX_NODES:
                raise PipelineError(f"{source} has more than {_MAX_NODES:,} YAML nodes")
            todo.extend(node.values() if isinstance(node, dict) else node)
            todo.extend(node.keys() if isinstance(node, dict) else ())


def parse_yaml(data: bytes, source: str) -> object:
    """The YAML document in `data`, parsed exactly as DVC parses params.yaml and
    dvc.lock (ruamel.yaml, typ="safe"): `010` is 10 and `1e-3` a number for the
    stages as for `dvc params diff`, and a duplicate key is refused as DVC refuses it."""
    from ruamel.yaml import YAML
    from ruamel.yaml.constructor import DuplicateKeyError
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    text = _decode(data, source)
    try:
        value = YAML(typ="safe").load(text)
    except DuplicateKeyError as e:
        line = e.problem_mark.line + 1 if e.problem_mark else "?"
        raise PipelineError(
            f"{source} line {line}: a key appears twice in one mapping, which DVC refuses; keep one"
        ) from None
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = f" at line {mark.line + 1}" if mark else ""
        raise PipelineError(f"{source} is not valid YAML{line}; fix the syntax") from None
    except (YAMLError, RecursionError, ValueError):
        raise PipelineError(f"{source} is not valid YAML; fix the syntax") from None
    _check_tree(value, source)
    return value


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_SEED = (lambda v: _is_int(v) and 0 <= v < 2**63, "an integer from 0 to 2**63-1")
_FRACTION = (lambda v: is_number(v) and 0 < v < 1, "a number strictly between 0 and 1")
_COUNT = (lambda v: _is_int(v) and v >= 1, "an integer >= 1")


def _bounded(top: int) -> tuple[Callable[[Any], bool], str]:
    # An upper bound keeps a typo (an extra zero or six) from allocating terabytes.
    return (lambda v: _is_int(v) and 1 <= v <= top, f"an integer from 1 to {top:,}")


def _one_of(*values: str) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v in values, " or ".join(repr(v) for v in values))


_PATH = (
    lambda v: isinstance(v, str) and v.strip() != "" and len(v) <= 4096 and "\0" not in v,
    "a path to a names file, relative to the project root",
)


@dataclass(frozen=True)
class DataParams:
    names: str = _param(_PATH, "data/names.txt")


@dataclass(frozen=True)
class SplitParams:
    seed: int = _param(_SEED, 42)
    train: float = _param(_FRACTION, 0.8)
    dev: float = _param(_FRACTION, 0.1)
    unit: str = _param(_one_of("pairs", "names"), "pairs")


@dataclass(frozen=True)
class ModelParams:
    # V^context·V is bounded by the split stage, which knows V; this bound only keeps a
    # typo from making that check build a huge number.
    context: int = _param(_bounded(32), 1)


@dataclass(frozen=True)
class TrainParams:
    seed: int = _param(_SEED, 42)
    lr: float = _param((lambda v: is_number(v) and v > 0, "a finite number > 0"), 50)
    reg: float = _param((lambda v: is_number(v) and v >= 0, "a finite number >= 0"), 0.01)
    steps: int = _param(_bounded(10_000_000), 200)
    checkpoint_every: int = _param(_COUNT, 50)


@dataclass(frozen=True)
class CompareParams:
    smoothing: float = _param(
        (
            lambda v: is_number(v) and v >= 1e-9,
            "a finite number >= 1e-9 (with 0 an unseen bigram gets infinite NLL)",
        ),
        1,
    )
    fit: str = _param(_one_of("train", "all"), "train")


@dataclass(frozen=True)
class SampleParams:
    seed: int = _param(_SEED, 42)
    count: int = _param(_bounded(1_000_000), 20)
    max_length: int = _param(_bounded(100_000), 50)
    temperature: float = _param(
        (lambda v: is_number(v) and 0.01 <= v <= 100, "a number from 0.01 to 100"), 1
    )


@dataclass(frozen=True)
class Params:
    data: DataParams
    split: SplitParams
    model: ModelParams
    train: TrainParams
    compare: CompareParams
    sample: SampleParams


SECTION_TYPES: dict[str, type] = {f.name: f.type for f in fields(Params)}  # type: ignore[misc]
# key -> its rule, in params.yaml's order.
RULES: dict[str, Rule] = {
    f"{section}.{f.name}": f.metadata["rule"]
    for section, cls in SECTION_TYPES.items()
    for f in fields(cls)
}

# The longest sample stage: every name at its longest, drawn and held until written.
MAX_SAMPLE_SYMBOLS = 50_000_000

SECTIONS: dict[str, list[str]] = {}
for _key in RULES:
    _section, _name = _key.split(".")
    SECTIONS.setdefault(_section, []).append(_name)


def defaults() -> dict[str, Any]:
    """params.yaml's contents with every default, as nested dicts."""
    out: dict[str, Any] = {}
    for key, (_, _, default) in RULES.items():
        section, name = key.split(".")
        out.setdefault(section, {})[name] = default
    return out


def validate(raw: object, source: str = PARAMS_FILE) -> dict[str, Any]:
    """Return the params as nested dicts, or raise PipelineError listing every problem."""
    problems = []
    if not isinstance(raw, dict):
        raise PipelineError(f"{source}: expected sections {', '.join(SECTIONS)} at the top level")
    for section, values in raw.items():
        if section not in SECTIONS:
            problems.append(
                f"{source}: unknown section {section!r}; the sections are {', '.join(SECTIONS)}"
            )
        elif not isinstance(values, dict):
            problems.append(
                f"{source}: {section} must be a mapping of keys ({', '.join(SECTIONS[section])})"
            )
        else:
            for name in values:
                if name not in SECTIONS[section]:
                    problems.append(
                        f"{source}: unknown key {section}.{name}; the {section} keys "
                        f"are {', '.join(SECTIONS[section])}"
                    )
    for key, (check, allowed, default) in RULES.items():
        section, name = key.split(".")
        values = raw.get(section)
        if not isinstance(values, dict) or name not in values:
            if section not in raw or isinstance(values, dict):
                problems.append(
                    f"{source}: missing key {key}; add it ({allowed}, default {default!r})"
                )
            continue
        if not check(values[name]):
            problems.append(
                f"{source}: {key} = {_shown(values[name])} is not allowed; use {allowed}"
            )
    names = raw["data"]["names"] if not problems else ""
    if not problems and "\\" in names:
        problems.append(
            f"{source}: data.names = {_shown(names)}: `\\` is not a path separator here; "
            "write the path with `/`"
        )
    if not problems and outside_project(names):
        problems.append(
            f"{source}: data.names = {_shown(names)} is outside the project: DVC cannot cache "
            "it and queued experiments, which run in a copy of the project, cannot see it; copy "
            "it into data/ and track it with `dvc add` (docs/your-own-names.md)"
        )
    draw = raw["sample"] if not problems else {}
    if not problems and draw["count"] * draw["max_length"] > MAX_SAMPLE_SYMBOLS:
        problems.append(
            f"{source}: sample.count × sample.max_length = {draw['count']:,} × "
            f"{draw['max_length']:,} = {draw['count'] * draw['max_length']:.2g} symbols at most; "
            f"the limit is {MAX_SAMPLE_SYMBOLS:,} (under a minute and 1 GiB here): lower either"
        )
    split = raw["split"] if not problems else {}
    if not problems and split["train"] + split["dev"] >= 1:
        problems.append(
            f"{source}: split.train + split.dev = {split['train'] + split['dev']:g} "
            "leaves no test split; make the sum < 1"
        )
    if problems:
        raise PipelineError("\n".join(problems))
    return raw


def flatten(tree: object, prefix: str = "") -> dict[str, object]:
    """{"train.lr": 50, "tool.bigram.pins.numpy": "2.4.6", ...} of nested mappings, as DVC
    names params (dvc.lock keeps params.yaml's sections nested and other files' keys
    dotted); {} from anything that is not a mapping (a broken file is reported as the
    mismatches it causes)."""
    out: dict[str, object] = {}
    for key, value in tree.items() if isinstance(tree, dict) else ():
        full = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, full + "."))
        else:
            out[full] = value
    return out


def outside_project(path: str) -> bool:
    """An absolute path, or one that climbs out of the project with '..'."""
    lexical = os.path.normpath(path)
    return os.path.isabs(path) or lexical == ".." or lexical.startswith("../")


def typed(raw: dict[str, Any]) -> Params:
    """Params from validated nested dicts. Values keep the type they were
    written with (lr 50 stays an int), as DVC shows and records them."""
    return Params(**{section: SECTION_TYPES[section](**raw[section]) for section in SECTIONS})


def load(path: str | Path = PARAMS_FILE) -> Params:
    """Read, validate and type params.yaml, or raise PipelineError in one line per problem."""
    data = fsio.read_bounded(path, PARAMS_LIMIT, "run from the project root, where params.yaml is")
    raw = parse_yaml(data, str(path))
    if raw is None:
        raise PipelineError(
            f"{path} is empty; restore it (`git checkout {path}`) or write its sections "
            f"({', '.join(SECTIONS)})"
        )
    return typed(validate(raw, str(path)))


S = TypeVar("S")


def section(cls: type[S], values: object, source: str) -> S:
    """One validated, typed section (e.g. the train params recorded in a checkpoint:
    section(TrainParams, ...)), checked by the same rules as params.yaml."""
    name = next(n for n, t in SECTION_TYPES.items() if t is cls)
    if not isinstance(values, dict) or set(values) != set(SECTIONS[name]):
        raise PipelineError(f"{source}: {name} params must be exactly {', '.join(SECTIONS[name])}")
    bad = [
        f"{name}.{key} = {values[key]!r}"
        for key in SECTIONS[name]
        if not RULES[f"{name}.{key}"].check(values[key])
    ]
    if bad:
        raise PipelineError(f"{source}: {', '.join(bad)} not allowed (see params.yaml's rules)")
    return cls(**values)
