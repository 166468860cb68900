#!/usr/bin/env python3
"""Pure-Python reference for bitsandbytes NF4 quantization with double quantization.

Written from bitsandbytes' source (0.48.2 and 0.49.2), not from the Go package, for
bitsandbytes as it quantizes on the CPU:

  * backends/default/ops.py  quantize_4bit (absmax per block, x * (1/absmax),
                      clamp, argmin of the float32 distance to the 16 codes,
                      nibble packing: first element << 4 | second element).
  * csrc/cpu_ops.cpp, csrc/common.cpp  quantize_cpu / quantize_block, the
                      8-bit quantizer (code[0] = -1.0, x / absmax, binary
                      search, the right neighbour only if strictly nearer).
  * bitsandbytes/functional.py  quantize_4bit (offset = absmax.mean(),
                      quantize_blockwise(absmax - offset, blocksize=256)),
                      create_dynamic_map (signed=True, 7 exponent bits, 8 bits).
  * csrc/kernels.cu   the CUDA kernels' rules where they differ, for
                      compare_bitsandbytes.py: dQuantizeNF4 (decision tree,
                      literal thresholds, ">") and dQuantize<0>.

float32 semantics are emulated with struct.pack('<f') rounding after every
operation. A float64 result of +, -, *, / on two float32 values rounded to
float32 is the correctly rounded float32 result (53 >= 2*24+2), so this is
exact IEEE float32 arithmetic. The 4-bit stage flushes float32 subnormals
to zero (ftz) as the CUDA kernel's instructions do (as the Go package does).
The reciprocal is the IEEE one (the GPU uses rcp.approx, within 1 ulp).

The mean of the absmax is torch's CPU mean, float32(sum) / N with the float32
sum in the order of torch's SumKernel.cpp (8 lanes, one thread), which is what
bitsandbytes computes on the CPU (see Go's nf4.Mean; torch's CUDA mean is
float32(sum) * float32(1/N) over a tree reduction and may differ by ulps).
Written from torch's source: aten/src/ATen/native/cpu/SumKernel.cpp
(vectorized_inner_sum, row_sum, multi_row_sum) and ReduceOps.cpp (mean_out).

Usage:
  nf4_reference.py nf4 IN OUT   IN: little-endian float32 values. OUT: JSON with
                                packed, qabsmax (hex), absmax, absmax2, offset
                                (float32 bit patterns as 8-hex-digit strings).
  nf4_reference.py q8 IN OUT    8-bit blockwise quantization (blocksize 256,
                                dynamic map) of IN: JSON with q (hex), absmax.
  nf4_reference.py map OUT      the dynamic map: JSON list of bit patterns.
No third-party modules are needed (no numpy).
"""

import json
import struct
import sys
from fractions import Fraction


