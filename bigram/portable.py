"""Machine-independent float64 exp and log, and a portable stand-in for torch.randn.

The pipeline promises byte-identical artifacts on every machine. numpy's exp/log/sin/cos
and torch's CPU kernels pick a SIMD implementation by CPU (SSE, AVX2, AVX-512, NEON) and the
implementations disagree by 1-3 ulp, so any artifact computed with them depends on where it
was made. Correctly rounded IEEE operations (+ - * /, sqrt, floor, ldexp, frexp, comparisons,
casts, nextafter) and numpy's sums are the same everywhere, so this module builds everything
from those alone: fdlibm's algorithms (Cody-Waite range reduction, then a polynomial by
Horner's rule) vectorised over numpy arrays, and torch's float32 Box-Muller replayed one IEEE
float32 operation at a time.

Never call np.exp, np.log, np.sin, np.cos, their relatives, matmul or BLAS in here:
tests/test_portable.py scans this file's source and fails if one appears.
"""

import math
from collections.abc import Callable

import numpy as np

_F32 = np.float32
# Elementwise work is done in slices this long: a dozen temporaries of a 9M-element array
# would each be 72 MB of fresh memory, and that, not the arithmetic, dominated the run time.
_CHUNK = 1 << 16

# fdlibm e_exp.c. ln2 is split so that k*_LN2_HI is exact for |k| < 2**20: its low 32 bits
# are zero.
_EXP_OVERFLOW = 7.09782712893383973096e02  # above this exp(x) rounds to inf
_EXP_UNDERFLOW = -7.45133219101941108420e02  # below this exp(x) rounds to 0
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00
_P1 = 1.66666666666666019037e-01
_P2 = -2.77777777770155933842e-03
_P3 = 6.61375632143793436117e-05
_P4 = -1.65339022054652515390e-06
_P5 = 4.13813679705723846039e-08

# fdlibm e_log.c: log(1+f) = f - f*f/2 + s*(f*f/2 + R(s*s)), s = f/(2+f).
_LG1 = 6.666666666666735130e-01
_LG2 = 3.999999999940941908e-01
_LG3 = 2.857142874366239149e-01
_LG4 = 2.222219843214978396e-01
_LG5 = 1.818357216161805012e-01
_LG6 = 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01
_SQRT_HALF = 0.70710678118654752440

# fdlibm k_sin.c, k_cos.c and e_rem_pio2.c (medium-size reduction): pi/2 in three 33-bit
# pieces plus a tail, so k*piece is exact for |k| < 2**20.
_S1 = -1.66666666666666324348e-01
_S2 = 8.33333333332248946124e-03
_S3 = -1.98412698298579493134e-04
_S4 = 2.75573137070700676789e-06
_S5 = -2.50507602534068634195e-08
_S6 = 1.58969099521155010221e-10
_C1 = 4.16666666666666019037e-02
_C2 = -1.38888888888741095749e-03
_C3 = 2.48015872894767294178e-05
_C4 = -2.75573143513906633035e-07
_C5 = 2.08757232129817482790e-09
_C6 = -1.13596475577881948265e-11
_INV_PIO2 = 6.36619772367581382433e-01
_PIO2_1 = 1.57079632673412561417e00
_PIO2_2 = 6.07710050630396597660e-11
_PIO2_2T = 2.02226624879595063154e-21
_PIO2_3 = 2.02226624871116645580e-21
_PIO2_3T = 8.47842766036889956997e-32
_SINCOS_MAX = (1 << 19) * math.pi  # beyond this the one-step reduction loses accuracy

# torch's avx_mathfun.h (Cephes single precision), as float32 constants.
_LOG_P = [
    _F32(c)
    for c in (
        7.0376836292e-2,
        -1.1514610310e-1,
        1.1676998740e-1,
        -1.2420140846e-1,
        1.4249322787e-1,
        -1.6668057665e-1,
        2.0000714765e-1,
        -2.4999993993e-1,
        3.3333331174e-1,
    )
]
_LOG_Q1 = _F32(-2.12194440e-4)
_LOG_Q2 = _F32(0.693359375)
_FOPI = _F32(1.27323954473516)  # 4/pi
_DP1 = _F32(0.78515625)
_DP2 = _F32(2.4187564849853515625e-4)
_DP3 = _F32(3.77489497744594108e-8)
_SINCOF = [_F32(c) for c in (-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1)]
_COSCOF = [_F32(c) for c in (2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2)]

