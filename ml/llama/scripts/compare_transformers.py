#!/usr/bin/env python3
"""Write Hugging Face transformers reference fixtures for ml/llama.

Builds tiny random LlamaForCausalLM, MistralForCausalLM and Phi3ForCausalLM
models with transformers, saves each with save_pretrained (safetensors, in
float32 and in bfloat16), runs them on fixed token ids and writes the
reference logits (every position) and a greedy generation as JSON.
ml/llama's TestTransformersFixtures loads the same directories with the Go
implementation and compares; it skips when the fixtures are absent.

Not run in CI: it needs torch and transformers (see README.md).

    python3 ml/llama/scripts/compare_transformers.py [--out ml/llama/testdata/transformers]

Semantics of the references: mlbuild computes activations in float32 and
widens bf16 weights on the fly, so the logits of a bf16 checkpoint are
computed by loading it with torch_dtype=torch.float32 (the bf16-rounded
weights, float32 arithmetic). "logits_native" additionally records the
model run in its own dtype (bf16 activations), for information only.
"""

import argparse
import json
import os

import torch
import transformers
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Phi3Config,
    Phi3ForCausalLM,
)

INPUT_IDS = [1, 5, 17, 33, 2, 60, 41, 8, 8, 19, 63, 0, 12, 7, 30, 55]
PROMPT = [1, 9, 30, 4]
MAX_NEW_TOKENS = 16

COMMON = dict(
    hidden_size=32,
    intermediate_size=48,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    vocab_size=64,
    max_position_embeddings=256,
    rms_norm_eps=1e-5,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=0,
)


def cases():
    yield "llama", LlamaForCausalLM, LlamaConfig(**COMMON, rope_theta=10000.0)
    yield "llama-tied", LlamaForCausalLM, LlamaConfig(**COMMON, tie_word_embeddings=True)
    yield "llama3-rope", LlamaForCausalLM, LlamaConfig(
        **COMMON,
        rope_theta=500000.0,
        rope_scaling={
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 64,
        },
    )
    yield "mistral", MistralForCausalLM, MistralConfig(**COMMON, sliding_window=None)
    yield "phi3", Phi3ForCausalLM, Phi3Config(
        **COMMON, sliding_window=None, rope_scaling=None, original_max_position_embeddings=256
    )


def greedy(model, prompt, n):
    """Argmax decoding by full recompute (torch.argmax picks the lowest id on ties)."""
    ids = list(prompt)
    out = []
    with torch.no_grad():
        for _ in range(n):
            logits = model(torch.tensor([ids])).logits[0, -1]
            nxt = int(torch.argmax(logits))
            out.append(nxt)
            ids.append(nxt)
    return out


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "testdata", "transformers"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    fixtures = []
    for name, cls, cfg in cases():
        torch.manual_seed(args.seed)
        model = cls(cfg).eval()
        # Norm weights are initialised to ones; perturb them so that a
        # missing or misplaced norm weight shows in the logits.
        with torch.no_grad():
            for pname, p in model.named_parameters():
                if pname.endswith("norm.weight"):
                    p.add_(0.2 * torch.randn_like(p))
        for dtype_name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
            rel = f"{name}-{dtype_name}"
            path = os.path.join(args.out, rel)
            model.to(dtype).save_pretrained(path, safe_serialization=True)
            ref = cls.from_pretrained(path, torch_dtype=torch.float32).eval()
            with torch.no_grad():
                logits = ref(torch.tensor([INPUT_IDS])).logits[0].float().tolist()
            case = {
                "name": rel,
                "dir": rel,
                "architecture": cfg.architectures[0] if cfg.architectures else cls.__name__,
                "dtype": dtype_name,
                "input_ids": INPUT_IDS,
                "logits": logits,
                "prompt": PROMPT,
                "greedy": greedy(ref, PROMPT, MAX_NEW_TOKENS),
                "tolerance": 1e-4,
            }
            if dtype is not torch.float32:
                native = cls.from_pretrained(path, torch_dtype=dtype).eval()
                with torch.no_grad():
                    case["logits_native"] = native(torch.tensor([INPUT_IDS])).logits[0].float().tolist()
            fixtures.append(case)
            model.to(torch.float32)
    meta = {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "seed": args.seed,
        "cases": fixtures,
    }
    with open(os.path.join(args.out, "reference.json"), "w") as f:
        json.dump(meta, f)
    print(f"wrote {len(fixtures)} cases to {args.out}")


if __name__ == "__main__":
    main()
