// Package steptest runs step kinds in tests the way mlbuild runs them, so
// that a kind's tests do not rebuild the engine's defaults.
//
// A Workspace is a temporary folder with a pipeline of its own, a real
// cache (Badger) and build/. Run writes one step of the kind into the
// pipeline, with the given config and inputs, and runs it through the
// engine: defaults applied and values converted as for a pipeline file,
// the kind's Validate called at load time, inputs digested, the declared
// outputs checked, stored in the cache and installed. Running the same
// step again is a cache hit.
//
//	ws := steptest.New(t)
//	ws.Write("data/in.csv", "title\nArea Man Passionate Defender Of What He Imagines Constitution To Be\n")
//	res := ws.Run(csvclean.Kind{}, steptest.Step{
//		Inputs: map[string][]string{"source": {"data/in.csv"}},
//		Config: map[string]cty.Value{"min_words": cty.NumberIntVal(3)},
//	})
//	texts := res.Read("output")
//	var rep csvclean.Report
//	res.JSON("report", &rep)
//
// For unit tests and fuzz targets that call a kind's Run or Validate
// directly, Invocation builds the steps.Invocation the engine would pass:
// the kind's defaults overlaid by a config, with fresh output and scratch
// folders.
package steptest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/engine"
	"github.com/mlbuild/mlbuild/steps"
)

// Workspace is a temporary workspace with its own cache.
type Workspace struct {
	t testing.TB
	// Dir is the workspace folder; the pipeline file is Dir/pipeline.hcl.
	Dir string
}

// New returns an empty workspace in a folder the test removes.
func New(t testing.TB) *Workspace {
	t.Helper()
	return &Workspace{t: t, Dir: t.TempDir()}
}

// Write writes content to the file name (slash-separated, relative to the
// workspace), creating its folders, and returns its absolute path.
func (w *Workspace) Write(name, content string) string {
	w.t.Helper()
	p := filepath.Join(w.Dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		w.t.Fatal(err)
	}
	return p
}

// Step is one step to run.
type Step struct {
	// Name is the step's name (the second label); "test" when empty.
	Name string
	// Inputs maps each input attribute to its paths: files or folders,
	// relative to the workspace or absolute.
	Inputs map[string][]string
	// Named maps each map-typed input attribute to its paths by name.
	Named map[string]map[string]string
	// Config holds the other attributes that differ from the kind's
	// defaults.
	Config map[string]cty.Value
	// Context, when set, is the context the run gets (to test cancelling).
	Context context.Context
}

// Result is a run's outcome.
type Result struct {
	t testing.TB
	// Step is the step's address, KIND.NAME.
	Step string
	// Status is engine.StatusRan or engine.StatusCached.
	Status engine.Status
	// Key is the step's cache key.
	Key string
	// Dir is the step's installed output folder, build/KIND.NAME.
	Dir     string
	outputs map[string]steps.Output
}

// Run runs the step and fails the test if it fails.
func (w *Workspace) Run(k steps.Kind, s Step) *Result {
	w.t.Helper()
	res, err := w.Try(k, s)
	if err != nil {
		w.t.Fatalf("%s: %v", k.Schema().Kind, err)
	}
	return res
}

// Try runs the step and returns its error: a load-time diagnostic (an
// *engine.DiagError) or the kind's run-time error. errors.As finds a
// *steps.AttrError through either.
func (w *Workspace) Try(k steps.Kind, s Step) (*Result, error) {
	w.t.Helper()
	schema := k.Schema()
	name := s.Name
	if name == "" {
		name = "test"
	}
	src, err := pipeline(schema, name, s)
	if err != nil {
		w.t.Fatal(err)
	}
	file := filepath.Join(w.Dir, "pipeline.hcl")
	if err := os.WriteFile(file, src, 0o644); err != nil {
		w.t.Fatal(err)
	}
	ctx := s.Context
	if ctx == nil {
		ctx = context.Background()
	}
	p, sum, runErr := w.run(ctx, file, k)
	if p == nil || runErr != nil {
		return nil, runErr
	}
	addr := schema.Kind + "." + name
	res := &Result{t: w.t, Step: addr, Dir: filepath.Join(w.Dir, "build", addr), outputs: map[string]steps.Output{}}
	st, _ := p.Step(addr)
	for _, o := range st.Schema.Outputs {
		res.outputs[o.Name] = o
	}
	for _, r := range sum.Steps {
		if r.Step == addr {
			res.Status, res.Key = r.Status, r.Key
		}
	}
	return res, nil
}