_SEED_RANGE = (-(2**63), 2**64)  # what torch.Generator.manual_seed accepts


def _chunked(kernel: Callable[[np.ndarray], np.ndarray], x: np.ndarray | float) -> np.ndarray:
    """kernel applied to float64 x slice by slice (see _CHUNK), same shape out."""
    x = np.asarray(x, dtype=np.float64)
    flat = x.ravel()
    if flat.size <= _CHUNK:  # the common small case: no slicing, no copy
        return kernel(flat).reshape(x.shape)
    out = np.empty_like(flat)
    for i in range(0, flat.size, _CHUNK):
        out[i : i + _CHUNK] = kernel(flat[i : i + _CHUNK])
    return out.reshape(x.shape)


def exp(x: np.ndarray | float) -> np.ndarray:
    """e**x in float64 for every input, <= 1 ulp from the correctly rounded result.

    Overflows to inf above ~709.78, underflows through the subnormals to 0 below ~-745.13,
    exp(-inf) = 0, exp(inf) = inf, exp(nan) = nan. Same shape as x (0-d for a scalar).
    """
    return _chunked(_exp, x)


def _exp(x: np.ndarray) -> np.ndarray:
    # Softmax's inputs are all in range: then the masks below would change nothing.
    in_range = x.size > 0 and _EXP_UNDERFLOW <= x.min() and x.max() <= _EXP_OVERFLOW
    xs = x if in_range else np.where((x >= _EXP_UNDERFLOW) & (x <= _EXP_OVERFLOW), x, 0.0)
    k = np.floor(xs * _INV_LN2 + 0.5)
    hi = xs - k * _LN2_HI
    lo = k * _LN2_LO
    r = hi - lo
    t = r * r
    c = r - t * (_P1 + t * (_P2 + t * (_P3 + t * (_P4 + t * _P5))))
    y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi)
    # ldexp rounds once, so results in the subnormal range are still within 1 ulp.
    y = np.ldexp(y, k.astype(np.int32))
    if in_range:
        return y
    y = np.where(x > _EXP_OVERFLOW, np.inf, y)
    y = np.where(x < _EXP_UNDERFLOW, 0.0, y)
    return np.where(np.isnan(x), x, y)


def log(x: np.ndarray | float) -> np.ndarray:
    """Natural log in float64 for every input, <= 1 ulp from the correctly rounded result.

    Subnormals are handled exactly (frexp normalises them), log(+-0) = -inf,
    log(inf) = inf, log(negative) = nan, log(nan) = nan. Same shape as x (0-d for a scalar).
    """
    return _chunked(_log, x)


def _log(x: np.ndarray) -> np.ndarray:
    # Probabilities and sums of exponentials are positive and finite: then the masks
    # below would change nothing.
    in_range = x.size > 0 and 0.0 < x.min() and x.max() < np.inf
    m, e = np.frexp(x if in_range else np.where((x > 0.0) & (x < np.inf), x, 1.0))
    # Move m from [1/2, 1) to [sqrt(1/2), sqrt(2)) so |f| <= 0.415, where the polynomial
    # is accurate; m - 1 is then exact (Sterbenz).
    small = m < _SQRT_HALF
    m = np.where(small, m + m, m)
    k = (e - small).astype(np.float64)
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
    t2 = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    hfsq = 0.5 * f * f
    # musl's ordering of fdlibm's sum: the small terms first, k*ln2_hi (exact) last.
    y: np.ndarray = s * (hfsq + (t2 + t1)) + k * _LN2_LO - hfsq + f + k * _LN2_HI
    if in_range:
        return y
    y = np.where(x == 0.0, -np.inf, y)
    y = np.where(x == np.inf, np.inf, y)
    return np.where(x < 0.0, np.nan, np.where(np.isnan(x), x, y))