def f32(x):
    """Round a Python float to the nearest float32 (ties to even)."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def bits(x):
    return "%08x" % struct.unpack("<I", struct.pack("<f", x))[0]


MIN_NORMAL = 2.0 ** -126


def ftz(x):
    """nvcc -ftz=true: float32 subnormals read and written as zero."""
    if x != 0 and -MIN_NORMAL < x < MIN_NORMAL:
        return 0.0
    return x


def recip(a):
    """smem_absmax_value[0] = 1.0f / local_abs_max (ftz)."""
    if a == 0:
        return float("inf")
    return ftz(f32(1.0 / a))


def mul(a, b):
    """float32 a*b; 0*inf is NaN as on the GPU."""
    p = a * b
    if p != p:
        return p
    return f32(p)


def f32_literal(s):
    """A C++ float literal such as 0.8614784181118011f: the decimal rounded
    directly to the nearest float32 (ties to even). Rounding through a double
    first would differ for 4 of the thresholds below, whose decimal lies
    within a hair of a float32 halfway point."""
    exact = Fraction(s)
    c = f32(float(s))
    ci = struct.unpack("<i", struct.pack("<f", c))[0]
    cands = [struct.unpack("<f", struct.pack("<i", ci + d))[0] for d in (-1, 0, 1)]

    def key(v):
        odd = struct.unpack("<i", struct.pack("<f", v))[0] & 1
        return (abs(Fraction(v) - exact), odd)

    return min(cands, key=key)


# dQuantizeNF4 from csrc/kernels.cu, with its literals.
T1 = f32_literal("0.03979014977812767")
T11 = f32_literal("0.3893125355243683")
T111 = f32_literal("0.6427869200706482")
T1111 = f32_literal("0.8614784181118011")
T110 = f32_literal("0.5016634166240692")
T10 = f32_literal("0.2035212516784668")
T101 = f32_literal("0.2920137718319893")
T100 = f32_literal("0.1202552504837513")
T0 = f32_literal("-0.33967943489551544")
T01 = f32_literal("-0.13791173323988914")
T011 = f32_literal("-0.045525018125772476")
T010 = f32_literal("-0.23460740596055984")
T00 = f32_literal("-0.6106329262256622")
T001 = f32_literal("-0.4599952697753906")
T000 = f32_literal("-0.8480964004993439")


def dquantize_nf4_tree(x):
    """dQuantizeNF4, the CUDA kernel's decision tree (kept for reference:
    the CPU rule below differs from it for thresholds 1, 3, 4 and 8)."""
    if x > T1:
        if x > T11:
            if x > T111:
                if x > T1111:
                    return 0b1111
                return 0b1110
            if x > T110:
                return 0b1101
            return 0b1100
        if x > T10:
            if x > T101:
                return 0b1011
            return 0b1010
        if x > T100:
            return 0b1001
        return 0b1000
    if x > T0:
        if x > T01:
            if x > T011:
                return 0b0111
            return 0b0110
        if x > T010:
            return 0b0101
        return 0b0100
    if x > T00:
        if x > T001:
            return 0b0011
        return 0b0010
    if x > T000:
        return 0b0001
    return 0b0000


# get_4bit_type("nf4") in bitsandbytes/functional.py (CODE["nf4"] of the
# default backend), float32.
NF4 = [f32(v) for v in (
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0)]


def dquantize_nf4(x):
    """bitsandbytes' CPU rule (quantize_4bit in backends/default/ops.py):
    torch.clamp(scaled, -1, 1), then torch.argmin(torch.abs(scaled - code)):
    the first code of least float32 distance. NaN (a block of zeros) gives 0,
    argmin's first NaN."""
    if x != x:
        return 0
    x = min(max(x, -1.0), 1.0)
    dists = [abs(f32(x - c)) for c in NF4]
    return dists.index(min(dists))


def block_absmax(vals):
    """local_abs_max = fmaxf(local_abs_max, fabsf(v)), then a block max (ftz)."""
    m = 0.0
    for v in vals:
        a = ftz(abs(v))
        if a > m:
            m = a
    return m


