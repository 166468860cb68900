# TwainBot from a base of its own, on a machine with no model: the pipeline
# trains a BPE tokenizer and pretrains a small llama (hidden 128, 4 layers)
# on general English and on weather questions with the tool's results, then
# fine-tunes it for five epochs on the tool's 81 places, with the Twain and
# Onion prose (about 8 minutes cold on two cores):
#
#   mlbuild run pipelines/twainbot.hcl -var-file pipelines/ownbase.vars.hcl
#
# Such a base learns the call for the places it was fine-tuned on, but it
# cannot copy a place it never saw from the question (docs/steps.md,
# pretrain), so its questions name the tool's listed places only and its
# calls name them canonically. README.md gives its numbers.
base_model        = "own"
places            = "listed"
train_persona     = true
qlora_epochs      = 5
synth_count       = 2400
answer_fraction   = 0.2
eval_tool_prompts = 0
test_count        = 200
call_location     = "canonical"
answer_style      = "full"
no_tool_fraction  = 0.2
small_talk        = 0
