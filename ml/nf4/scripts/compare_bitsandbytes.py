#!/usr/bin/env python3
"""Compare mlbuild's NF4 quantization with real bitsandbytes on a CUDA GPU.

NOT RUN IN THE DEVELOPMENT ENVIRONMENT: it needs an NVIDIA GPU with torch and
bitsandbytes installed, which the machine this package was written on does not
have. Run it on such a machine:

    pip install torch bitsandbytes
    python3 ml/nf4/scripts/compare_bitsandbytes.py            # from the repo root
    go test ./ml/nf4/ -run Bitsandbytes -v                      # then, anywhere

What it does, for several float32 inputs (tie-rich blocks, zeros, an odd
length, random weights):

  1. bnb.functional.quantize_4bit(A, blocksize=64, quant_type="nf4",
     compress_statistics=True) and compress_statistics=False on CUDA;
  2. the same with scripts/nf4_reference.py (pure Python, which
     `go test ./ml/nf4/` proves byte-identical to the Go package);
  3. compares: packed nibbles, float32 absmax, the dynamic map
     (state2.code), the offset (torch's float32 mean vs ours, reported in
     ulps), and - given bnb's own offset - the 8-bit
     qabsmax and absmax2; and dequantize_4bit's output against
     code * (code2[q]*absmax2 + offset).

Expected differences, explained in the Go package documentation (the Go
package and scripts/nf4_reference.py follow bitsandbytes' CPU backend; the
CUDA kernels use a decision tree for the nibble, dQuantize<0> for the 8-bit
codes and the dynamic map's own entry 0, so a code may differ where those
rules give bitsandbytes' code; the checks below apply the CUDA rules):
  * bnb compiles with --use_fast_math, so 1/absmax is rcp.approx (<= 1 ulp
    from the IEEE quotient used here). A nibble (or 8-bit code) may then differ
    where x times a float32 neighbour of the IEEE reciprocal gives bnb's code
    (never in a block whose absmax is a power of two); such mismatches are
    counted as "explained by rcp.approx". Any other mismatch is a bug.
  * torch's CUDA mean is a float32 tree reduction times float32(1/N); ours is
    float32(float64 index-order sum) times float32(1/N). They may differ by a
    few ulp on big tensors (the 8-bit stage is then compared given bnb's offset).

It also writes ml/nf4/testdata/bnb_fixture.json (inputs and bnb's outputs for
the small cases), which TestBitsandbytesFixture in the Go package checks
directly against the Go implementation.
"""

import json
import math
import os
import random
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import nf4_reference as ref  # noqa: E402

try:
    import torch
    import bitsandbytes as bnb
    import bitsandbytes.functional as F
except ImportError as e:  # pragma: no cover
    sys.exit("needs torch and bitsandbytes (and a CUDA GPU): %s" % e)


def f32bits(x):
    return "%08x" % struct.unpack("<I", struct.pack("<f", x))[0]


def ulp_distance(a, b):
    ia = struct.unpack("<i", struct.pack("<f", a))[0]
    ib = struct.unpack("<i", struct.pack("<f", b))[0]
    if ia < 0:
        ia = -(ia & 0x7FFFFFFF)
    if ib < 0:
        ib = -(ib & 0x7FFFFFFF)
    return abs(ia - ib)


THRESHOLDS = [ref.T000, ref.T00, ref.T001, ref.T0, ref.T010, ref.T01, ref.T011, ref.T1,
              ref.T100, ref.T10, ref.T101, ref.T11, ref.T110, ref.T111, ref.T1111]  # ascending


def rcp_neighbours(a):
    """float32 neighbours of the IEEE 1/a: what rcp.approx (<= 1 ulp) may
    return instead. None for a power of two, whose reciprocal is exact."""
    if a == 0 or a != a or math.isinf(a):
        return []
    m, _ = math.frexp(abs(a))
    if m == 0.5:
        return []
    r = ref.recip(a)
    i = struct.unpack("<i", struct.pack("<f", r))[0]
    return [struct.unpack("<f", struct.pack("<i", i + d))[0] for d in (-1, 1)]