def _sincos(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sin x, cos x) in float64 within 1 ulp, for |x| <= 2**19*pi (Box-Muller needs [0, 2pi))."""
    if np.any(np.abs(x) > _SINCOS_MAX):
        raise ValueError(f"_sincos reduces arguments only up to {_SINCOS_MAX}")
    k = np.floor(x * _INV_PIO2 + 0.5)
    # fdlibm takes the second and third steps only when the first cancelled too many bits
    # (x near a multiple of pi/2); taking them always is as accurate and branch-free.
    r = x - k * _PIO2_1
    t, w = r, k * _PIO2_2
    r = t - w
    w = k * _PIO2_2T - ((t - r) - w)
    t, w = r, k * _PIO2_3
    r = t - w
    w = k * _PIO2_3T - ((t - r) - w)
    # The reduced argument as hi + lo: near a multiple of pi/2 hi alone would lose the few
    # bits the answer has there.
    hi = r - w
    lo = (r - hi) - w
    z = hi * hi
    v = z * hi
    r = _S2 + z * (_S3 + z * (_S4 + z * (_S5 + z * _S6)))
    sin_r = hi - ((z * (0.5 * lo - v * r) - lo) - v * _S1)
    r = z * (_C1 + z * (_C2 + z * (_C3 + z * (_C4 + z * (_C5 + z * _C6)))))
    hz = 0.5 * z
    w = 1.0 - hz
    cos_r = w + (((1.0 - w) - hz) + (z * r - hi * lo))
    q = k.astype(np.int64) & 3
    sin = np.where(q == 0, sin_r, np.where(q == 1, cos_r, np.where(q == 2, -sin_r, -cos_r)))
    cos = np.where(q == 0, cos_r, np.where(q == 1, -sin_r, np.where(q == 2, -cos_r, sin_r)))
    return sin, cos


def _fma32(a: np.ndarray, b: np.ndarray | np.float32, c: np.ndarray | np.float32) -> np.ndarray:
    """a*b + c rounded once to float32, as the vfmadd instructions in torch's kernel do."""
    # a*b is exact in float64, and the float64 sum rounds to the same float32 as the exact
    # sum unless it lands exactly on a float32 halfway point; only there does the sign of the
    # float64 rounding error (TwoSum) decide the direction.
    p = np.multiply(a, b, dtype=np.float64)
    c = np.broadcast_to(np.asarray(c, dtype=np.float64), p.shape)
    s = p + c
    tie = (s.view(np.int64) & 0x1FFFFFFF) == 0x10000000
    if np.any(tie):
        st, pt, ct = s[tie], p[tie], c[tie]
        back = st - pt
        err = (pt - (st - back)) + (ct - back)
        s[tie] = np.where(err == 0.0, st, np.nextafter(st, np.where(err > 0.0, np.inf, -np.inf)))
    out: np.ndarray = s.astype(_F32)
    return out


def _log256_ps(x: np.ndarray) -> np.ndarray:
    """torch's avx_mathfun log256_ps as compiled, for float32 x in [2**-24, 1]."""
    # Operation order and which mul+add pairs are fused follow the disassembly of
    # NormalFill16<float> in torch 2.13's libtorch_cpu.so (AVX2 build; GCC fuses to FMAs).
    bits = x.view(np.int32)
    e = ((bits >> 23) - 127).astype(_F32) + _F32(1.0)
    m = ((bits & np.int32(-0x7F800001)) | np.int32(0x3F000000)).view(_F32)  # in [1/2, 1)
    small = m < _F32(_SQRT_HALF)
    e = e - small.astype(_F32)
    x = (m + _F32(-1.0)) + np.where(small, m, _F32(0.0))
    z = x * x
    y = np.full_like(x, _LOG_P[0])
    for coef in _LOG_P[1:]:
        y = _fma32(y, x, coef)
    y = _fma32(y * x, z, e * _LOG_Q1)
    y = y - z * _F32(0.5)
    out: np.ndarray = (x + y) + e * _LOG_Q2  # e*q2 is exact, so the fused add rounds the same
    return out


