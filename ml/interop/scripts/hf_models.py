#!/usr/bin/env python3
"""Reference models and logits from Hugging Face transformers for ml/interop.

Builds small random models from transformers' own config classes
(LlamaConfig, MistralConfig, Phi3Config) with fixed seeds, writes each with
save_pretrained (safetensors) into OUT/<case>/, and writes OUT/reference.json:
for each case the float32 logits of every position of INPUT_IDS, the
greedy continuation of PROMPT by model.generate(do_sample=False), and the
same by a plain argmax loop with, at each step, the margin between the best
and the second-best logit (so a mismatch can be told from a near tie).

A case with "expect_error" is a variant mlbuild refuses; it is saved the
same way so that the Go test checks the refusal on the config.json that
transformers really writes.

Run by ml/interop's tests with the pinned environment (tools/python):

    $MLBUILD_PYTHON ml/interop/scripts/hf_models.py OUT [CASE...]

With CASE names only those cases are written.
"""

import json
import os
import sys

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

VOCAB = 128
INPUT_IDS = [1, 5, 17, 33, 2, 60, 41, 8, 8, 19, 127, 0, 12, 7, 30, 55, 99, 64, 3, 110]
PROMPT = [1, 9, 30, 4]
MAX_NEW_TOKENS = 16

COMMON = dict(
    hidden_size=64,
    # A whole number of 64-blocks per row of every linear layer, as in real
    # models (SmolLM2-135M: 576 and 1536). bitsandbytes 0.49.2's C++ NF4
    # dequantization on an AVX-512 CPU gives wrong values when a row's
    # length is not a multiple of the blocksize (a block that straddles two
    # rows takes one absmax for both): with 96 here, 185 of 960 blocks of
    # its 4-bit base came out wrong and PEFT's logits on it moved by 25%,
    # while mlbuild's NF4 (blocks over the flattened tensor, as bitsandbytes'
    # CUDA kernels and its generic torch code do) was right. Blocks that
    # straddle rows are checked against bitsandbytes' bytes in nf4_test.go.
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,  # GQA: two query heads per kv head
    vocab_size=VOCAB,
    max_position_embeddings=256,
    rms_norm_eps=1e-5,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=0,
    # transformers' default 0.02 gives near-uniform logits and
    # degenerate greedy runs; a larger spread makes every token count.
    initializer_range=0.1,
)

# Llama-3.1's rope_scaling, as in its config.json.
LLAMA31_ROPE = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
}


def cases():
    """(name, model class, config, dtype, expect_error)."""
    f32, bf16, f16 = torch.float32, torch.bfloat16, torch.float16
    yield "llama", LlamaForCausalLM, LlamaConfig(**COMMON), f32, None
    # Saved in shards with model.safetensors.index.json, as real checkpoints are.
    yield "llama-sharded", LlamaForCausalLM, LlamaConfig(**COMMON), f32, None
    yield "llama-tied", LlamaForCausalLM, LlamaConfig(**COMMON, tie_word_embeddings=True), f32, None
    yield "llama-mha", LlamaForCausalLM, LlamaConfig(**{**COMMON, "num_key_value_heads": 4}), f32, None
    yield "llama-bf16", LlamaForCausalLM, LlamaConfig(**COMMON), bf16, None
    # head_dim 16 gives frequencies in all three llama3 bands (kept, blended,
    # divided by the factor) for theta 500000 and original context 8192.
    yield "llama31-rope", LlamaForCausalLM, LlamaConfig(
        **{**COMMON, "max_position_embeddings": 131072},
        rope_theta=500000.0,
        rope_scaling=LLAMA31_ROPE,
    ), f32, None
    # Position interpolation (LongChat, LLaMA-2-7B-32K).
    yield "llama-linear-rope", LlamaForCausalLM, LlamaConfig(
        **COMMON, rope_scaling={"rope_type": "linear", "factor": 3.0}
    ), f32, None
    yield "mistral", MistralForCausalLM, MistralConfig(**COMMON, rope_theta=1000000.0), f32, None
    # head_dim given explicitly, not hidden/heads (as Mistral-Nemo does).
    yield "mistral-head-dim", MistralForCausalLM, MistralConfig(**COMMON, head_dim=32, sliding_window=None), f32, None
    yield "phi3-f16", Phi3ForCausalLM, Phi3Config(**COMMON, sliding_window=None, original_max_position_embeddings=256), f16, None
    yield "phi3", Phi3ForCausalLM, Phi3Config(**COMMON, sliding_window=None, original_max_position_embeddings=256), f32, None
    yield "phi3-tied", Phi3ForCausalLM, Phi3Config(
        **COMMON, sliding_window=2047, original_max_position_embeddings=256, tie_word_embeddings=True
    ), f32, None
    # Variants mlbuild refuses with a clear error.
    yield "mistral-window", MistralForCausalLM, MistralConfig(**COMMON, sliding_window=8), f32, "sliding attention window"
    yield "llama-dynamic-rope", LlamaForCausalLM, LlamaConfig(
        **COMMON, rope_scaling={"rope_type": "dynamic", "factor": 2.0}
    ), f32, 'rope_scaling type "dynamic" is not supported'
    yield "llama-yarn-rope", LlamaForCausalLM, LlamaConfig(
        **COMMON, rope_scaling={"rope_type": "yarn", "factor": 4.0}
    ), f32, 'rope_scaling type "yarn" is not supported'
    yield "phi3-longrope", Phi3ForCausalLM, Phi3Config(
        **{**COMMON, "max_position_embeddings": 1024},
        sliding_window=None,
        original_max_position_embeddings=256,
        rope_scaling={"type": "longrope", "short_factor": [1.0] * 8, "long_factor": [2.0] * 8},
    ), f32, 'rope_scaling type "longrope" is not supported'
    yield "llama-attention-bias", LlamaForCausalLM, LlamaConfig(**COMMON, attention_bias=True), f32, "attention_bias is true"
    yield "llama-mlp-bias", LlamaForCausalLM, LlamaConfig(**COMMON, mlp_bias=True), f32, "mlp_bias is true"