def tie_rich_input(rng):
    """Blocks with exact ties (power-of-two absmax), codes, zeros, subnormals."""
    x = []
    codes = ref.create_dynamic_map()  # 64 of its values make one block below
    nf4 = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
           -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
           0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
           0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0]
    for e in range(-3, 4):
        a = 2.0 ** e
        v = [a]
        for t in THRESHOLDS:
            v += [t * a, -t * a]
        v += [ref.f32(c) * a for c in nf4]
        while len(v) < 64:
            v.append(ref.f32(rng.gauss(0, 0.3) * a))
        x += v[:64]
    for _ in range(300):
        s = math.exp(rng.uniform(-12, 2))
        x += [ref.f32(rng.gauss(0, s)) if rng.random() > 0.03 else 0.0 for _ in range(64)]
    x += [0.0] * 64
    x += [1e-40, -3e-39, 5e-41] + [0.0] * 61
    x += [ref.f32(v) for v in codes[::4]]  # 64 values of the dynamic map
    x += [0.25, -1.0, 0.125, 0.5, 0.0, 0.3, -0.7]  # odd, short last block
    return [ref.f32(v) for v in x]


def bnb_quantize(x, shape):
    A = torch.tensor(x, dtype=torch.float32, device="cuda").reshape(shape)
    q, st = F.quantize_4bit(A, blocksize=64, quant_type="nf4", compress_statistics=True)
    q_plain, st_plain = F.quantize_4bit(A, blocksize=64, quant_type="nf4", compress_statistics=False)
    deq = F.dequantize_4bit(q, st).float().flatten().tolist()
    return {
        "packed": bytes(q.flatten().cpu().tolist()),
        "packed_plain": bytes(q_plain.flatten().cpu().tolist()),
        "absmax": st_plain.absmax.float().cpu().tolist(),
        "qabsmax": bytes(st.absmax.flatten().cpu().tolist()),
        "absmax2": st.state2.absmax.float().cpu().tolist(),
        "offset": float(st.offset.item()),
        "code2": st.state2.code.float().cpu().tolist(),
        "dequantized": deq,
    }


