"""bigram.audit: `bigram lineage` on real `dvc repro` runs."""

import hashlib
import json
import re
import shutil
import sys

import pytest
import yaml

from tests.conftest import ROOT, dvc, sh


def dvc_deps(stage):
    deps = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][stage]["deps"]
    return [d for d in deps if d.endswith(".py")]


MODEL = "models/model.safetensors"


def lineage(repo, *args):
    return sh([sys.executable, "-m", "bigram", "lineage", *args], repo, check=False)


pytestmark = pytest.mark.slow


@pytest.fixture
def trained(trained_repo):
    return trained_repo


def assert_disagrees(result, *patterns):
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for pattern in patterns:
        assert re.search(pattern, result.stdout), (pattern, result.stdout)


def test_checkpoints_are_self_describing(trained):
    names_md5 = hashlib.md5((trained / "data/names.txt").read_bytes()).hexdigest()
    shown = lineage(trained, "--json", MODEL)
    assert shown.returncode == 0, shown.stderr
    meta = json.loads(shown.stdout)
    assert meta["md5"] == hashlib.md5((trained / MODEL).read_bytes()).hexdigest()
    assert [s["stage"] for s in meta["lineage"]] == ["prepare", "split", "train"]
    assert meta["lineage"][0]["inputs"] == {"data/names.txt": names_md5}
    assert meta["lineage"][1]["params"]["split"]["seed"] == 42
    assert meta["lineage"][2]["params"]["train"]["lr"] == 50
    assert meta["step"] == 200
    assert meta["schema"] == 2 and "code" not in meta  # the code is in each record
    for link in meta["lineage"]:  # each file of the stage's code by git's own blob id
        assert link["code"] == {
            path: sh(["git", "rev-parse", f"HEAD:{path}"], trained).stdout.strip()
            for path in dvc_deps(link["stage"])
        }
    assert meta["versions"] == {"numpy": "2.4.6", "ruamel-yaml": "0.19.1", "safetensors": "0.8.0"}
    steps = sorted(p.name for p in (trained / "models/checkpoints").iterdir())
    assert steps == [f"step_{s:06d}.safetensors" for s in (0, 50, 100, 150, 200)]
    assert (trained / "models/checkpoints/step_000200.safetensors").read_bytes() == (
        trained / MODEL
    ).read_bytes()
    prev = (trained / "models/checkpoints/step_000150.safetensors").read_bytes()
    assert meta["previous"] == {
        "path": "models/checkpoints/step_000150.safetensors",
        "md5": hashlib.md5(prev).hexdigest(),
        "sha256": hashlib.sha256(prev).hexdigest(),
    }
    text = lineage(trained, MODEL).stdout
    assert names_md5 in text and "train.lr=50" in text and "split.seed=42" in text
    # The notebook's loss table as a plot: one row per checkpoint.
    rows = (trained / "plots/eval_steps.csv").read_text().splitlines()
    assert rows[0] == "step,train,dev,test"
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "50", "100", "150", "200"]


def test_verify_passes_on_a_fresh_run(trained):
    for ckpt in (MODEL, "models/checkpoints/step_000050.safetensors"):
        r = lineage(trained, "--verify", ckpt)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "bit-identical" in r.stdout


def test_verify_catches_an_edited_names_file(trained):
    with open(trained / "data/names.txt", "a") as f:
        f.write("zelda\n")
    result = lineage(trained, "--verify", MODEL)
    assert_disagrees(result, r"^data/names.txt md5: recorded '\w+', found '\w+'$")
    assert result.stdout.count("\n") == 1  # the one thing that changed, said once


def test_verify_catches_a_param_not_yet_reproduced(trained):
    text = (trained / "params.yaml").read_text().replace("lr: 50", "lr: 10")
    (trained / "params.yaml").write_text(text)
    assert_disagrees(
        lineage(trained, "--verify", MODEL), r"params.yaml train.lr: recorded 50, found 10"
    )