// RunPipeline writes src as the workspace's pipeline.hcl and builds it
// with the given kinds (the whole pipeline, as `mlbuild run` does). It
// returns the run's summary and error; a load-time problem is an
// *engine.DiagError.
func (w *Workspace) RunPipeline(ctx context.Context, src string, kinds ...steps.Kind) (*engine.Summary, error) {
	w.t.Helper()
	file := w.Write("pipeline.hcl", src)
	_, sum, err := w.run(ctx, file, kinds...)
	return sum, err
}

// run loads and builds the pipeline file with a registry of kinds; the
// pipeline is nil when it did not load.
func (w *Workspace) run(ctx context.Context, file string, kinds ...steps.Kind) (*engine.Pipeline, *engine.Summary, error) {
	w.t.Helper()
	reg := steps.NewRegistry()
	for _, k := range kinds {
		reg.Register(k)
	}
	p, err := engine.Load(file, engine.LoadOptions{Registry: reg, Environ: []string{}})
	if err != nil {
		return nil, nil, err
	}
	e, err := engine.Open(ctx, p, engine.Options{Workspace: w.Dir, CacheDir: filepath.Join(w.Dir, ".mlbuild", "cache"), Jobs: 1})
	if err != nil {
		w.t.Fatalf("open the engine: %v", err)
	}
	sum, runErr := e.Run(ctx)
	if err := e.Close(); err != nil {
		w.t.Fatalf("close the engine: %v", err)
	}
	return p, sum, runErr
}