def generate(model, prompt, n):
    """transformers' own greedy decoding (with its KV cache), never
    stopping early."""
    with torch.no_grad():
        out = model.generate(
            torch.tensor([prompt]), do_sample=False, max_new_tokens=n, min_new_tokens=n, eos_token_id=None, pad_token_id=0
        )
    return out[0, len(prompt):].tolist()


def greedy(model, prompt, n):
    """Argmax decoding by full recompute, with the margin of each choice;
    torch.argmax takes the lowest id on ties, as mlbuild does."""
    ids, out, margins = list(prompt), [], []
    with torch.no_grad():
        for _ in range(n):
            logits = model(torch.tensor([ids])).logits[0, -1].float()
            top = torch.topk(logits, 2).values
            nxt = int(torch.argmax(logits))
            out.append(nxt)
            margins.append(float(top[0] - top[1]))
            ids.append(nxt)
    return out, margins


def main():
    out, only = sys.argv[1], set(sys.argv[2:])
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    refs = []
    for seed, (name, cls, cfg, dtype, expect_error) in enumerate(cases()):
        if only and name not in only:
            continue
        torch.manual_seed(seed)
        model = cls(cfg).eval()
        # Norm weights start at ones; perturb them so that a missing or
        # misplaced norm weight shows in the logits.
        with torch.no_grad():
            for pname, p in model.named_parameters():
                if pname.endswith("norm.weight"):
                    p.add_(0.2 * torch.randn_like(p))
        path = os.path.join(out, name)
        shard = "60KB" if name.endswith("-sharded") else "5GB"
        model.to(dtype).save_pretrained(path, safe_serialization=True, max_shard_size=shard)
        ref = {"name": name, "architecture": cls.__name__, "dtype": str(dtype).replace("torch.", "")}
        if expect_error:
            ref["expect_error"] = expect_error
        else:
            # The reference of a bf16 or f16 checkpoint is its rounded
            # weights run in float32, which is what mlbuild computes.
            m = cls.from_pretrained(path, torch_dtype=torch.float32, attn_implementation="eager").eval()
            with torch.no_grad():
                ref["logits"] = m(torch.tensor([INPUT_IDS])).logits[0].float().tolist()
            ref["greedy"], ref["margins"] = greedy(m, PROMPT, MAX_NEW_TOKENS)
            ref["generate"] = generate(m, PROMPT, MAX_NEW_TOKENS)
        refs.append(ref)
    meta = {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "input_ids": INPUT_IDS,
        "prompt": PROMPT,
        "cases": refs,
    }
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(meta, f)


if __name__ == "__main__":
    main()