def test_verify_catches_a_checkpoint_from_another_run(trained, tmp_path):
    dvc(trained, "exp", "run", "-S", "train.lr=10")
    shutil.copy(trained / MODEL, tmp_path / "other.safetensors")
    sh(["git", "checkout", "--", "."], trained)
    dvc(trained, "checkout")  # back to the baseline's outputs, from the DVC cache
    assert lineage(trained, "--verify", MODEL).returncode == 0
    shutil.copy(tmp_path / "other.safetensors", trained / MODEL)
    assert_disagrees(
        lineage(trained, "--verify", MODEL),
        r"params.yaml train.lr: recorded 10, found 50",
        r"but dvc.lock \(train\) records \w+ for models/model.safetensors",
    )


def test_verify_catches_altered_bytes(trained):
    data = bytearray((trained / MODEL).read_bytes())
    data[-1] ^= 0x01  # the last float of W
    (trained / MODEL).write_bytes(bytes(data))
    assert_disagrees(
        lineage(trained, "--verify", MODEL),
        r"(?m)^train: models/model.safetensors is not the checkpoint re-derived from "
        r"data/names.txt at step 200: 1 of 21 rows of W differ, at most 16,777,216 ulps "
        r"\(row 'z'\)$",  # the exponent's lowest bit of the last float: 2**24 float32 steps
        r"but dvc.lock \(train\) records \w+ for models/model.safetensors",
        r"but models/checkpoints/step_000200.safetensors in the workspace has md5",
    )


def test_uncommitted_code_verifies_and_a_later_edit_is_named_exactly(trained):
    with open(trained / "bigram/training.py", "a") as f:
        f.write("# an uncommitted edit\n")
    dvc(trained, "repro")
    r = lineage(trained, "--verify", MODEL)  # the workspace holds the code that ran
    assert r.returncode == 0, r.stdout
    assert "the checkpoint at step 200, bit-identical" in r.stdout
    sh(["git", "checkout", "--", "bigram/training.py"], trained)
    assert_disagrees(
        lineage(trained, "--verify", MODEL),
        r"(?m)^code: bigram/training.py in the workspace \(blob \w{12}\) is not the code the "
        r"train stage ran \(blob \w{12}\); run `dvc repro`$",
        r"(?m)^not re-derived: this audit runs other code than the train stage that made the "
        r"checkpoint \(bigram/training.py differs\); no commit in this repository holds it$",
    )
    assert lineage(trained, "--verify", MODEL).stdout.count("code: ") == 1  # that file only


def test_an_experiment_on_uncommitted_code_verifies_at_its_rev(trained):
    with open(trained / "stages/train.py", "a") as f:
        f.write("# an uncommitted edit\n")
    out = dvc(trained, "exp", "run", "-S", "train.lr=10").stdout
    exp = re.search(r"Ran experiment\(s\): (\S+)", out).group(1)
    sh(["git", "checkout", "--", "."], trained)
    dvc(trained, "checkout")
    r = lineage(trained, "--verify", "--rev", exp, MODEL)
    # the experiment's commit holds the code that ran, but this audit runs the committed one
    assert r.returncode == 2, r.stdout + r.stderr
    assert re.search(
        r"(?m)^not re-derived: this audit runs other code than the train stage that made the "
        r"checkpoint \(stages/train.py differs\); verify from a checkout of commit \w{12}, "
        r"which holds it$",
        r.stdout,
    )
    assert "bit-identical" not in r.stdout
    dvc(trained, "exp", "apply", exp)  # the experiment's code in the workspace: all of it proven
    r = lineage(trained, "--verify", "--rev", exp, MODEL)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "the checkpoint at step 200, bit-identical" in r.stdout