def quantize_4bit_nf4(A, blocksize=64):
    n = len(A)
    out = bytearray((n + 1) // 2)
    absmax = []
    for base in range(0, n, blocksize):
        vals = A[base:base + blocksize]
        am = block_absmax(vals)
        absmax.append(am)
        r = recip(am)
        if len(vals) % 2:
            vals = vals + [0.0]  # BlockLoad pads with (T)0.0f
        for j in range(0, len(vals), 2):
            hi = dquantize_nf4(ftz(mul(ftz(vals[j]), r)))
            lo = dquantize_nf4(ftz(mul(ftz(vals[j + 1]), r)))
            out[(base + j) // 2] = (hi << 4) | lo
    return bytes(out), absmax


def linspace_f32(start, end, steps):
    """torch.linspace(start, end, steps, dtype=float32) on CPU
    (RangeFactoriesKernel.cpp linspace_kernel), with the fused multiply-add
    that torch's x86-64/aarch64 builds compile start + step*i and
    end - step*(steps-i-1) to. step*i is exact in a double and so is the sum
    for these sizes, so one f32() is a single rounding."""
    start = f32(start)
    end = f32(end)
    step = f32(f32(end - start) / f32(steps - 1))
    halfway = steps // 2
    out = []
    for i in range(steps):
        if i < halfway:
            out.append(f32(start + step * i))
        else:
            out.append(f32(end - step * (steps - i - 1)))
    return out


def create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8):
    data = []
    non_sign_bits = total_bits - 1
    additional_items = 2 ** (non_sign_bits - max_exponent_bits) - 1
    for i in range(max_exponent_bits):
        fraction_items = int(
            2 ** (i + non_sign_bits - max_exponent_bits) + 1
            if signed
            else 2 ** (i + non_sign_bits - max_exponent_bits + 1) + 1,
        )
        boundaries = linspace_f32(0.1, 1, fraction_items)
        means = [f32(f32(boundaries[k] + boundaries[k + 1]) / 2.0) for k in range(len(boundaries) - 1)]
        scale = 10 ** (-(max_exponent_bits - 1) + i)
        data += [f32(m * f32(scale)) for m in means]
        if signed:
            data += [f32(m * f32(-scale)) for m in means]
    if additional_items > 0:
        boundaries = linspace_f32(0.1, 1, additional_items + 1)
        means = [f32(f32(boundaries[k] + boundaries[k + 1]) / 2.0) for k in range(len(boundaries) - 1)]
        scale = 10 ** (-(max_exponent_bits - 1) + i)
        data += [f32(m * f32(scale)) for m in means]
        if signed:
            data += [f32(m * f32(-scale)) for m in means]
    data.append(0)
    data.append(1.0)
    assert len(data) == 2 ** total_bits
    gap = 256 - len(data)
    for i in range(gap):
        data.append(0)
    data.sort()
    return [float(x) for x in data]


def dquantize8(code, v):
    """bitsandbytes' CPU 8-bit code (quantize_block in csrc/common.cpp): the
    last entry at or below v (BinAlgo's search; entry 0 below it), then the
    right neighbour if its float32 distance is strictly smaller. NaN gives 0
    (bitsandbytes' search has no answer for it)."""
    if v != v:
        return 0
    idx = 0
    for k in range(256):
        if code[k] <= v:
            idx = k
    if idx < 255 and abs(f32(v - code[idx + 1])) < abs(f32(v - code[idx])):
        idx += 1
    return idx


def dquantize8_cuda(code, x):
    """dQuantize<0> from csrc/kernels.cu (the CUDA kernel's search and tie
    rule, on x * (1/absmax); kept for compare_bitsandbytes.py)."""
    pivot = 127
    upper_pivot = 255
    lower_pivot = 0
    lower = -1.0
    upper = 1.0
    val = code[pivot]
    i = 64
    while i > 0:
        if x > val:
            lower_pivot = pivot
            lower = val
            pivot += i
        else:
            upper_pivot = pivot
            upper = val
            pivot -= i
        val = code[pivot]
        i >>= 1
    if upper_pivot == 255:
        upper = code[upper_pivot]
    if lower_pivot == 0:
        lower = code[lower_pivot]
    if x > val:
        midpoint = f32(f32(upper + val) * 0.5)
        if x > midpoint:
            return upper_pivot
        return pivot
    midpoint = f32(f32(lower + val) * 0.5)
    if x < midpoint:
        return lower_pivot
    return pivot


def quantize_blockwise(A, code, blocksize=256):
    """quantize_cpu (csrc/cpu_ops.cpp) for float32: per block the absmax
    fmax(fabs(v)), then each value divided by it in float32."""
    q = bytearray(len(A))
    absmax = []
    for base in range(0, len(A), blocksize):
        vals = A[base:base + blocksize]
        am = max(abs(v) for v in vals)
        absmax.append(am)
        for j, v in enumerate(vals):
            n = f32(v / am) if am != 0 else float("nan")
            q[base + j] = dquantize8(code, n)
    return bytes(q), absmax


def ceil_log2(x):
    """ATen's utils::CeilLog2: 1 for x <= 2, else ceil(log2(x))."""
    return 1 if x <= 2 else (x - 1).bit_length()


def multi_row_sum(elem, lanes, nrows, size):
    """torch's multi_row_sum (aten/src/ATen/native/cpu/SumKernel.cpp): the
    float32 sums of nrows interleaved rows of size steps, in its four-level
    cascade. elem(e) is element e, a list of `lanes` floats."""
    levels = 4
    level_power = max(4, ceil_log2(size) // levels)
    level_step = 1 << level_power
    level_mask = level_step - 1
    acc = [[[0.0] * lanes for _ in range(nrows)] for _ in range(levels)]

    def add(a, b):
        for lane in range(lanes):
            a[lane] = f32(a[lane] + b[lane])

    i = 0
    while i + level_step <= size:
        for _ in range(level_step):
            for k in range(nrows):
                add(acc[0][k], elem(i * nrows + k))
            i += 1
        for j in range(1, levels):
            for k in range(nrows):
                add(acc[j][k], acc[j - 1][k])
                acc[j - 1][k] = [0.0] * lanes
            if i & (level_mask << (j * level_power)):
                break
    while i < size:
        for k in range(nrows):
            add(acc[0][k], elem(i * nrows + k))
        i += 1
    for j in range(1, levels):
        for k in range(nrows):
            add(acc[0][k], acc[j][k])
    return acc[0]


def row_sum(elem, lanes, size):
    """torch's row_sum: four interleaved multi_row_sum partials, the leftover
    elements added to the first, then the other three."""
    p = multi_row_sum(elem, lanes, 4, size // 4)
    for e in range(size // 4 * 4, size):
        v = elem(e)
        p[0] = [f32(p[0][lane] + v[lane]) for lane in range(lanes)]
    for k in range(1, 4):
        p[0] = [f32(p[0][lane] + p[k][lane]) for lane in range(lanes)]
    return p[0]


SUM_LANES = 8  # torch's Vectorized<float> on AVX2 (and its default kernels)


def sum_f32(vals):
    """torch's CPU float32 sum of a contiguous vector, in its order
    (vectorized_inner_sum with 8 lanes; scalar row_sum below 8 values)."""
    n = len(vals)
    if n < SUM_LANES:
        return row_sum(lambda e: [vals[e]], 1, n)[0]
    vecs = n // SUM_LANES
    acc = row_sum(lambda e: vals[e * SUM_LANES:(e + 1) * SUM_LANES], SUM_LANES, vecs)
    s = 0.0
    for v in vals[vecs * SUM_LANES:]:
        s = f32(s + v)
    for v in acc:
        s = f32(s + v)
    return s


def mean_f32(vals):
    """torch's CPU mean (at::mean_out: sum_out(...).div_(numel)): the float32
    sum in torch's order, divided once in float32 by the count."""
    if not vals:
        return 0.0
    return f32(sum_f32(vals) / f32(len(vals)))


def read_f32(path):
    raw = open(path, "rb").read()
    return [x for (x,) in struct.iter_unpack("<f", raw)]


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    mode = argv[1]
    code = create_dynamic_map(signed=True)
    if mode == "map" and len(argv) == 3:
        result = [bits(c) for c in code]
        out = argv[2]
    elif mode == "nf4" and len(argv) == 4:
        A = read_f32(argv[2])
        packed, absmax = quantize_4bit_nf4(A, 64)
        offset = mean_f32(absmax)
        centered = [f32(a - offset) for a in absmax]
        # quantize_cpu sets the map's entry 0 to -1.0 before quantizing.
        qabsmax, absmax2 = quantize_blockwise(centered, [-1.0] + code[1:], 256)
        result = {
            "packed": packed.hex(),
            "absmax": [bits(a) for a in absmax],
            "qabsmax": qabsmax.hex(),
            "absmax2": [bits(a) for a in absmax2],
            "offset": bits(offset),
        }
        out = argv[3]
    elif mode == "q8" and len(argv) == 4:
        A = read_f32(argv[2])
        q, absmax = quantize_blockwise(A, code, 256)
        result = {"q": q.hex(), "absmax": [bits(a) for a in absmax]}
        out = argv[3]
    else:
        sys.exit(__doc__)
    with open(out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv)
