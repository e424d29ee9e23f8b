"""dvc.yaml's code deps are each stage's real import closure, and tools are in none."""

import textwrap

import pytest
import yaml

from bigram.codedeps import blob_id, code_files
from bigram.lineage import stage_code
from tests.conftest import ROOT, sh


def dvc_stages():
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("name", list(dvc_stages()))
def test_each_stage_depends_on_exactly_the_code_it_imports(name):
    stage = dvc_stages()[name]
    assert stage["cmd"] == f"python -m stages.{name}"
    declared = {d for d in stage["deps"] if d.endswith(".py")}
    assert declared == set(code_files(f"stages/{name}.py", ROOT))


@pytest.mark.parametrize("name", ["prepare", "split", "train"])
def test_a_records_code_covers_the_stages_deps_by_git_blob_id(monkeypatch, name):
    monkeypatch.chdir(ROOT)
    code = stage_code(name)
    assert set(code) == {d for d in dvc_stages()[name]["deps"] if d.endswith(".py")}
    # the id git itself gives the content, committed or not
    path = f"stages/{name}.py"
    assert code[path] == sh(["git", "hash-object", path], ROOT).stdout.strip()


@pytest.mark.parametrize("content", [b"", b"x = 1\n", bytes(range(256)) * 40])
def test_blob_id_is_gits(tmp_path, content):
    (tmp_path / "f").write_bytes(content)
    assert blob_id(content) == sh(["git", "hash-object", "f"], tmp_path).stdout.strip()


def test_editing_a_tool_reruns_no_stage():
    deps = {d for stage in dvc_stages().values() for d in stage["deps"]}
    for tool in ("bigram/audit.py", "bigram/cli.py", "bigram/select.py", "bigram/__main__.py"):
        assert tool not in deps


def test_closure_follows_imports_transitively_and_ignores_others(tmp_path):
    (tmp_path / "stages").mkdir()
    (tmp_path / "bigram").mkdir()
    files = {
        "stages/__init__.py": "",
        "stages/s.py": "import os\nfrom bigram import a\nfrom bigram.b import thing\n",
        "bigram/__init__.py": "",
        "bigram/a.py": "def f():\n    import bigram.c\n",  # an import inside a function counts
        "bigram/b.py": "thing = 1\n",
        "bigram/c.py": "import numpy\n",
        "bigram/unused.py": "import bigram.a\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).write_text(textwrap.dedent(text))
    assert code_files("stages/s.py", tmp_path) == [
        "bigram/__init__.py",
        "bigram/a.py",
        "bigram/b.py",
        "bigram/c.py",
        "stages/__init__.py",
        "stages/s.py",
    ]


def test_the_committed_lock_was_recorded_with_this_code_and_these_pins():
    """A stale dvc.lock makes a fresh clone's `dvc repro` rewrite it: caught here, in the
    quick loop, instead of by the README's flow."""
    import hashlib
    import tomllib

    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"]
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["bigram"]["pins"]
    for name, entry in lock.items():
        for dep in entry["deps"]:
            if dep["path"].endswith(".py"):
                found = hashlib.md5((ROOT / dep["path"]).read_bytes()).hexdigest()
                assert dep["md5"] == found, f"{name}: {dep['path']} changed; run `dvc repro`"
        for key, value in entry["params"].get("pyproject.toml", {}).items():
            assert pins[key.removeprefix("tool.bigram.pins.")] == value, (name, key)
