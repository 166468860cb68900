# A step of your own between built-in steps: csv_clean cleans the demo's
# satirical headlines, a Python script of yours (run by the system's
# python3, in a sandbox) keeps those worth learning from, and split holds
# out a validation set from the script's output.
#
#   mlbuild run pipelines/examples/headlines.hcl
#   mlbuild explain pipelines/examples/headlines.hcl command.headlines
#
# Edit scripts/filter_headlines.py, or upgrade python3, and the command step
# reruns; when its output comes out the same, split does not (early cutoff).
# docs/steps.md describes the command kind.

variable "min_words" {
  type        = number
  default     = 6
  description = "Shortest headline the filter keeps, in words."
}

step "csv_clean" "onion" {
  source    = glob("../data/onion/*.csv")
  columns   = ["title"]
  min_words = 4
}

step "command" "headlines" {
  run = ["python3", "filter_headlines.py", "--min-words", "${var.min_words}",
  "in/headlines.jsonl", "out/headlines.jsonl", "out/stats.json"]
  inputs = {
    "headlines.jsonl"     = csv_clean.onion.output
    "filter_headlines.py" = "scripts/filter_headlines.py"
  }
  outputs   = { headlines = "headlines.jsonl", stats = "stats.json" }
  env       = { LC_ALL = "C.UTF-8" }
  tools     = ["python3"]
  timeout   = "5m"
  resources = { cpus = 1, memory = "1GiB" }
}

step "split" "headlines" {
  inputs     = [command.headlines.headlines]
  validation = 0.1
  seed       = 42
}
