# A reduced TwainBot for the end-to-end test: the same steps on the same
# demo data, with a tiny base model and short training (about a minute on
# two cores). Use it with: mlbuild run pipelines/twainbot.hcl -var-file pipelines/ci.vars.hcl
vocab_size        = 1024
hidden_size       = 64
num_layers        = 2
pretrain_epochs   = 2
qlora_epochs      = 1
eval_tool_prompts = 4
synth_count       = 300
reading_count     = 300
test_count        = 8