def test_verify_at_a_revision_and_an_experiment(trained):
    out = dvc(trained, "exp", "run", "-S", "train.lr=10").stdout
    exp = re.search(r"Ran experiment\(s\): (\S+)", out).group(1)
    r = lineage(trained, "--verify", "--rev", exp, MODEL)
    assert r.returncode == 0, r.stdout + r.stderr
    shown = json.loads(lineage(trained, "--json", "--rev", exp, MODEL).stdout)
    assert shown["lineage"][2]["params"]["train"]["lr"] == 10
    sh(["git", "checkout", "--", "."], trained)
    dvc(trained, "checkout")
    # The baseline commit still verifies, and its checkpoint is the lr=50 one.
    assert lineage(trained, "--verify", "--rev", "HEAD", MODEL).returncode == 0
    at_head = json.loads(lineage(trained, "--json", "--rev", "HEAD", MODEL).stdout)
    assert at_head["lineage"][2]["params"]["train"]["lr"] == 50
    bad = lineage(trained, "--rev", "no-such-rev", MODEL)
    assert bad.returncode == 1 and "no such git revision or DVC experiment" in bad.stderr


def test_a_trigram_experiment_verifies_and_a_forged_context_is_caught(trained):
    dvc(trained, "exp", "run", "-S", "model.context=2")
    r = lineage(trained, "--verify", MODEL)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "the checkpoint at step 200, bit-identical" in r.stdout
    shown = json.loads(lineage(trained, "--json", MODEL).stdout)
    assert shown["lineage"][1]["params"]["model"] == {"context": 2}
    # params.yaml back to the bigram: the recorded context no longer agrees
    text = (trained / "params.yaml").read_text().replace("context: 2", "context: 1")
    (trained / "params.yaml").write_text(text)
    assert_disagrees(
        lineage(trained, "--verify", MODEL), r"params.yaml model.context: recorded 2, found 1"
    )


def test_two_cold_runs_in_separate_clones_are_byte_identical(trained, tmp_path):
    outs = []
    for name in ("a", "b"):
        clone = tmp_path / name
        sh(["git", "clone", "-q", str(trained), str(clone)], tmp_path)
        dvc(clone, "repro", "--force")
        lock = yaml.safe_load((clone / "dvc.lock").read_text())
        outs.append(
            {(s, o["path"]): o["md5"] for s, e in lock["stages"].items() for o in e.get("outs", [])}
        )
    assert outs[0] == outs[1]
    declared = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert len(outs[0]) == sum(
        len(s.get(k, [])) for s in declared.values() for k in ("outs", "metrics", "plots")
    )  # all of them compared
    # ... and equal to the run committed in the original repo.
    committed = yaml.safe_load((trained / "dvc.lock").read_text())
    assert outs[0] == {
        (s, o["path"]): o["md5"] for s, e in committed["stages"].items() for o in e.get("outs", [])
    }


@pytest.mark.parametrize(
    "target, content, pattern",
    [
        ("params.yaml", "- a\n", r"(?m)^params.yaml train.lr: recorded 50, found 'missing'$"),
        (
            "dvc.lock",
            "stages: []\n",
            r"(?m)^dvc.lock: missing or not a DVC lock file in the workspace",
        ),
    ],
)
def test_verify_reports_broken_params_or_lock_files(trained, target, content, pattern):
    (trained / target).write_text(content)
    r = lineage(trained, "--verify", MODEL)
    assert_disagrees(r, pattern)


def checks_made(result):
    return int(re.search(r": (\d+) checks agree", result.stdout).group(1))


def test_verify_reads_directory_manifests_wherever_the_cache_is(trained, tmp_path):
    before = lineage(trained, "--verify", MODEL)
    assert before.returncode == 0, before.stdout
    shutil.move(trained / ".dvc/cache", tmp_path / "elsewhere")
    dvc(trained, "cache", "dir", str(tmp_path / "elsewhere"))
    after = lineage(trained, "--verify", MODEL)
    assert after.returncode == 0, after.stdout
    assert checks_made(after) == checks_made(before)


