package engine_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/mlbuild/mlbuild/engine"

	// Register the step kinds the pipeline uses with steps.Default
	// (steps/builtin registers every built-in kind).
	_ "github.com/mlbuild/mlbuild/steps/csvclean"
	_ "github.com/mlbuild/mlbuild/steps/split"
)

// examplePipeline cleans a CSV of headlines and splits the clean texts
// into a training and a validation set.
const examplePipeline = `
variable "seed" {
  type    = number
  default = 42
}

step "csv_clean" "headlines" {
  source    = ["headlines.csv"]
  min_words = 3
}

step "split" "data" {
  inputs     = [csv_clean.headlines.output]
  validation = 1
  seed       = var.seed
}
`

const exampleCSV = `title
Area Man Passionate Defender Of What He Imagines Constitution To Be
Nation&#39;s Dogs Vow To Keep Barking At Nothing
Hot
https://www.theonion.com/some-story
Local Cat Knocks Glass Off Table Out Of Principle
Local Cat Knocks Glass Off Table Out Of Principle
`

// writeExample writes the pipeline and its data into a new temporary
// workspace and returns its folder.
func writeExample() string {
	dir, err := os.MkdirTemp("", "mlbuild-example-")
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pipeline.hcl"), []byte(examplePipeline), 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "headlines.csv"), []byte(exampleCSV), 0o644); err != nil {
		log.Fatal(err)
	}
	return dir
}

// reopen loads the workspace's pipeline with -var overrides and opens
// the engine on it, as a new mlbuild process would.
func reopen(dir string, vars ...string) *engine.Engine {
	p, err := engine.Load(filepath.Join(dir, "pipeline.hcl"), engine.LoadOptions{
		Vars:    vars,
		Environ: []string{}, // no MLBUILD_VAR_* from the environment
	})
	if err != nil {
		log.Fatal(err)
	}
	e, err := engine.Open(context.Background(), p, engine.Options{Workspace: dir, CacheDir: filepath.Join(dir, "cache")})
	if err != nil {
		log.Fatal(err)
	}
	return e
}

// build runs the workspace's pipeline, as "mlbuild run" would.
func build(dir string) {
	e := reopen(dir)
	_, err := e.Run(context.Background())
	if cerr := e.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		log.Fatal(err)
	}
}

// Load a pipeline, open the workspace's cache and run it twice: the first
// run builds every step, the second finds every result in the cache.
func Example() {
	dir := writeExample()
	defer os.RemoveAll(dir)
	ctx := context.Background()

	// Load resolves the step kinds through steps.Default.
	p, err := engine.Load(filepath.Join(dir, "pipeline.hcl"), engine.LoadOptions{})
	if err != nil {
		log.Fatal(err)
	}
	opts := engine.Options{
		Workspace: dir,                         // outputs go to dir/build/KIND.NAME/
		CacheDir:  filepath.Join(dir, "cache"), // default: dir/.mlbuild/cache
	}
	for run := 1; run <= 2; run++ {
		e, err := engine.Open(ctx, p, opts)
		if err != nil {
			log.Fatal(err)
		}
		sum, err := e.Run(ctx)
		// Close flushes the cache's database: a failure there can lose
		// the results just stored.
		if cerr := e.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("run %d: %d ran, %d cached\n", run, sum.Ran, sum.Cached)
		for _, r := range sum.Steps {
			fmt.Printf("  %s %s", r.Step, r.Status)
			if r.Reason != "" { // why it ran
				fmt.Printf(" (%s)", r.Reason)
			}
			fmt.Println()
		}
	}

	// Outputs are materialized under the workspace's build/ folder.
	text, err := os.ReadFile(filepath.Join(dir, "build", "csv_clean.headlines", "clean.jsonl"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s", text)

	// Output:
	// run 1: 2 ran, 0 cached
	//   csv_clean.headlines ran (new: never built in this workspace)
	//   split.data ran (new: never built in this workspace)
	// run 2: 0 ran, 2 cached
	//   csv_clean.headlines cached
	//   split.data cached
	// {"text":"Area Man Passionate Defender Of What He Imagines Constitution To Be"}
	// {"text":"Nation's Dogs Vow To Keep Barking At Nothing"}
	// {"text":"Local Cat Knocks Glass Off Table Out Of Principle"}
}

// Plan says what a run would do, and why, without running anything. Here
// the split's seed changes: the split must run again; the cleaned CSV,
// which does not depend on the seed, stays cached.
func ExampleEngine_Plan() {
	dir := writeExample()
	defer os.RemoveAll(dir)
	build(dir)

	e := reopen(dir, "seed=7") // as -var seed=7
	defer func() {
		if err := e.Close(); err != nil {
			log.Fatal(err)
		}
	}()
	plan, err := e.Plan()
	if err != nil {
		log.Fatal(err)
	}
	for _, ent := range plan {
		fmt.Println(ent.Step, ent.Action)
		for _, why := range ent.Reasons {
			fmt.Println("  because", why)
		}
	}

	// Output:
	// csv_clean.headlines cached
	// split.data run
	//   because config.seed changed: 42 → 7
}

// Explain lays a step's key components beside those of its last cached
// run: the split's seed changed, its input (the cleaned CSV) did not.
func ExampleEngine_Explain() {
	dir := writeExample()
	defer os.RemoveAll(dir)
	build(dir)

	e := reopen(dir, "seed=7")
	defer func() {
		if err := e.Close(); err != nil {
			log.Fatal(err)
		}
	}()
	ex, err := e.Explain("split.data")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ex.Step, ex.Action, "compared with", ex.Against)
	for _, row := range ex.Rows {
		if row.Changed {
			fmt.Printf("  %s: %s (was %s)\n", row.Component, row.Current, row.Previous)
		} else {
			fmt.Printf("  %s: %s\n", row.Component, row.Current)
		}
	}

	// Output:
	// split.data run compared with the step's last cached run
	//   kind: split
	//   version: 1
	//   config.dedupe: true
	//   config.seed: 7 (was 42)
	//   config.stratify: true
	//   config.validation: 1
	//   input.inputs[0]: build/csv_clean.headlines/clean.jsonl sha256:e70e5c25a86e
}
