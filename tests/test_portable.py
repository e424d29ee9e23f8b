"""bigram.portable: accuracy over the whole domain, torch.randn parity, and portability guards."""

import ast
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bigram import portable

ROOT = Path(__file__).resolve().parents[1]
TINY = 5e-324  # smallest subnormal
MIN_NORMAL = 2.0**-1022
MAX = np.finfo(np.float64).max


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """How many representable floats lie between a and b, elementwise (uint64).

    +0 and -0 are the same point, nan equals nan, and nan against a number is maximal.
    """
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.dtype in (np.float32, np.float64)
    itype = np.int64 if a.dtype == np.float64 else np.int32

    def key(v: np.ndarray) -> np.ndarray:
        # Sign-magnitude bits -> integers in the floats' order.
        i = v.view(itype).astype(np.int64)
        return np.where(i < 0, -(i & np.iinfo(itype).max), i)

    ka, kb = key(a), key(b)
    # The difference can exceed int64 (-inf to inf); uint64 wraps it correctly.
    d = np.where(
        ka >= kb,
        ka.astype(np.uint64) - kb.astype(np.uint64),
        kb.astype(np.uint64) - ka.astype(np.uint64),
    )
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    d = np.where(nan_a & nan_b, np.uint64(0), d)
    return np.where(nan_a ^ nan_b, np.iinfo(np.uint64).max, d)


def test_ulp_distance():
    x = np.array([1.0, 0.0, -0.0, np.inf, np.nan, -TINY])
    y = np.array([np.nextafter(1.0, 2.0), -0.0, TINY, np.nextafter(np.inf, 0), np.nan, TINY])
    assert ulp_distance(x, y).tolist() == [1, 0, 1, 1, 0, 2]
    assert ulp_distance(np.array([-np.inf]), np.array([np.inf]))[0] == 2 * 0x7FF0000000000000
    assert ulp_distance(np.float32([1.0]), np.float32([1.0 + 2.0**-22]))[0] == 2


def binades(lo: int, hi: int, per: int, seed: int) -> np.ndarray:
    """per points in each binade [2**e, 2**(e+1)), e = lo..hi (subnormal ones included)."""
    e = np.arange(lo, hi + 1)
    u = np.random.default_rng(seed).random((e.size, per))
    return np.ldexp(1.0 + u, e[:, None]).ravel()


def assert_close(ours: np.ndarray, ref: np.ndarray, x: np.ndarray, max_ulp: int = 2):
    d = ulp_distance(ours, ref)
    worst = int(np.argmax(d))
    assert d.max() <= max_ulp, (
        f"{d.max()} ulp at x={x.flat[worst]!r}: {ours.flat[worst]!r} vs numpy {ref.flat[worst]!r}"
    )


EXP_SPECIAL = np.array(
    [
        0.0,
        -0.0,
        TINY,
        -TINY,
        MIN_NORMAL,
        -MIN_NORMAL,
        2.0**-54,
        -(2.0**-54),
        1.0,
        -1.0,
        0.5 * np.log(2.0),
        -0.5 * np.log(2.0),
        1.5 * np.log(2.0),
        700.0,
        -700.0,
        709.782712893383973096,
        np.nextafter(709.782712893383973096, np.inf),
        709.79,
        710.0,
        -708.3964185322641,
        -708.4,
        -744.4400719213812,
        -745.1332191019411,
        np.nextafter(-745.1332191019411, -np.inf),
        -745.2,
        -746.0,
        1e300,
        -1e300,
        MAX,
        -MAX,
        np.inf,
        -np.inf,
        np.nan,
    ]
)


