#!/usr/bin/env python3
"""The PEFT side of bench's LoRA training row (bench/lora.go).

Loads the random llama that bench wrote (config.json + model.safetensors,
the same directory mlbuild trains on) with transformers, wraps it with
PEFT's LoRA on the float32 base (mlbuild's side dequantizes an NF4 base;
bitsandbytes' 4-bit layers on the CPU dequantize with pure torch code, so
the float32 base is the fast peer), and trains it with a plain
loop: forward with labels (transformers' shifted cross-entropy), backward,
global-norm clipping, torch.optim.AdamW, zero_grad. The data are the
sequences mlbuild trains on: BATCH sequences of SEQ ids, id[i][j] =
3 + (7i + 13j) mod (vocab - 3), every token a label. WARMUP steps run
untimed, then STEPS are timed. Prints one JSON line on stdout, with the
BLAS torch runs its matmuls in (PyPI's torch: MKL, linked into
libtorch_cpu).

Run by `make bench` with the pinned environment (tools/python/env.sh):

    $MLBUILD_PYTHON bench/peft_lora.py DIR THREADS WARMUP STEPS BATCH SEQ R ALPHA DROPOUT LR MAX_GRAD_NORM
"""

import json
import os
import re
import sys
import time

import torch


def blas():
    """The BLAS torch's matmuls run in: from its build configuration (PyPI's
    wheels link MKL statically), else the BLAS library the process loaded."""
    m = re.search(r"\bBLAS_INFO=(\w+)", torch.__config__.show())
    if m:
        return m.group(1) + (" (linked into torch)" if m.group(1) == "mkl" and torch.backends.mkl.is_available() else "")
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            if "blas" in os.path.basename(path):
                return os.path.basename(path)
    return "unknown"


def main():
    (model_dir, threads, warmup, steps, batch, seq, r, alpha, dropout, lr, max_norm) = sys.argv[1:]
    threads, warmup, steps, batch, seq, r = map(int, (threads, warmup, steps, batch, seq, r))
    alpha, dropout, lr, max_norm = map(float, (alpha, dropout, lr, max_norm))
    torch.set_num_threads(threads)
    torch.manual_seed(42)

    import peft
    import transformers
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
    total = sum(p.numel() for p in model.parameters())
    cfg = peft.LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        bias="none",
        task_type="CAUSAL_LM",
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    )
    model = peft.get_peft_model(model, cfg)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in trainable)
    opt = torch.optim.AdamW(trainable, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)

    vocab = model.config.vocab_size
    ids = torch.tensor([[3 + (i * 7 + j * 13) % (vocab - 3) for j in range(seq)] for i in range(batch)], dtype=torch.long)
    losses = []
    t0 = time.perf_counter()
    for step in range(warmup + steps):
        if step == warmup:
            t0 = time.perf_counter()
        out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        if max_norm > 0:
            torch.nn.utils.clip_grad_norm_(trainable, max_norm)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(out.loss.item())
    seconds = time.perf_counter() - t0
    print(json.dumps({
        "tokens_per_sec": steps * batch * seq / seconds,
        "seconds": seconds,
        "steps": steps,
        "total_params": total,
        "trainable_params": n_trainable,
        "losses": losses,
        "threads": torch.get_num_threads(),
        "attn": getattr(model.config, "_attn_implementation", "eager"),
        "blas": blas(),
        "versions": "torch %s, transformers %s, peft %s" % (torch.__version__, transformers.__version__, peft.__version__),
    }))


if __name__ == "__main__":
    main()
