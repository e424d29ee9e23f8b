"""bigram.environment: the environment is what the project declares, tracked by DVC."""

import re
import subprocess
import sys
import tomllib

import pytest
import yaml

from bigram import environment
from bigram.console import PipelineError
from tests.conftest import ROOT, STAGES, env


def test_requirements_install_exactly_the_pins():
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["bigram"]["pins"]
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    pinned = dict(
        re.fullmatch(r"([\w.-]+)==([\w.]+)", line).groups() for line in lines if "==" in line
    )
    normal = {name.replace(".", "-"): version for name, version in pinned.items()}
    assert {k: normal[k] for k in pins} == pins
    assert set(normal) - set(pins) == {"dvc"}  # the orchestrator: no stage imports it


@pytest.mark.parametrize("name", STAGES)
def test_dvc_tracks_the_pins_of_exactly_the_libraries_each_stage_imports(name):
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][name]
    tracked = [p for p in spec["params"] if isinstance(p, dict)]
    assert tracked == [
        {
            "pyproject.toml": [
                f"tool.bigram.pins.{lib}" for lib in environment.stage_libraries(name, ROOT)
            ]
        }
    ]


def test_no_stage_imports_torch_or_dvc():
    for name in STAGES:
        found = environment.imported(f"stages/{name}.py", ROOT)
        assert found <= set(environment.LIBRARIES), (name, found)
        assert "torch" not in found and "dvc" not in found


def test_safetensors_is_a_library_of_the_model_stages_only():
    uses = {name for name in STAGES if "safetensors" in environment.stage_libraries(name, ROOT)}
    assert uses == {"train", "evaluate", "compare", "sample"}


def test_another_installed_version_is_refused_in_one_line(monkeypatch):
    monkeypatch.chdir(ROOT)
    real = environment._installed
    monkeypatch.setattr(
        environment, "_installed", lambda n, m: "2.4.5" if n == "numpy" else real(n, m)
    )
    with pytest.raises(PipelineError) as e:
        environment.check("prepare")
    assert str(e.value) == (
        "numpy 2.4.5 is installed, but pyproject.toml pins numpy 2.4.6, the version this "
        "pipeline's bytes are recorded with: run `pip install -r requirements.txt` (or change "
        "the pin in [tool.bigram.pins] and requirements.txt, then `dvc repro`)"
    )


def test_a_checkpoint_records_the_train_stages_pins(trained_project):
    from bigram import checkpoint

    meta = checkpoint.read(str(trained_project / "models/model.safetensors"))[1]
    assert meta["versions"] == environment.declared("train", ROOT)
    assert set(meta["versions"]) == {"numpy", "ruamel-yaml", "safetensors"}


# Every stage in turn in one fresh interpreter in which `import torch` fails.
BLOCK_TORCH = """
import runpy, sys
sys.modules["torch"] = None
for name in NAMES:
    sys.argv = ["stage"]
    runpy.run_module("stages." + name, run_name="__main__")
"""


def test_the_whole_pipeline_runs_without_torch_and_writes_the_same_bytes(
    trained_project_template, project
):
    r = subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH.replace("NAMES", repr(STAGES))],
        cwd=project,
        env=env(),
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    # the same bytes as the stages run in the test process (conftest.stage) wrote
    for path in sorted((trained_project_template / "data").rglob("*")) + sorted(
        (trained_project_template / "models").rglob("*")
    ):
        if path.is_file():
            rel = path.relative_to(trained_project_template)
            assert (project / rel).read_bytes() == path.read_bytes(), rel


def test_torch_weights_without_torch_says_how_to_install_it(trained_project, monkeypatch):
    from bigram.api import load

    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` fails, as uninstalled
    monkeypatch.chdir(trained_project)
    model = load("models/model.safetensors")
    with pytest.raises(PipelineError) as e:
        model.torch_weights()
    assert str(e.value).startswith(
        "torch_weights() needs torch, which is not installed: "
        "`pip install neural-bigram-pipeline[torch]`"
    )


def test_the_installed_versions_are_read_as_the_metadata_says():
    from importlib import metadata

    for module, name in environment.LIBRARIES.items():
        assert environment._installed(name, module) == metadata.version(name)
    assert environment._installed("no-such-lib", "no_such_lib") == "not installed"
