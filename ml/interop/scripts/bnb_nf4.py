#!/usr/bin/env python3
"""Quantize tensors to NF4 with bitsandbytes on the CPU and write every part
of the result, for ml/interop's comparison with mlbuild's ml/nf4.

    $MLBUILD_PYTHON ml/interop/scripts/bnb_nf4.py REQUEST.json OUT.safetensors

REQUEST.json is {"inputs": [{"file": F.safetensors, "names": [...]}]}: the
tensors to quantize (float32, float16 or bfloat16; names unique over all
files). For each tensor N the script calls

    bitsandbytes.functional.quantize_4bit(A, blocksize=64, quant_type="nf4",
                                          compress_statistics=True)

and writes to OUT.safetensors: N/packed (uint8, the packed nibbles, flat),
N/qabsmax (uint8, quant_state.absmax), N/absmax2 (float32,
quant_state.state2.absmax), N/offset (float32 [1]), N/code2 (float32 [256],
quant_state.state2.code, the 8-bit map the quantization used and
dequantization uses), N/absmax (float32, the first-level absmax, from the
same call with compress_statistics=False), N/dequantized (float32,
dequantize_4bit of the double-quantized result to float32; mlbuild's QLoRA
computes in float32), and once dynamic_map (create_dynamic_map(signed=True),
the 8-bit map as bitsandbytes defines it). The metadata holds the versions
of torch and bitsandbytes.

The tensors are quantized one by one, on one thread (torch.set_num_threads;
bitsandbytes' C++ 8-bit quantizer starts a thread per block but computes
each block alone, so the result does not depend on threads).
"""

import copy
import json
import sys

import bitsandbytes
import bitsandbytes.functional as F
import torch
from safetensors import safe_open
from safetensors.torch import save_file


def main():
    with open(sys.argv[1]) as f:
        req = json.load(f)
    torch.set_num_threads(1)
    out = {"dynamic_map": F.create_dynamic_map(signed=True).float().contiguous()}
    for inp in req["inputs"]:
        with safe_open(inp["file"], framework="pt") as sf:
            for name in inp["names"]:
                a = sf.get_tensor(name)
                packed, qs = F.quantize_4bit(a, blocksize=64, quant_type="nf4", compress_statistics=True)
                _, plain = F.quantize_4bit(a, blocksize=64, quant_type="nf4", compress_statistics=False)
                q32 = copy.copy(qs)
                q32.dtype = torch.float32
                out[name + "/packed"] = packed.reshape(-1).contiguous()
                out[name + "/qabsmax"] = qs.absmax.contiguous()
                out[name + "/absmax2"] = qs.state2.absmax.contiguous()
                out[name + "/offset"] = qs.offset.reshape(1).float().contiguous()
                out[name + "/code2"] = qs.state2.code.float().contiguous().clone()
                out[name + "/absmax"] = plain.absmax.float().contiguous()
                out[name + "/dequantized"] = F.dequantize_4bit(packed, q32).reshape(-1).contiguous()
    save_file(out, sys.argv[2], metadata={"torch": torch.__version__, "bitsandbytes": bitsandbytes.__version__})


if __name__ == "__main__":
    main()
