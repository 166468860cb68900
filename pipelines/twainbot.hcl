# TwainBot: the data half of the pipeline that fine-tunes a small language
# model to write with Mark Twain's wit and to call a weather tool.
#
#   mlbuild run pipelines/twainbot.hcl                      # demo data
#   mlbuild run pipelines/twainbot.hcl -var data_dir=../../shared/data   # the real data
#
# data_dir holds onion/*.csv (the r/TheOnion scrape's schema) and
# gutenberg/*.txt (Project Gutenberg books); relative paths are resolved
# against this file's folder. The training steps (tokenizer_train, pretrain,
# qlora_train, merge, eval) are added by a later issue.

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

variable "validation" {
  type        = number
  default     = 0.05
  description = "Fraction (or, when >= 1, count) of records held out for validation."
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
  count = 400
  seed  = var.seed
}

step "split" "dataset" {
  inputs     = [csv_clean.onion.output, gutenberg_chunk.books.output, synth_tools.weather.output]
  validation = var.validation
  seed       = var.seed
}