def test_exp_whole_domain():
    mags = binades(-1074, 9, 64, seed=1)
    uniform = np.random.default_rng(2).uniform(-745.2, 709.8, 200_000)
    x = np.concatenate([mags, -mags, uniform, EXP_SPECIAL])
    x = x[~((x > 709.8) & np.isfinite(x)) | np.isin(x, EXP_SPECIAL)]
    with np.errstate(over="ignore"):
        ref = np.exp(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = portable.exp(x)
    assert ours.dtype == np.float64 and ours.shape == x.shape
    assert_close(ours, ref, x)


def test_exp_special_values():
    got = portable.exp(np.array([np.inf, -np.inf, np.nan, -0.0, 710.0, -746.0, -745.13, 0.0]))
    assert got[0] == np.inf and got[1] == 0.0 and np.isnan(got[2])
    assert got[3] == 1.0 and got[4] == np.inf and got[5] == 0.0 and got[6] == TINY
    assert got[7] == 1.0
    assert portable.exp(1.0).shape == () and portable.exp(np.zeros((2, 3))).shape == (2, 3)


LOG_SPECIAL = np.array(
    [
        0.0,
        -0.0,
        TINY,
        2 * TINY,
        np.nextafter(MIN_NORMAL, 0.0),
        MIN_NORMAL,
        1.0,
        np.nextafter(1.0, 0.0),
        np.nextafter(1.0, 2.0),
        2.0,
        0.5,
        np.sqrt(0.5),
        np.sqrt(2.0),
        np.nextafter(np.sqrt(0.5), 0.0),
        np.e,
        MAX,
        np.inf,
        -np.inf,
        np.nan,
        -1.0,
        -TINY,
        -MAX,
    ]
)


def test_log_whole_domain():
    x = np.concatenate(
        [
            binades(-1074, 1023, 64, seed=3),
            np.random.default_rng(4).uniform(0.5, 2.0, 200_000),
            1.0 + np.random.default_rng(5).uniform(-1e-6, 1e-6, 20_000),
            LOG_SPECIAL,
        ]
    )
    x = x[~np.isinf(x) | np.isin(x, LOG_SPECIAL)]
    with np.errstate(divide="ignore", invalid="ignore"):
        ref = np.log(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = portable.log(x)
    assert ours.dtype == np.float64 and ours.shape == x.shape
    assert_close(ours, ref, x)


def test_log_special_values():
    got = portable.log(np.array([0.0, -0.0, np.inf, -np.inf, -1.0, np.nan, 1.0, TINY]))
    assert got[0] == -np.inf and got[1] == -np.inf and got[2] == np.inf
    assert np.isnan(got[3:6]).all() and got[6] == 0.0
    assert got[7] == -744.4400719213812


def test_sincos_box_muller_range():
    theta = np.concatenate(
        [
            np.random.default_rng(6).uniform(0, 2 * np.pi, 100_000),
            np.arange(9) * (np.pi / 4),
            [0.0, np.nextafter(2 * np.pi, 0)],
        ]
    )
    sin, cos = portable._sincos(theta)
    assert_close(sin, np.sin(theta), theta, max_ulp=1)
    assert_close(cos, np.cos(theta), theta, max_ulp=1)


SHAPES = [(1, 1), (2, 2), (3, 3), (4, 4), (1, 17), (5, 7), (21, 21), (27, 27), (100, 100)]
SEEDS = [0, 1, 42, 2**31 + 5, 2**40 + 3, 2147483647]


@pytest.mark.skipif(
    torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"),
    reason="torch without AVX2 runs another float32 Box-Muller kernel",
)
@pytest.mark.parametrize("shape", SHAPES)
def test_randn_matches_torch(shape):
    for seed in SEEDS:
        ours = portable.randn(*shape, seed)
        ref = torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).numpy()
        assert ours.dtype == np.float32 and ours.shape == shape
        d = ulp_distance(ours, ref)
        assert d.max() <= 4, f"seed {seed}: {d.max()} ulp at {np.unravel_index(d.argmax(), shape)}"


def test_randn_edges():
    assert portable.randn(0, 5, 1).shape == (0, 5)
    # torch seeds its mt19937 with seed mod 2**32.
    assert np.array_equal(portable.randn(5, 7, 2**40 + 3), portable.randn(5, 7, 3))
    assert np.array_equal(portable.randn(2, 2, -1), portable.randn(2, 2, 2**32 - 1))
    with pytest.raises(ValueError):
        portable.randn(-1, 3, 0)
    with pytest.raises(ValueError):
        portable.randn(3, 3, 2**64)


RANDPERM_SIZES = [0, 1, 2, 3, 4, 5, 7, 16, 17, 100, 1000, 4097, 65536, 130, 104, 228146]


@pytest.mark.parametrize("n", RANDPERM_SIZES)
def test_randperm_is_torchs(n):
    for seed in [0, 1, 7, 42, 2**31 + 5, 2**32 + 42, 2**63 - 1]:
        ref = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
        ours = portable.randperm(n, seed)
        assert ours.dtype == np.int32 and np.array_equal(ours, ref), (n, seed)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 3000), st.integers(0, 2**63 - 1))
def test_randperm_is_torchs_for_any_size_and_seed(n, seed):
    ref = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    assert np.array_equal(portable.randperm(n, seed), ref)


def test_randperm_refuses_sizes_where_torch_changes_algorithm():
    # torch.randperm(214748364) draws 64-bit words (checked against torch 2.13: its first
    # element is then not the 32-bit replay's); the replay stops below it.
    assert portable.RANDPERM_LIMIT == 214_748_364
    with pytest.raises(ValueError, match="outside"):
        portable.randperm(portable.RANDPERM_LIMIT, 0)