def compare(name, x, shape, fixture):
    b = bnb_quantize(x, shape)
    packed, absmax = ref.quantize_4bit_nf4(x, 64)
    code = ref.create_dynamic_map()
    problems = 0

    if [f32bits(c) for c in b["code2"]] != [f32bits(c) for c in code]:
        bad = [i for i in range(256) if f32bits(b["code2"][i]) != f32bits(code[i])]
        print("  dynamic map differs at %d entries, e.g. %s" % (len(bad), bad[:8]))
        problems += 1
    if b["packed"] != b["packed_plain"]:
        print("  bnb packed differs between compress_statistics True/False (unexpected)")
        problems += 1
    if [f32bits(a) for a in b["absmax"]] != [f32bits(a) for a in absmax]:
        print("  absmax differs")
        problems += 1

    near = other = 0
    for i in range(len(b["packed"])):
        if b["packed"][i] == packed[i]:
            continue
        for j in (2 * i, 2 * i + 1):
            if j >= len(x):
                continue
            shift = 4 * (1 - j % 2)
            bn, ours = (b["packed"][i] >> shift) & 15, (packed[i] >> shift) & 15
            if bn == ours:
                continue
            if any(ref.dquantize_nf4_tree(ref.ftz(ref.mul(ref.ftz(x[j]), r))) == bn
                   for r in (rcp_neighbours(absmax[j // 64]) or []) + [ref.recip(absmax[j // 64])]):
                near += 1
            else:
                other += 1
                if other <= 5:
                    p = ref.mul(ref.ftz(x[j]), ref.recip(absmax[j // 64]))
                    print("  element %d: x=%r absmax=%r normalized=%r: bnb nibble %x, ours %x"
                          % (j, x[j], absmax[j // 64], p, bn, ours))
    print("  packed: %d bytes, %d nibble differences explained by the CUDA rules, %d other"
          % (len(packed), near, other))
    problems += other

    ours = ref.mean_f32(absmax)
    print("  offset: bnb %r, ours %r (%d ulp)" % (b["offset"], ours, ulp_distance(b["offset"], ours)))

    off = ref.f32(b["offset"])
    centered = [ref.f32(a - off) for a in absmax]
    qabs, absmax2 = ref.quantize_blockwise(centered, code, 256)
    if [f32bits(a) for a in b["absmax2"]] != [f32bits(a) for a in absmax2]:
        print("  absmax2 differs: bnb %r ours %r" % (b["absmax2"][:4], absmax2[:4]))
        problems += 1
    qd = [k for k in range(len(qabs)) if qabs[k] != b["qabsmax"][k]]
    qnear = 0
    for k in qd:
        if any(ref.dquantize8_cuda(code, ref.ftz(ref.mul(ref.ftz(centered[k]), r))) == b["qabsmax"][k]
               for r in (rcp_neighbours(absmax2[k // 256]) or []) + [ref.recip(absmax2[k // 256])]):
            qnear += 1
    print("  qabsmax (given bnb's offset): %d differences, %d explained by the CUDA rules" % (len(qd), qnear))
    problems += len(qd) - qnear

    # Dequantization: code * (code2[q]*absmax2 + offset).
    nf4 = [ref.f32(v) for v in (-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
                                -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
                                0.07958029955625534, 0.16093020141124725, 0.24611230194568634,
                                0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
                                0.7229568362236023, 1.0)]
    am = [ref.f32(ref.ftz(ref.f32(code[b["qabsmax"][k]] * b["absmax2"][k // 256])) + off)
          for k in range(len(b["qabsmax"]))]
    dbad = 0
    for j in range(len(x)):
        byte = b["packed"][j // 2]
        nib = byte >> 4 if j % 2 == 0 else byte & 15
        want = ref.ftz(ref.f32(nf4[nib] * am[j // 64]))
        if f32bits(want) != f32bits(b["dequantized"][j]):
            dbad += 1
    print("  dequantize_4bit: %d values differ from code*(code2[q]*absmax2+offset)" % dbad)
    problems += dbad

    if fixture is not None:
        fixture.append({
            "name": name,
            "shape": list(shape),
            "input": "".join(f32bits(v) for v in x),
            "packed": b["packed"].hex(),
            "absmax": [f32bits(a) for a in b["absmax"]],
            "qabsmax": b["qabsmax"].hex(),
            "absmax2": [f32bits(a) for a in b["absmax2"]],
            "offset": f32bits(b["offset"]),
            "code2": [f32bits(c) for c in b["code2"]],
            "dequantized": "".join(f32bits(v) for v in b["dequantized"]),
        })
    return problems


def main():
    if not torch.cuda.is_available():
        sys.exit("no CUDA device")
    print("torch %s, bitsandbytes %s, %s" % (torch.__version__, bnb.__version__, torch.cuda.get_device_name()))
    rng = random.Random(1234)
    fixture = []
    problems = 0
    x = tie_rich_input(rng)
    cases = [
        ("tie_rich", x, (len(x),), True),
        ("odd_2d", [ref.f32(rng.gauss(0, 0.05)) for _ in range(33 * 101)], (33, 101), True),
        ("randn_1024x1024", [ref.f32(rng.gauss(0, 0.02)) for _ in range(1024 * 1024)], (1024, 1024), False),
    ]
    for name, data, shape, keep in cases:
        print("%s %s:" % (name, shape))
        problems += compare(name, data, shape, fixture if keep else None)
    out = os.path.join(HERE, "..", "testdata", "bnb_fixture.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump({"torch": torch.__version__, "bitsandbytes": bnb.__version__,
                   "device": torch.cuda.get_device_name(), "cases": fixture}, f)
    print("wrote %s" % os.path.normpath(out))
    print("PROBLEMS: %d" % problems if problems else "OK: byte-identical up to the documented rcp.approx cases")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
