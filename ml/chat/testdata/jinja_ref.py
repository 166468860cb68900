#!/usr/bin/env python3
"""Writes jinja_golden.json: the chat templates that tokenizer_train writes
into tokenizer_config.json (Template.Jinja, for every built-in template of
ml/chat it can convert), rendered by Python's jinja2 the way transformers'
apply_chat_template compiles them (ImmutableSandboxedEnvironment with
trim_blocks and lstrip_blocks), over a fixed set of conversations, with and
without the generation prompt. TestJinjaTemplate checks that chat.Render
gives the same text, so the Jinja string is equivalent to the format.

    python3 ml/chat/testdata/jinja_ref.py   # needs jinja2 and go
"""
import json
import os
import subprocess
import tempfile

from jinja2.sandbox import ImmutableSandboxedEnvironment

here = os.path.dirname(os.path.abspath(__file__))
pkg = os.path.dirname(here)

conversations = [
    [],
    [{"role": "user", "content": "Hi"}],
    [
        {"role": "system", "content": "You are TwainBot."},
        {"role": "user", "content": "What's the weather in Hannibal tomorrow?"},
        {"role": "assistant", "content": "Let me look.\n<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Hannibal\"}}</tool_call>"},
        {"role": "tool", "content": "{\"temperature_c\": 21, \"condition\": \"sunny\"}"},
        {"role": "assistant", "content": "Sunny, 21 °C. The river approves."},
    ],
    [
        {"role": "system", "content": "  padded system  \n"},
        {"role": "user", "content": "\tquote ' and backslash \\ and {{ braces }} and {% tags %}\n"},
        {"role": "narrator", "content": "an unknown role"},
        {"role": "assistant", "content": ""},
    ],
]

with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "templates.json")
    env = dict(os.environ, MLBUILD_WRITE_TEMPLATES=path)
    subprocess.run(["go", "test", "-count=1", "-run", "^TestWriteTemplates$", "."], cwd=pkg, env=env, check=True)
    with open(path) as f:
        templates = json.load(f)

jenv = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
out = {"conversations": conversations, "templates": []}
for t in templates:
    tpl = jenv.from_string(t["template"])
    rendered = []
    for msgs in conversations:
        for gen in (False, True):
            rendered.append(tpl.render(messages=msgs, add_generation_prompt=gen, bos_token="<s>", eos_token="</s>"))
    out["templates"].append({"name": t["name"], "template": t["template"], "rendered": rendered})

with open(os.path.join(here, "jinja_golden.json"), "w") as f:
    json.dump(out, f, ensure_ascii=False, indent=1)
    f.write("\n")
print("wrote", len(out["templates"]), "templates x", len(conversations), "conversations")