def test_a_check_that_cannot_be_made_is_said_with_what_brings_it(trained):
    lock = yaml.safe_load((trained / "dvc.lock").read_text())
    outs = {o["path"]: o["md5"] for o in lock["stages"]["train"]["outs"]}
    manifest = outs["models/checkpoints"]
    (trained / ".dvc/cache/files/md5" / manifest[:2] / manifest[2:]).unlink()
    r = lineage(trained, "--verify", MODEL)
    assert r.returncode == 2, r.stdout + r.stderr
    assert re.search(
        r"(?m)^not checked: dvc.lock \(train\) models/checkpoints: .* not in the local DVC "
        r"cache; `dvc pull` brings it$",
        r.stdout,
    )
    assert "1 could not be made" in r.stdout


def test_not_found_at_a_revision_says_why(trained):
    model_md5 = yaml.safe_load((trained / "dvc.lock").read_text())["stages"]["train"]["outs"]
    md5 = next(o["md5"] for o in model_md5 if o["path"] == MODEL)
    (trained / ".dvc/cache/files/md5" / md5[:2] / md5[2:]).unlink()
    (trained / MODEL).unlink()
    uncached = lineage(trained, "--rev", "HEAD", MODEL)
    assert uncached.returncode == 1
    assert uncached.stderr.strip() == (
        f"error: {MODEL}: tracked by DVC at HEAD, but not in the local DVC cache; "
        "`dvc pull` brings it"
    )
    absent = lineage(trained, "--rev", "HEAD~1", MODEL)  # the commit before the first run
    assert absent.stderr.strip() == (
        f"error: {MODEL}: not found at HEAD~1 (no such file at that revision)"
    )


def test_at_a_revision_an_uncached_intermediate_is_said_and_the_chain_still_re_derived(trained):
    lock = yaml.safe_load((trained / "dvc.lock").read_text())["stages"]
    md5 = next(o["md5"] for o in lock["split"]["outs"] if o["path"] == "data/split/counts.npy")
    (trained / ".dvc/cache/files/md5" / md5[:2] / md5[2:]).unlink()
    r = lineage(trained, "--verify", "--rev", "HEAD", MODEL)
    assert r.returncode == 2, r.stdout + r.stderr
    assert re.search(
        r"(?m)^not checked: data/split/counts.npy: tracked by DVC at HEAD, but not in the local "
        r"DVC cache; `dvc pull` brings it$",
        r.stdout,
    )
    # the re-derivation needs only the names file (in git here), and it really ran:
    assert re.search(
        r"1 could not be made; re-derived from data/names.txt: vocab.json, pairs.npy, split.npy, "
        r"counts.npy, the checkpoint at step 200, bit-identical$",
        r.stdout.strip(),
    )


def test_a_shared_cache_outside_the_project_linked_into_the_workspace_is_read(trained, tmp_path):
    shutil.move(trained / ".dvc/cache", tmp_path / "shared-cache")
    dvc(trained, "cache", "dir", str(tmp_path / "shared-cache"))
    dvc(trained, "config", "cache.type", "symlink")
    shutil.copy(trained / "data/names.txt", trained / "data/names-full.txt")
    dvc(trained, "add", "-q", "data/names-full.txt")
    dvc(trained, "checkout", "-q", "--relink")
    assert (trained / "data/names-full.txt").is_symlink()  # into the cache, outside
    text = (trained / "params.yaml").read_text().replace("data/names.txt", "data/names-full.txt")
    (trained / "params.yaml").write_text(text)
    dvc(trained, "repro", "-q")  # the stages read the linked names file
    assert (trained / MODEL).is_symlink()
    r = lineage(trained, "--verify", MODEL)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "bit-identical" in r.stdout


def test_the_tools_work_from_a_subfolder_of_the_project(trained):
    r = lineage(trained / "models", "--verify", "model.safetensors")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("verified models/model.safetensors in the workspace:")
    at_head = lineage(trained / "data", "--verify", "--rev", "HEAD", "../models/model.safetensors")
    assert at_head.returncode == 0, at_head.stdout + at_head.stderr
    select = sh([sys.executable, "-m", "bigram", "select"], trained / "plots", check=False)
    assert select.returncode == 0 and "best on dev: main" in select.stdout
