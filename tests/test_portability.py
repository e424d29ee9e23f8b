"""Artifacts depend on inputs, params and code only: every stage's outputs on names.txt
are the same bytes under every torch CPU capability, with numpy's optional SIMD kernels
switched off, and with 1 or 2 threads."""

import hashlib
import json
import subprocess
import sys

import pytest

from tests.conftest import REAL_NAMES, STAGES, copy_project, env, set_params, use_real_names

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not REAL_NAMES.exists(), reason=f"{REAL_NAMES} is absent"),
]
OUTPUTS = ["data", "models", "metrics", "plots"]


def probe(code):
    r = subprocess.run([sys.executable, "-c", code], env=env(), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def capabilities():
    """torch's CPU capabilities this machine can run: default, and avx2/avx512 if present."""
    best = probe("import json, torch; print(json.dumps(torch.backends.cpu.get_cpu_capability()))")
    order = ["default", "avx2", "avx512"]
    return order[: order.index(best.lower()) + 1] if best.lower() in order else ["default"]


def numpy_optional_features():
    return probe(
        "import json; from numpy._core._multiarray_umath import __cpu_dispatch__, "
        "__cpu_features__; print(json.dumps([t for t in __cpu_dispatch__ "
        "if __cpu_features__.get(t)]))"
    )


def run_pipeline(d, extra):
    e = {**env(), **extra}
    for name in STAGES:
        r = subprocess.run(
            [sys.executable, "-m", f"stages.{name}"], cwd=d, env=e, capture_output=True, text=True
        )
        assert r.returncode == 0, (name, extra, r.stderr)
    return {
        str(p.relative_to(d)): hashlib.md5(p.read_bytes()).hexdigest()
        for top in OUTPUTS
        for p in sorted((d / top).rglob("*"))
        if p.is_file() and p.name not in ("names.txt", ".gitignore")
    }


def test_every_artifact_is_byte_identical_on_every_cpu_setting(tmp_path):
    settings = [{"ATEN_CPU_CAPABILITY": c} for c in capabilities()]
    optional = numpy_optional_features()
    if optional:
        settings.append({"NPY_DISABLE_CPU_FEATURES": " ".join(optional)})
    threads = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    settings += [dict.fromkeys(threads, "1"), dict.fromkeys(threads, "2")]
    digests = []
    for i, extra in enumerate(settings):
        d = copy_project(tmp_path / f"run{i}")
        use_real_names(d)
        digests.append(run_pipeline(d, extra))
    assert len(digests[0]) >= 20  # vocab, pairs, lineage, split, counts, 6 checkpoints, ...
    for extra, found in zip(settings[1:], digests[1:]):
        assert found == digests[0], extra


def test_a_trigram_is_byte_identical_without_avx2_or_numpys_simd(tmp_path):
    """The k-gram's maths is the bigram's on a wider W: the same bytes under the settings
    most likely to change them (torch's scalar kernels, numpy's baseline only)."""
    settings = [{}, {"ATEN_CPU_CAPABILITY": "default"}]
    optional = numpy_optional_features()
    if optional:
        settings.append({"NPY_DISABLE_CPU_FEATURES": " ".join(optional)})
    digests = []
    for i, extra in enumerate(settings):
        d = copy_project(tmp_path / f"run{i}")
        use_real_names(d)
        set_params(d, model__context=2)
        digests.append(run_pipeline(d, extra))
    for extra, found in zip(settings[1:], digests[1:]):
        assert found == digests[0], extra
