#!/usr/bin/env python3
"""Load mlbuild's LoRA adapters with PEFT and its merged models with
transformers, and report their logits.

    $MLBUILD_PYTHON ml/interop/scripts/hf_adapter.py REQUEST.json

REQUEST.json is {"input_ids": [...], "cases": [{"name", "base", "adapter",
"merged"}]}: base is the dequantized base model mlbuild trained against (a
Hugging Face directory), adapter the PEFT adapter directory mlbuild wrote,
merged the directory mlbuild's merge wrote. Per case the script writes to
stdout, as JSON: the float32 logits of every position of input_ids under
PeftModel.from_pretrained(base, adapter) ("peft"), under
AutoModelForCausalLM.from_pretrained(merged) ("merged"), and, for every
tensor of PEFT's own merge_and_unload(), max |peft − mlbuild| / max |peft|
against mlbuild's merged file ("merge_rel": the largest, "merge_worst":
its tensor).
"""

import json
import sys

import peft
import torch
import transformers
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM


def logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float().tolist()


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
        res = {"name": c["name"], "peft": logits(adapted, ids)}
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