// pipeline writes the one-step pipeline file.
func pipeline(schema steps.Schema, name string, s Step) ([]byte, error) {
	f := hclwrite.NewEmptyFile()
	b := f.Body().AppendNewBlock("step", []string{schema.Kind, name}).Body()
	attrs := map[string]steps.Attribute{}
	for _, a := range schema.Attributes {
		attrs[a.Name] = a
	}
	for _, n := range sortedKeys(s.Inputs) {
		a, ok := attrs[n]
		if !ok || !a.Input {
			return nil, fmt.Errorf("steptest: %s has no input attribute %q", schema.Kind, n)
		}
		paths := s.Inputs[n]
		if a.Type == cty.String {
			if len(paths) != 1 {
				return nil, fmt.Errorf("steptest: %s.%s takes one path, got %d", schema.Kind, n, len(paths))
			}
			b.SetAttributeValue(n, cty.StringVal(paths[0]))
			continue
		}
		vals := make([]cty.Value, len(paths))
		for i, p := range paths {
			vals[i] = cty.StringVal(p)
		}
		b.SetAttributeValue(n, cty.TupleVal(vals))
	}
	for _, n := range sortedKeys(s.Named) {
		if a, ok := attrs[n]; !ok || !a.Input || !a.Type.IsMapType() {
			return nil, fmt.Errorf("steptest: %s has no map-typed input attribute %q", schema.Kind, n)
		}
		vals := map[string]cty.Value{}
		for k, p := range s.Named[n] {
			vals[k] = cty.StringVal(p)
		}
		b.SetAttributeValue(n, cty.ObjectVal(vals))
	}
	for _, n := range sortedKeys(s.Config) {
		if a, ok := attrs[n]; !ok || a.Input {
			return nil, fmt.Errorf("steptest: %s has no attribute %q outside its inputs", schema.Kind, n)
		}
		b.SetAttributeValue(n, s.Config[n])
	}
	return f.Bytes(), nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Path returns the path of output name.
func (r *Result) Path(name string) string {
	r.t.Helper()
	o, ok := r.outputs[name]
	if !ok {
		r.t.Fatalf("%s has no output %q", r.Step, name)
	}
	return filepath.Join(r.Dir, filepath.FromSlash(o.Path))
}

// Read returns the content of output name (a file), or of the file rel
// inside output name (a folder) when rel is given.
func (r *Result) Read(name string, rel ...string) []byte {
	r.t.Helper()
	p := filepath.Join(append([]string{r.Path(name)}, rel...)...)
	b, err := os.ReadFile(p)
	if err != nil {
		r.t.Fatal(err)
	}
	return b
}

// JSON decodes output name (or the file rel inside it) into v.
func (r *Result) JSON(name string, v any, rel ...string) {
	r.t.Helper()
	if err := json.Unmarshal(r.Read(name, rel...), v); err != nil {
		r.t.Fatalf("%s output %s: %v", r.Step, name, err)
	}
}

// Lines returns the lines of output name, without empty ones.
func (r *Result) Lines(name string) []string {
	r.t.Helper()
	var out []string
	for _, l := range strings.Split(string(r.Read(name)), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// Invocation returns the invocation the engine would pass to k for a step
// whose config differs from the kind's defaults by config: every non-input
// attribute at its default (a null where it has none) overlaid by config,
// the given inputs, and fresh output, scratch and state folders the test
// removes. Use it to call a kind's Validate or Run directly (unit tests,
// fuzz targets); Workspace.Run goes through the engine.
func Invocation(t testing.TB, k steps.Kind, step string, inputs map[string][]steps.InputFile, config map[string]cty.Value) *steps.Invocation {
	t.Helper()
	cfg := Config(k, config)
	return &steps.Invocation{Step: step, Config: cfg, Inputs: inputs, OutDir: t.TempDir(), TempDir: t.TempDir(), StateDir: t.TempDir()}
}

// Config returns k's config with every non-input attribute at its default
// (a null where it has none), overlaid by over.
func Config(k steps.Kind, over map[string]cty.Value) map[string]cty.Value {
	cfg := map[string]cty.Value{}
	for _, a := range k.Schema().Attributes {
		if !a.Input {
			cfg[a.Name] = a.DefaultValue()
		}
	}
	for n, v := range over {
		cfg[n] = v
	}
	return cfg
}

// Input is a resolved input file for Invocation: path, the name a
// pipeline would give it and a placeholder digest.
func Input(path, name string) steps.InputFile {
	return steps.InputFile{Path: path, Name: name, Digest: strings.Repeat("0", 64)}
}

// FirstError validates k's config (its defaults overlaid by set) several
// times and fails the test unless every run reports the same
// *steps.AttrError on attr: with several wrong attributes, the kind must
// report one, the same one, on every run. It returns the error's message.
func FirstError(t testing.TB, k steps.Kind, set map[string]cty.Value, attr string) string {
	t.Helper()
	v, ok := k.(steps.Validator)
	if !ok {
		t.Fatalf("%s has no Validate", k.Schema().Kind)
	}
	var first error
	for i := range 20 {
		err := v.Validate(&steps.Invocation{Step: k.Schema().Kind + ".x", Config: Config(k, set)})
		var ae *steps.AttrError
		if !errors.As(err, &ae) || ae.Attr != attr {
			t.Fatalf("%v, run %d: %v, want an error about %s", set, i, err, attr)
		}
		if first == nil {
			first = err
		} else if err.Error() != first.Error() {
			t.Fatalf("%v: run %d reported %q, the first run %q", set, i, err, first)
		}
	}
	return first.Error()
}