def _sincos256_ps(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """torch's avx_mathfun sincos256_ps (Cephes sinf/cosf) as compiled, for float32 x >= 0."""
    j = (x * _FOPI).astype(np.int32)  # truncates, like cvttps2dq
    j = (j + 1) & ~1
    y = j.astype(_F32)
    # y*DP1 and y*DP2 are exact (few-bit constants, y <= 8): only the DP3 step is a real FMA.
    r = (x - y * _DP1) - y * _DP2
    r = _fma32(y, -_DP3, r)
    z = r * r
    c = _fma32(_fma32(np.full_like(z, _COSCOF[0]), z, _COSCOF[1]), z, _COSCOF[2])
    c = _fma32(z, z * c, -(z * _F32(0.5))) + _F32(1.0)
    s = _fma32(_fma32(np.full_like(z, _SINCOF[0]), z, _SINCOF[1]), z, _SINCOF[2])
    s = _fma32(r, z * s, r)
    near_zero = (j & 2) == 0  # the sine polynomial approximates sin here, cos elsewhere
    sin = np.where(near_zero, s, c)
    cos = np.where(near_zero, c, s)
    sin = np.where((j & 4) != 0, -sin, sin)
    cos = np.where((~(j - 2) & 4) != 0, -cos, cos)
    return sin, cos


def _box_muller_16(u: np.ndarray) -> np.ndarray:
    """torch's NormalFill16<float> (x86 AVX2/AVX-512 build) over rows of 16 float32 uniforms.

    torch computes it in float32 with avx_mathfun's approximations, whose errors are far above
    an ulp, so an accurate float64 Box-Muller would be off by thousands of ulps near zeros of
    sin/cos. It is replayed operation by operation in IEEE float32 instead (FMAs emulated
    exactly), which is as portable as float64 and reproduces torch bit for bit.
    """
    out = np.empty_like(u)
    for i in range(0, len(u), _CHUNK // 16):
        block = u[i : i + _CHUNK // 16]
        # Flat contiguous halves: numpy is several times slower on strided (m, 8) views.
        radius = np.sqrt(_F32(-2.0) * _log256_ps((_F32(1.0) - block[:, :8]).ravel()))
        sin, cos = _sincos256_ps((_F32(2.0 * math.pi) * block[:, 8:]).ravel())
        # fma(n, std=1, mean=0) turns -0 into +0, hence the + 0.
        out[i : i + len(block), :8] = (radius * cos + _F32(0.0)).reshape(-1, 8)
        out[i : i + len(block), 8:] = (radius * sin + _F32(0.0)).reshape(-1, 8)
    return out


def _randn_small(words: np.ndarray, n: int) -> np.ndarray:
    """torch's path for fewer than 16 elements: at::normal_distribution<double>, pairwise."""
    # Each pair of normals takes two random64() draws (first word high), each masked to 53
    # bits; the second normal of a pair is cached in the generator and returned next.
    w = words.reshape(-1, 4)
    u_theta = (((w[:, 0] & 0x1FFFFF) << 32) | w[:, 1]).astype(np.float64) / (1 << 53)
    u_radius = (((w[:, 2] & 0x1FFFFF) << 32) | w[:, 3]).astype(np.float64) / (1 << 53)
    radius = np.sqrt(-2.0 * log(1.0 - u_radius))  # torch: log1p(-u); 1 - u is exact
    sin, cos = _sincos(2.0 * math.pi * u_theta)
    pairs = np.stack([radius * cos, radius * sin], axis=1).reshape(-1)[:n]
    return (pairs + 0.0).astype(_F32)  # + 0.0: torch's val*std + mean turns -0 into +0


def _mt19937(seed: int) -> np.random.MT19937:
    """torch's CPU generator after manual_seed(seed): random_raw(n) gives its next n 32-bit
    outputs (as uint64)."""
    # torch's mt19937 keeps only the low 32 bits of the seed (init_with_uint32) and then seeds
    # like the reference init_genrand, as RandomState does.
    state = np.random.RandomState(seed & 0xFFFFFFFF).get_state(legacy=False)
    bits = np.random.MT19937()
    bits.state = {"bit_generator": "MT19937", "state": state["state"]}
    return bits


def _mt19937_words(seed: int, n: int) -> np.ndarray:
    """The first n 32-bit outputs (as uint64) of torch's CPU generator after manual_seed(seed)."""
    return _mt19937(seed).random_raw(n)


def randn(rows: int, cols: int, seed: int) -> np.ndarray:
    """torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed)), portably.

    float32, shape (rows, cols), bit-identical to torch 2.13 on x86-64 with AVX2 or AVX-512
    (the SIMD kernel it uses there is replayed exactly). torch without AVX2 (plain x86-64,
    arm64) runs a scalar float32 kernel whose results differ from its own AVX2 ones, by many
    ulps near 0; this function does not follow it. Seeds: any int manual_seed accepts,
    [-2**63, 2**64); as in torch only seed mod 2**32 matters.
    """
    if rows < 0 or cols < 0:
        raise ValueError(f"randn: negative shape ({rows}, {cols})")
    if not _SEED_RANGE[0] <= seed < _SEED_RANGE[1]:
        raise ValueError(f"randn: seed {seed} outside torch's range [-2**63, 2**64)")
    n = rows * cols
    if n == 0:
        return np.zeros((rows, cols), dtype=_F32)
    if n < 16:
        pairs = (n + 1) // 2
        return _randn_small(_mt19937_words(seed, 4 * pairs), n).reshape(rows, cols)
    tail = n % 16
    words = _mt19937_words(seed, n + (16 if tail else 0))
    # at::uniform_real_distribution<float>: the low 24 bits of a 32-bit word times 2**-24.
    u = (words & 0xFFFFFF).astype(_F32) / _F32(1 << 24)
    full = n - tail
    out = np.empty(n, dtype=_F32)
    out[:full] = _box_muller_16(u[:full].reshape(-1, 16)).reshape(-1)
    if tail:
        # torch refills the last 16 slots (overlapping the last full block) with fresh
        # uniforms and transforms them again.
        out[n - 16 :] = _box_muller_16(u[n:].reshape(1, 16)).reshape(-1)
    return out.reshape(rows, cols)


# torch.randperm(n) on the CPU for n below this: a Fisher–Yates shuffle (randperm_cpu in
# aten/src/ATen/native/TensorFactories.cpp) that for i = 0 .. n-2 swaps r[i] with r[i + z],
# z = random() % (n - i), random() one 32-bit word of the generator. From this n on, torch
# draws 64-bit words instead (checked against torch 2.13 on both sides of the bound).
RANDPERM_LIMIT = (2**32 - 1) // 20


_CHUNK_WORDS = 1 << 22


def _where(mask: np.ndarray) -> np.ndarray:
    """np.flatnonzero as int32 (indices here are < RANDPERM_LIMIT < 2**31)."""
    return np.flatnonzero(mask).astype(np.int32)


def randperm(n: int, seed: int) -> np.ndarray:
    """torch.randperm(n, generator=torch.Generator().manual_seed(seed)), without torch:
    the same permutation (as int32) for 0 <= n < RANDPERM_LIMIT, on every machine.

    The swaps are sequential in torch; here they are resolved with array operations. After
    step i, position i is final: it holds what position j[i] held just before step i, which
    is what the last earlier step swapping with j[i] left there, or j[i] itself. What a
    step leaves at j is what position i held before it, found the same way (a chain of
    earlier steps, followed to its start by pointer jumping)."""
    if not 0 <= n < RANDPERM_LIMIT:
        raise ValueError(f"randperm: n = {n} outside [0, {RANDPERM_LIMIT})")
    if n <= 1:
        return np.arange(n, dtype=np.int32)
    # int32 indices: half the memory (and memory traffic) of int64 for these gathers.
    steps = np.arange(n - 1, dtype=np.int32)
    j = np.empty(n - 1, dtype=np.int32)
    bits = _mt19937(seed)
    for start in range(0, n - 1, _CHUNK_WORDS):  # in chunks: all n words as uint64 is 8n bytes
        stop = min(start + _CHUNK_WORDS, n - 1)
        words = bits.random_raw(stop - start).astype(np.uint32)
        words %= np.arange(n - start, n - stop, -1, dtype=np.uint32)
        j[start:stop] = words
    j += steps
    # last[p]: the last step that swapped with position p (-1: none); prev[i]: the last
    # step before i that swapped with j[i]. Found a layer at a time, latest first: a
    # position is chosen by at most a few dozen steps.
    last = np.full(n, -1, dtype=np.int32)
    np.maximum.at(last, j, steps)
    rest = _where(last[j] != steps)  # the steps that are not their position's last
    prev = np.full(n - 1, -1, dtype=np.int32)
    layer = np.full(n, -1, dtype=np.int32)
    later = last[j[rest]]  # the steps whose prev this round finds
    while len(rest):
        at = j[rest]
        np.maximum.at(layer, at, rest)
        prev[later] = layer[j[later]]
        latest = layer[at] == rest
        layer[at] = -1
        later, rest = rest[latest], rest[~latest]
    del layer, later, rest
    # held[k]: which step's value position k holds just before step k; then, by jumping,
    # the value itself (a position never swapped into holds its own index).
    held = np.arange(n, dtype=np.int32)
    source = last[:-1].copy()
    itself = _where(source == steps)  # the last step into k was step k itself
    source[itself] = prev[itself]
    swapped = _where(source >= 0)
    held[swapped] = source[swapped]
    del source, itself, swapped, steps
    if last[n - 1] >= 0:
        held[n - 1] = last[n - 1]
    todo = _where(held[held] != held)
    while len(todo):
        held[todo] = held[held[todo]]
        todo = todo[held[held[todo]] != held[todo]]
    out = np.empty(n, dtype=np.int32)
    out[:-1] = j
    found = _where(prev >= 0)
    out[found] = held[prev[found]]
    out[-1] = held[last[n - 1]] if last[n - 1] >= 0 else n - 1
    return out
