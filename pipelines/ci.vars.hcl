# A reduced TwainBot for the end-to-end test: the same steps on the same
# demo data, with a tiny base of its own (ownbase.vars.hcl's recipe, so no
# download) and short training (about a minute on two cores). Use it with:
# mlbuild run pipelines/twainbot.hcl -var-file pipelines/ci.vars.hcl
base_model        = "own"
places            = "listed"
train_persona     = true
call_location     = "canonical"
answer_style      = "full"
no_tool_fraction  = 0.2
small_talk        = 0
answer_fraction   = 0.2
vocab_size        = 1024
hidden_size       = 64
num_layers        = 2
pretrain_epochs   = 2
qlora_epochs      = 1
eval_tool_prompts = 4
synth_count       = 300
reading_count     = 300
test_count        = 8