# Hashes the outputs on fixed inputs (built from IEEE-exact operations only), in a fresh
# interpreter so that NPY_DISABLE_CPU_FEATURES can take effect.
SCRIPT = """
import hashlib, json
import numpy as np
from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
from bigram import portable

rng = np.random.default_rng(7)
n = 100_000
x = np.concatenate([rng.uniform(-745.2, 709.8, n),
                    np.ldexp(1.0 + rng.random(n), rng.integers(-1074, 10, n)) * -1.0])
y = np.ldexp(1.0 + rng.random(n), rng.integers(-1074, 1024, n))
out = {"exp": portable.exp(x), "log": portable.log(y)}
for shape in [(3, 3), (27, 27), (300, 300)]:
    out[f"randn{shape}"] = portable.randn(*shape, 2147483647)
print(json.dumps({
    "enabled": [t for t in __cpu_dispatch__ if __cpu_features__.get(t)],
    "digests": {k: hashlib.sha256(v.tobytes()).hexdigest()[:16] for k, v in out.items()},
}))
"""

# Recorded on x86-64 with AVX-512. The outputs must be the same bytes on every machine: a
# mismatch only elsewhere means the module is not portable, one everywhere that its
# arithmetic changed.
GOLDEN = {
    "exp": "668f6927c4ff950a",
    "log": "fcd8cfeb1397cf6e",
    "randn(3, 3)": "61437e890b6d8699",
    "randn(27, 27)": "c121f67c6598ea6a",
    "randn(300, 300)": "7a8152e1f37fb4a6",
}


def run_script(disable: str | None) -> dict:
    env = dict(os.environ)
    env.pop("NPY_DISABLE_CPU_FEATURES", None)
    if disable:
        env["NPY_DISABLE_CPU_FEATURES"] = disable
    r = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_bit_identical_under_other_numpy_dispatch():
    plain = run_script(None)
    # Every optional SIMD target numpy found on this machine (on x86-64 with AVX-512:
    # X86_V3 X86_V4 AVX512_ICL), off.
    baseline_only = run_script(" ".join(plain["enabled"]))
    assert baseline_only["enabled"] == []  # numpy really fell back to its baseline kernels
    assert baseline_only["digests"] == plain["digests"]
    assert plain["digests"] == GOLDEN


FORBIDDEN = {
    "exp",
    "exp2",
    "expm1",
    "log",
    "log2",
    "log10",
    "log1p",
    "logaddexp",
    "logaddexp2",
    "sin",
    "cos",
    "tan",
    "arcsin",
    "arccos",
    "arctan",
    "arctan2",
    "sinh",
    "cosh",
    "tanh",
    "asin",
    "acos",
    "atan",
    "atan2",
    "sinc",
    "hypot",
    "cbrt",
    "power",
    "float_power",
    "pow",
    "erf",
    "erfc",
    "gamma",
    "lgamma",
    "dot",
    "vdot",
    "inner",
    "matmul",
    "einsum",
    "tensordot",
    "polyval",
    "linalg",
}


def non_portable(source: str) -> list[str]:
    """The calls and operators in source whose results may depend on the CPU."""
    bad = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("np", "numpy", "math")
            and node.attr in FORBIDDEN
        ):
            bad.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
        if isinstance(node, ast.ImportFrom) and node.module in ("numpy", "math"):
            bad += [
                f"line {node.lineno}: from {node.module} import {a.name}"
                for a in node.names
                if a.name in FORBIDDEN | {"*"}
            ]
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            bad += [
                f"line {node.lineno}: imports {n}"
                for n in names
                if n.split(".")[0] in ("torch", "scipy")
            ]
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
            bad.append(f"line {node.lineno}: @")
        # ** goes to libm pow for floats; only integer powers are exact everywhere.
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            operands = [
                n.operand if isinstance(n, ast.UnaryOp) else n for n in (node.left, node.right)
            ]
            if not all(isinstance(n, ast.Constant) and type(n.value) is int for n in operands):
                bad.append(f"line {node.lineno}: non-integer **")
    return bad


def test_non_portable_finds_each_kind():
    source = "\n".join(
        [
            "np.exp(x)",
            "math.log(2)",
            "numpy.matmul(a, b)",
            "a @ b",
            "2.0 ** -24",
            "x ** 0.5",
            "from numpy import sin",
            "import torch",
            "2 ** 63 + -(2 ** 8)",
        ]
    )
    flagged = {int(b.split(":")[0].split()[1]) for b in non_portable(source)}
    assert flagged == set(range(1, 9))  # all but the integer powers on line 9


def test_module_uses_only_portable_operations():
    bad = non_portable(Path(portable.__file__).read_text())
    assert not bad, "non-portable operations in bigram/portable.py:\n" + "\n".join(bad)
