// Package builtin registers every built-in step kind with steps.Default.
// Import it for its side effect.
package builtin

import (
	_ "github.com/mlbuild/mlbuild/steps/command"        // command
	_ "github.com/mlbuild/mlbuild/steps/csvclean"       // csv_clean
	_ "github.com/mlbuild/mlbuild/steps/download"       // download
	_ "github.com/mlbuild/mlbuild/steps/eval"           // eval
	_ "github.com/mlbuild/mlbuild/steps/gutenberg"      // gutenberg_chunk
	_ "github.com/mlbuild/mlbuild/steps/split"          // split
	_ "github.com/mlbuild/mlbuild/steps/synthtools"     // synth_tools
	_ "github.com/mlbuild/mlbuild/steps/tokenizertrain" // tokenizer_train
	_ "github.com/mlbuild/mlbuild/steps/training"       // pretrain, qlora_train, merge
)
