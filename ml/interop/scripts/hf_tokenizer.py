#!/usr/bin/env python3
"""Encode, decode and render chats with transformers' AutoTokenizer.

    $MLBUILD_PYTHON ml/interop/scripts/hf_tokenizer.py REQUEST.json

REQUEST.json is {"dirs": [...], "texts": [...], "chats": [{"messages": [...],
"add_generation_prompt": bool}]}. For each directory (a tokenizer written
by mlbuild) the script loads AutoTokenizer.from_pretrained(dir) and writes
to stdout, as JSON, per text the ids without and with special tokens and
the decoding of the former, and per chat the text and the ids of
apply_chat_template (tokenize=False, then tokenize=True).
"""

import json
import sys

import tokenizers
import transformers
from transformers import AutoTokenizer


def main():
    with open(sys.argv[1]) as f:
        req = json.load(f)
    out = {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__, "dirs": []}
    for d in req["dirs"]:
        tok = AutoTokenizer.from_pretrained(d)
        res = {"class": type(tok).__name__, "texts": [], "chats": []}
        for text in req["texts"]:
            ids = tok(text, add_special_tokens=False)["input_ids"]
            res["texts"].append({
                "ids": ids,
                "ids_special": tok(text)["input_ids"],
                "decoded": tok.decode(ids),
            })
        if tok.chat_template:
            for c in req["chats"]:
                g = c["add_generation_prompt"]
                res["chats"].append({
                    "text": tok.apply_chat_template(c["messages"], tokenize=False, add_generation_prompt=g),
                    "ids": tok.apply_chat_template(c["messages"], tokenize=True, add_generation_prompt=g),
                })
        out["dirs"].append(res)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
