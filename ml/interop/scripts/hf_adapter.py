#!/usr/bin/env python3
"""Load mlbuild's LoRA adapters with PEFT and its merged models with
transformers, and report their logits.

    $MLBUILD_PYTHON ml/interop/scripts/hf_adapter.py REQUEST.json

REQUEST.json is {"input_ids": [...], "cases": [{"name", "base", "original",
"adapter", "merged"}]}: base is the dequantized base model mlbuild trained
against (a Hugging Face directory), original the base before quantization,
adapter the PEFT adapter directory mlbuild wrote, merged the directory
mlbuild's merge wrote. Per case the script writes to stdout, as JSON: the
float32 logits of every position of input_ids under
PeftModel.from_pretrained(base, adapter) ("peft"), under the same on the
original base with its decoder layers' linear layers made
bitsandbytes.nn.Linear4bit (NF4, double quantization, blocksize 64,
float32 compute; bitsandbytes quantizes them on the CPU) ("peft_4bit"), under
AutoModelForCausalLM.from_pretrained(merged) ("merged"), and, for every
tensor of PEFT's own merge_and_unload(), max |peft − mlbuild| / max |peft|
against mlbuild's merged file ("merge_rel": the largest, "merge_worst":
its tensor).
"""

import json
import sys

import bitsandbytes as bnb
import peft
import torch
import transformers
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM


def logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float().tolist()


def to_4bit(model):
    """Replace every linear layer of the decoder layers (the ones mlbuild's
    QLoRA quantizes) with bitsandbytes' Linear4bit, quantized by
    bitsandbytes on the CPU. transformers' own path,
    from_pretrained(quantization_config=BitsAndBytesConfig(load_in_4bit=True)),
    refuses a machine without a GPU in transformers 4.49 (see
    docs/models.md)."""
    for layer in model.model.layers:
        for parent in (layer.self_attn, layer.mlp):
            for name, mod in list(parent.named_children()):
                if not isinstance(mod, torch.nn.Linear):
                    continue
                q = bnb.nn.Linear4bit(mod.in_features, mod.out_features, bias=mod.bias is not None,
                                      compute_dtype=torch.float32, compress_statistics=True, quant_type="nf4")
                q.weight = bnb.nn.Params4bit(mod.weight.data.clone(), requires_grad=False,
                                             compress_statistics=True, quant_type="nf4", blocksize=64)
                # On a CPU with AVX512-BF16, bitsandbytes 0.49.2 repacks an
                # eval-mode Linear4bit's weights at its first forward for a
                # bfloat16 kernel (bfloat16 absmax and compute) that assumes
                # in_features is a multiple of the blocksize: on the tiny
                # test models it fails ("shape '[64, 1]' is invalid for input
                # of size 96"), and elsewhere its bfloat16 would not be the
                # float32 reference this script is. Keep the float32 path
                # every other CPU takes.
                q.support_avx512bf16_for_cpu = False
                if mod.bias is not None:
                    q.bias = torch.nn.Parameter(mod.bias.data.clone(), requires_grad=False)
                setattr(parent, name, q.to("cpu"))
    return model


def compare_4bit(model, dequantized):
    """Compare bitsandbytes' dequantized 4-bit weights with mlbuild's NF4
    round trip of the same weights (the dequantized base): how many 64-blocks
    differ, and how many of those have 8-bit absmax code 0, where
    bitsandbytes' CPU quantizer uses -1.0 for the map's entry 0."""
    blocks = differ = differ_q0 = 0
    for name, mod in model.named_modules():
        if not isinstance(mod, bnb.nn.Linear4bit):
            continue
        w = mod.weight
        ours = dequantized[name + ".weight"].reshape(-1)
        theirs = bnb.functional.dequantize_4bit(w.data, w.quant_state).reshape(-1)
        n = ours.numel()
        pad = (-n) % 64
        d = torch.nn.functional.pad((ours != theirs).to(torch.int8), (0, pad)).reshape(-1, 64).any(dim=1)
        blocks += d.numel()
        differ += int(d.sum())
        differ_q0 += int((d & (w.quant_state.absmax == 0)).sum())
    return {"blocks_4bit": blocks, "blocks_differ": differ, "blocks_differ_q0": differ_q0}


def main():
    with open(sys.argv[1]) as f:
        req = json.load(f)
    torch.set_num_threads(1)
    ids = req["input_ids"]
    out = {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__, "cases": []}
    for c in req["cases"]:
        load = dict(torch_dtype=torch.float32, attn_implementation="eager")
        base = AutoModelForCausalLM.from_pretrained(c["base"], **load).eval()
        adapted = PeftModel.from_pretrained(base, c["adapter"]).eval()
        res = {"name": c["name"], "peft": logits(adapted, ids), "bitsandbytes": bnb.__version__}
        base4 = to_4bit(AutoModelForCausalLM.from_pretrained(c["original"], **load)).eval()
        res.update(compare_4bit(base4, load_file(c["base"] + "/model.safetensors")))
        res["peft_4bit"] = logits(PeftModel.from_pretrained(base4, c["adapter"]).eval(), ids)
        merged = AutoModelForCausalLM.from_pretrained(c["merged"], **load).eval()
        res["merged"] = logits(merged, ids)
        ours = load_file(c["merged"] + "/model.safetensors")
        theirs = adapted.merge_and_unload().state_dict()
        worst, worst_name = 0.0, ""
        for name, w in theirs.items():
            if name not in ours:
                continue  # lm_head.weight of a tied model is not stored
            rel = float((w - ours[name]).abs().max() / w.abs().max())
            if rel >= worst:
                worst, worst_name = rel, name
        res["merge_rel"], res["merge_worst"] = worst, worst_name
        res["missing"] = sorted(n for n in theirs if n not in ours and n != "lm_head.weight")
        out["cases"].append(res)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
