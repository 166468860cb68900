package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/cache"
	"github.com/mlbuild/mlbuild/ml/tensor"
	"github.com/mlbuild/mlbuild/steps"
)

// Test kinds: small, real steps that read their inputs and write outputs.

// concatKind concatenates its sources, each prefixed by the seed.
type concatKind struct{ runs *atomic.Int64 }

func (k concatKind) Schema() steps.Schema {
	return steps.Schema{Kind: "concat", Version: "1", Attributes: []steps.Attribute{
		{Name: "sources", Type: cty.List(cty.String), Input: true, Required: true},
		{Name: "seed", Type: cty.Number, Default: cty.NumberIntVal(1)},
		{Name: "threads", Type: cty.Number, Default: cty.NumberIntVal(1), NotInKey: true},
	}, Outputs: []steps.Output{{Name: "output", Path: "out.txt"}, {Name: "report", Path: "report.json"}}}
}

func (k concatKind) Run(ctx context.Context, inv *steps.Invocation) error {
	k.runs.Add(1)
	var c struct {
		Seed    int `attr:"seed"`
		Threads int `attr:"threads"`
	}
	if err := inv.Decode(&c); err != nil {
		return err
	}
	seed := c.Seed
	var buf bytes.Buffer
	for _, in := range inv.Inputs["sources"] {
		b, err := os.ReadFile(in.Path)
		if err != nil {
			return err
		}
		fmt.Fprintf(&buf, "%d:%s", seed, b)
	}
	if err := os.WriteFile(filepath.Join(inv.OutDir, "out.txt"), buf.Bytes(), 0o644); err != nil {
		return err
	}
	return steps.WriteJSON(filepath.Join(inv.OutDir, "report.json"), map[string]int{"bytes": buf.Len()})
}

// firstLineKind keeps the first line of its input: editing any other line
// changes its input but not its output (early cutoff).
type firstLineKind struct{ runs *atomic.Int64 }

func (k firstLineKind) Schema() steps.Schema {
	return steps.Schema{Kind: "first_line", Version: "1", Attributes: []steps.Attribute{
		{Name: "input", Type: cty.List(cty.String), Input: true, Required: true},
	}, Outputs: []steps.Output{{Name: "output", Path: "first.txt"}}}
}

func (k firstLineKind) Run(ctx context.Context, inv *steps.Invocation) error {
	k.runs.Add(1)
	b, err := os.ReadFile(inv.Inputs["input"][0].Path)
	if err != nil {
		return err
	}
	first, _, _ := bytes.Cut(b, []byte("\n"))
	return os.WriteFile(filepath.Join(inv.OutDir, "first.txt"), first, 0o644)
}

// treeKind writes a directory output.
type treeKind struct{ runs *atomic.Int64 }

func (k treeKind) Schema() steps.Schema {
	return steps.Schema{Kind: "tree", Version: "1", Attributes: []steps.Attribute{
		{Name: "input", Type: cty.List(cty.String), Input: true, Required: true},
	}, Outputs: []steps.Output{{Name: "output", Path: "model", Dir: true}}}
}

func (k treeKind) Run(ctx context.Context, inv *steps.Invocation) error {
	k.runs.Add(1)
	b, err := os.ReadFile(inv.Inputs["input"][0].Path)
	if err != nil {
		return err
	}
	dir := filepath.Join(inv.OutDir, "model", "sub")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "weights.bin"), bytes.Repeat(b, 3), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(inv.OutDir, "model", "config.json"), []byte(`{"n":1}`), 0o644)
}

// failKind fails, or blocks until cancelled when block is set.
type failKind struct{}

func (failKind) Schema() steps.Schema {
	return steps.Schema{Kind: "fail", Version: "1", Attributes: []steps.Attribute{
		{Name: "input", Type: cty.List(cty.String), Input: true},
		{Name: "message", Type: cty.String, Default: cty.StringVal("boom")},
	}, Outputs: []steps.Output{{Name: "output", Path: "never.txt"}}}
}

func (failKind) Run(ctx context.Context, inv *steps.Invocation) error {
	var c struct {
		Message string `attr:"message"`
	}
	if err := inv.Decode(&c); err != nil {
		return err
	}
	msg := c.Message
	if msg == "hang" {
		// Write half an output, tell the parent test, and wait to be killed.
		_ = os.WriteFile(filepath.Join(inv.OutDir, "never.txt"), []byte("half"), 0o644)
		_ = os.WriteFile(os.Getenv("MLBUILD_TEST_MARKER"), nil, 0o644)
		<-ctx.Done()
		return ctx.Err()
	}
	if msg == "panic" {
		panic("kaboom")
	}
	if msg == "device" {
		// What a GPU backend's operation panics with when the device is
		// out of memory: the step's failure, not a bug.
		panic(&tensor.DeviceError{Op: "MatMul", Err: errors.New("allocating F32[4096 4096]: out of memory")})
	}
	if msg == "bad attribute" {
		return &steps.AttrError{Attr: "message", Msg: "is refused at run time"}
	}
	return errors.New(msg)
}

// closeOK closes c, failing the test if that fails. For use in defer and
// t.Cleanup.
func closeOK(t testing.TB, c io.Closer) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Errorf("close %T: %v", c, err)
	}
}

type testEnv struct {
	t    *testing.T
	dir  string
	reg  *steps.Registry
	runs map[string]*atomic.Int64
}

func newEnv(t *testing.T, pipeline string) *testEnv {
	t.Helper()
	env := &testEnv{t: t, dir: t.TempDir(), reg: steps.NewRegistry(), runs: map[string]*atomic.Int64{}}
	for _, n := range []string{"concat", "first_line", "tree"} {
		env.runs[n] = &atomic.Int64{}
	}
	env.reg.Register(concatKind{env.runs["concat"]})
	env.reg.Register(firstLineKind{env.runs["first_line"]})
	env.reg.Register(treeKind{env.runs["tree"]})
	env.reg.Register(failKind{})
	env.write("pipeline.hcl", pipeline)
	return env
}

func (env *testEnv) write(name, content string) {
	env.t.Helper()
	p := filepath.Join(env.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		env.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		env.t.Fatal(err)
	}
	// Make the edit visible to the stat cache even within one timestamp tick.
	old := time.Now().Add(-time.Hour)
	_ = os.Chtimes(p, old, old)
}

func (env *testEnv) load(vars ...string) (*Pipeline, error) {
	return Load(filepath.Join(env.dir, "pipeline.hcl"), LoadOptions{Registry: env.reg, Vars: vars, Environ: []string{}})
}

type runResult struct {
	sum    *Summary
	err    error
	status map[string]Status
	bytes  int64
}

func (env *testEnv) run(opts Options, vars ...string) runResult {
	env.t.Helper()
	p, err := env.load(vars...)
	if err != nil {
		env.t.Fatalf("load: %v", err)
	}
	opts.Workspace = env.dir
	e, err := Open(context.Background(), p, opts)
	if err != nil {
		env.t.Fatalf("open: %v", err)
	}
	defer closeOK(env.t, e)
	sum, err := e.Run(context.Background())
	res := runResult{sum: sum, err: err, status: map[string]Status{}, bytes: e.BytesRead()}
	for _, r := range sum.Steps {
		res.status[r.Step] = r.Status
	}
	return res
}

func (env *testEnv) plan(vars ...string) map[string]PlanEntry {
	env.t.Helper()
	p, err := env.load(vars...)
	if err != nil {
		env.t.Fatalf("load: %v", err)
	}
	e, err := Open(context.Background(), p, Options{Workspace: env.dir, ReadOnly: true})
	if err != nil {
		env.t.Fatal(err)
	}
	defer closeOK(env.t, e)
	plan, err := e.Plan()
	if err != nil {
		env.t.Fatal(err)
	}
	m := map[string]PlanEntry{}
	for _, ent := range plan {
		m[ent.Step] = ent
	}
	return m
}

func (env *testEnv) explain(addr string, vars ...string) *Explanation {
	env.t.Helper()
	p, err := env.load(vars...)
	if err != nil {
		env.t.Fatalf("load: %v", err)
	}
	e, err := Open(context.Background(), p, Options{Workspace: env.dir, ReadOnly: true})
	if err != nil {
		env.t.Fatal(err)
	}
	defer closeOK(env.t, e)
	ex, err := e.Explain(addr)
	if err != nil {
		env.t.Fatal(err)
	}
	return ex
}

func (env *testEnv) read(rel string) string {
	env.t.Helper()
	b, err := os.ReadFile(filepath.Join(env.dir, rel))
	if err != nil {
		env.t.Fatal(err)
	}
	return string(b)
}

func wantStatus(t *testing.T, got runResult, want map[string]Status) {
	t.Helper()
	if got.err != nil {
		t.Fatalf("run failed: %v", got.err)
	}
	for step, st := range want {
		if got.status[step] != st {
			t.Errorf("%s: status %q, want %q (all: %v)", step, got.status[step], st, got.status)
		}
	}
}

const chainPipeline = `
variable "seed" {
  type    = number
  default = 1
}

step "concat" "a" {
  sources = ["data/a.txt"]
  seed    = var.seed
}

step "first_line" "head" {
  input = concat.a.output
}

step "concat" "b" {
  sources = ["data/b.txt"]
}

step "concat" "all" {
  sources = [first_line.head.output, concat.b.output]
}

step "tree" "model" {
  input = concat.all.output
}
`

func TestIncrementalRebuilds(t *testing.T) {
	env := newEnv(t, chainPipeline)
	env.write("data/a.txt", "alpha\nbeta\n")
	env.write("data/b.txt", "bravo\n")

	first := env.run(Options{})
	wantStatus(t, first, map[string]Status{"concat.a": StatusRan, "first_line.head": StatusRan, "concat.b": StatusRan, "concat.all": StatusRan, "tree.model": StatusRan})
	if got := env.read("build/concat.all/out.txt"); got != "1:1:alpha1:1:bravo\n" {
		t.Fatalf("concat.all output = %q", got)
	}
	if got := env.read("build/tree.model/model/sub/weights.bin"); !strings.Contains(got, "bravo") {
		t.Fatalf("tree output = %q", got)
	}

	t.Run("no-op rerun runs nothing and reads nothing", func(t *testing.T) {
		r := env.run(Options{})
		wantStatus(t, r, map[string]Status{"concat.a": StatusCached, "first_line.head": StatusCached, "concat.b": StatusCached, "concat.all": StatusCached, "tree.model": StatusCached})
		if r.sum.Ran != 0 || r.sum.Cached != 5 {
			t.Fatalf("summary %+v", r.sum)
		}
		if r.bytes != 0 {
			t.Fatalf("a no-op rerun re-read %d bytes of input", r.bytes)
		}
	})

	t.Run("early cutoff", func(t *testing.T) {
		env.write("data/a.txt", "alpha\ngamma\n") // first line unchanged
		plan := env.plan()
		if plan["concat.a"].Action != ActionRun || !strings.Contains(strings.Join(plan["concat.a"].Reasons, ";"), "input.sources[0] changed: data/a.txt") {
			t.Fatalf("plan for concat.a: %+v", plan["concat.a"])
		}
		if plan["first_line.head"].Action != ActionMaybe || plan["concat.b"].Action != ActionCached {
			t.Fatalf("plan: %+v", plan)
		}
		// Its upstream is stale: explain must not say flatly that nothing
		// changed, but name the upstream whose output decides.
		ex := env.explain("first_line.head")
		if len(ex.Changes) != 0 || strings.Join(ex.Pending, ",") != "concat.a" ||
			!strings.Contains(ex.Conclusion, "first_line.head reruns only if the output of concat.a changes") {
			t.Fatalf("explain of a step whose upstream must run: changes %+v, pending %v, conclusion %q", ex.Changes, ex.Pending, ex.Conclusion)
		}
		r := env.run(Options{})
		wantStatus(t, r, map[string]Status{"concat.a": StatusRan, "first_line.head": StatusRan, "concat.b": StatusCached, "concat.all": StatusCached, "tree.model": StatusCached})
		ex = env.explain("concat.a")
		if len(ex.Changes) != 1 || ex.Changes[0].Component != "input.sources[0]" || ex.Conclusion != "" {
			t.Fatalf("explain after the rebuild: %+v", ex.Changes)
		}
	})

	t.Run("config change", func(t *testing.T) {
		plan := env.plan("seed=2")
		if got := strings.Join(plan["concat.a"].Reasons, ";"); !strings.Contains(got, "config.seed changed: 1 → 2") {
			t.Fatalf("plan reason %q", got)
		}
		ex := env.explain("concat.a", "seed=2")
		if len(ex.Changes) != 1 || ex.Changes[0].Component != "config.seed" || ex.Changes[0].Old != "1" || ex.Changes[0].New != "2" {
			t.Fatalf("explain: %+v", ex.Changes)
		}
		r := env.run(Options{}, "seed=2")
		wantStatus(t, r, map[string]Status{"concat.a": StatusRan, "first_line.head": StatusRan, "concat.b": StatusCached, "concat.all": StatusRan, "tree.model": StatusRan})
	})

	t.Run("a setting outside the key changes nothing", func(t *testing.T) {
		env.write("pipeline.hcl", strings.Replace(chainPipeline, `sources = ["data/b.txt"]`, "sources = [\"data/b.txt\"]\n  threads = 8", 1))
		r := env.run(Options{}, "seed=2")
		if r.sum.Ran != 0 {
			for _, st := range r.sum.Steps {
				t.Log(st.Step, st.Status, st.Reason)
			}
			t.Fatalf("threads entered the key: %v", r.status)
		}
	})

	t.Run("deleting build restores from the cache", func(t *testing.T) {
		if err := os.RemoveAll(filepath.Join(env.dir, "build")); err != nil {
			t.Fatal(err)
		}
		plan := env.plan("seed=2")
		for step, ent := range plan {
			if ent.Action != ActionRestore {
				t.Errorf("plan %s: %s, want restore", step, ent.Action)
			}
		}
		before := env.runs["concat"].Load()
		r := env.run(Options{}, "seed=2")
		if r.sum.Ran != 0 || r.sum.Cached != 5 || env.runs["concat"].Load() != before {
			t.Fatalf("restore ran steps: %+v", r.status)
		}
		if got := env.read("build/concat.all/out.txt"); got != "1:2:alpha1:1:bravo\n" {
			t.Fatalf("restored output = %q", got)
		}
		if got := env.read("build/tree.model/model/config.json"); got != `{"n":1}` {
			t.Fatalf("restored tree = %q", got)
		}
	})

	t.Run("a damaged output in build is restored", func(t *testing.T) {
		p := filepath.Join(env.dir, "build/concat.b/out.txt")
		_ = os.Chmod(p, 0o644)
		env.write("build/concat.b/out.txt", "tampered")
		r := env.run(Options{}, "seed=2")
		if r.sum.Ran != 0 {
			t.Fatalf("ran: %v", r.status)
		}
		if got := env.read("build/concat.b/out.txt"); got != "1:bravo\n" {
			t.Fatalf("not restored: %q", got)
		}
	})

	t.Run("rebuild forces a step", func(t *testing.T) {
		r := env.run(Options{Rebuild: []string{"concat.b"}}, "seed=2")
		wantStatus(t, r, map[string]Status{"concat.b": StatusRan, "concat.all": StatusCached})
	})

	t.Run("targets build only what they need", func(t *testing.T) {
		env.write("data/b.txt", "bravo2\n")
		r := env.run(Options{Targets: []string{"concat.b"}}, "seed=2")
		if len(r.status) != 1 || r.status["concat.b"] != StatusRan {
			t.Fatalf("targets: %v", r.status)
		}
	})
}

// TestRunTimeAttributeErrorsHaveASource checks that an attribute error a
// kind returns while running names the attribute's place in the file.
func TestRunTimeAttributeErrorsHaveASource(t *testing.T) {
	env := newEnv(t, `
step "fail" "bad" {
  message = "bad attribute"
}
`)
	r := env.run(Options{Jobs: 1})
	want := `fail.bad failed: ` + filepath.Join(env.dir, "pipeline.hcl") + `:3:13: attribute "message": is refused at run time`
	if r.err == nil || !strings.Contains(r.err.Error(), want) {
		t.Fatalf("error = %v\nwant %s", r.err, want)
	}
}

func TestFailureStopsNewSteps(t *testing.T) {
	env := newEnv(t, `
step "concat" "a" {
  sources = ["a.txt"]
}
step "fail" "bad" {
  input   = [concat.a.output]
  message = "the input is rotten"
}
step "concat" "after" {
  sources = [fail.bad.output]
}
`)
	env.write("a.txt", "x")
	r := env.run(Options{Jobs: 1})
	if r.err == nil || !strings.Contains(r.err.Error(), "fail.bad failed: the input is rotten") {
		t.Fatalf("error = %v", r.err)
	}
	if r.status["concat.after"] != StatusSkipped {
		t.Fatalf("dependent of a failed step: %v", r.status)
	}
	if r.sum.Failed < 1 {
		t.Fatalf("summary: %+v", r.sum)
	}
	if _, err := os.Stat(filepath.Join(env.dir, "build/fail.bad")); !os.IsNotExist(err) {
		t.Fatalf("a failed step left outputs: %v", err)
	}
	env2 := newEnv(t, `
step "fail" "panics" {
  message = "panic"
}
`)
	r = env2.run(Options{})
	if r.err == nil || !strings.Contains(r.err.Error(), "internal error in step kind fail.panics: kaboom") {
		t.Fatalf("panic error = %v", r.err)
	}
	env3 := newEnv(t, `
step "fail" "oom" {
  message = "device"
}
`)
	r = env3.run(Options{})
	if r.err == nil || !strings.Contains(r.err.Error(), "fail.oom: MatMul: allocating F32[4096 4096]: out of memory") || strings.Contains(r.err.Error(), "internal error") {
		t.Fatalf("device failure = %v", r.err)
	}
}

func TestHeavyStepsDoNotOverlap(t *testing.T) {
	var active, maxActive atomic.Int64
	reg := steps.NewRegistry()
	reg.Register(heavyKind{active: &active, max: &maxActive})
	dir := t.TempDir()
	var b strings.Builder
	for i := 0; i < 6; i++ {
		fmt.Fprintf(&b, "step \"heavy\" \"h%d\" {\n  n = %d\n}\n", i, i)
	}
	if err := os.WriteFile(filepath.Join(dir, "p.hcl"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Load(filepath.Join(dir, "p.hcl"), LoadOptions{Registry: reg, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	e, err := Open(context.Background(), p, Options{Workspace: dir, Jobs: 6})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, e)
	if _, err := e.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if maxActive.Load() != 1 {
		t.Fatalf("%d heavy steps ran at once", maxActive.Load())
	}
}

type heavyKind struct{ active, max *atomic.Int64 }

func (heavyKind) Schema() steps.Schema {
	return steps.Schema{Kind: "heavy", Version: "1", Heavy: true,
		Attributes: []steps.Attribute{{Name: "n", Type: cty.Number, Required: true}},
		Outputs:    []steps.Output{{Name: "output", Path: "o.txt"}}}
}

func (k heavyKind) Run(ctx context.Context, inv *steps.Invocation) error {
	n := k.active.Add(1)
	defer k.active.Add(-1)
	for {
		m := k.max.Load()
		if n <= m || k.max.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(5 * time.Millisecond) // widen the window an overlap would need
	var c struct {
		N int `attr:"n"`
	}
	if err := inv.Decode(&c); err != nil {
		return err
	}
	v := c.N
	return os.WriteFile(filepath.Join(inv.OutDir, "o.txt"), []byte(fmt.Sprint(v)), 0o644)
}

func TestDiagnostics(t *testing.T) {
	cases := []struct {
		name, src string
		want      []string
	}{
		{"syntax", "step \"concat\" \"a\" {\n  sources = [\n", []string{"pipeline.hcl:3:1: error: Missing expression"}},
		{"unknown kind", "step \"concat2\" \"a\" {\n}\n", []string{"pipeline.hcl:1:6", "Unknown step kind", `Did you mean "concat"?`}},
		{"unknown attribute", "step \"concat\" \"a\" {\n  sources = [\"a.txt\"]\n  sedd = 3\n}\n", []string{"pipeline.hcl:3:3", "Unsupported argument", "sedd"}},
		{"missing attribute", "step \"concat\" \"a\" {\n}\n", []string{"pipeline.hcl:1", "Missing required argument", "sources"}},
		{"wrong type", "step \"concat\" \"a\" {\n  sources = [\"a.txt\"]\n  seed = \"many\"\n}\n", []string{"pipeline.hcl:3:10", "Wrong type", `"seed" must be number`}},
		{"unknown reference", "step \"concat\" \"a\" {\n  sources = [concat.nope.output]\n}\n", []string{"pipeline.hcl:2:14", "Unknown step", "concat.nope"}},
		{"unknown output", "step \"concat\" \"a\" {\n  sources = [\"a.txt\"]\n}\nstep \"concat\" \"b\" {\n  sources = [concat.a.outptu]\n}\n", []string{"pipeline.hcl:5:14", "no output \"outptu\"", "output, report"}},
		{"unknown variable", "step \"concat\" \"a\" {\n  sources = [\"a.txt\"]\n  seed = var.sed\n}\n", []string{"pipeline.hcl:3:10", "Unknown variable"}},
		{"cycle", "step \"concat\" \"a\" {\n  sources = [concat.b.output]\n}\nstep \"concat\" \"b\" {\n  sources = [concat.a.output]\n}\n", []string{"Dependency cycle", "concat.a -> concat.b -> concat.a"}},
		{"missing file", "step \"concat\" \"a\" {\n  sources = [\"nope.txt\"]\n}\n", []string{"pipeline.hcl:2:13", "Missing input file", "nope.txt"}},
		{"duplicate step", "step \"concat\" \"a\" {\n  sources = [\"a.txt\"]\n}\nstep \"concat\" \"a\" {\n  sources = [\"a.txt\"]\n}\n", []string{"pipeline.hcl:4:1", "Duplicate step"}},
		{"null required", "step \"concat\" \"a\" {\n  sources = null\n}\n", []string{"pipeline.hcl:2:13", "Missing required value", `"sources" is required, but its value is null`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := newEnv(t, c.src)
			env.write("a.txt", "x")
			_, err := env.load()
			var de *DiagError
			if !errors.As(err, &de) {
				t.Fatalf("want a *DiagError, got %v", err)
			}
			msg := de.Error()
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("diagnostic lacks %q:\n%s", w, msg)
				}
			}
		})
	}
}

// TestMissingPipelineIsNamed: a pipeline that cannot be read is named in
// the error.
func TestMissingPipelineIsNamed(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.hcl"), LoadOptions{})
	if err == nil || !strings.Contains(err.Error(), "nope.hcl") || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("load of a missing file: %v", err)
	}
}

func TestVariables(t *testing.T) {
	src := `
variable "seed" {
  type    = number
  default = 1
}
variable "files" {
  type    = list(string)
  default = ["a.txt"]
}
step "concat" "a" {
  sources = var.files
  seed    = var.seed
}
`
	env := newEnv(t, src)
	env.write("a.txt", "x")
	env.write("b.txt", "y")
	seedOf := func(p *Pipeline) string { return string(p.byAddr["concat.a"].KeyConfig["seed"]) }
	p, err := env.load()
	if err != nil || seedOf(p) != "1" {
		t.Fatalf("default: %v %v", err, p)
	}
	p, err = Load(filepath.Join(env.dir, "pipeline.hcl"), LoadOptions{Registry: env.reg, Environ: []string{"MLBUILD_VAR_seed=7"}})
	if err != nil || seedOf(p) != "7" {
		t.Fatalf("env: %v", err)
	}
	env.write("vars.hcl", "seed = 9\nfiles = [\"a.txt\", \"b.txt\"]\n")
	p, err = Load(filepath.Join(env.dir, "pipeline.hcl"), LoadOptions{Registry: env.reg, Environ: []string{"MLBUILD_VAR_seed=7"},
		VarFiles: []string{filepath.Join(env.dir, "vars.hcl")}})
	if err != nil || seedOf(p) != "9" || len(p.byAddr["concat.a"].Inputs["sources"]) != 2 {
		t.Fatalf("var-file: %v", err)
	}
	p, err = Load(filepath.Join(env.dir, "pipeline.hcl"), LoadOptions{Registry: env.reg, Environ: []string{"MLBUILD_VAR_seed=7"},
		VarFiles: []string{filepath.Join(env.dir, "vars.hcl")}, Vars: []string{"seed=11"}})
	if err != nil || seedOf(p) != "11" {
		t.Fatalf("-var: %v", err)
	}
	for _, bad := range []string{"seed=abc", "nope=1", "seed"} {
		if _, err := env.load(bad); err == nil {
			t.Errorf("-var %s accepted", bad)
		}
	}
}

func TestGraphExports(t *testing.T) {
	env := newEnv(t, chainPipeline)
	env.write("data/a.txt", "a")
	env.write("data/b.txt", "b")
	p, err := env.load()
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, n := range p.Graph() {
		order = append(order, n.Step)
	}
	if strings.Join(order, " ") != "concat.a first_line.head concat.b concat.all tree.model" {
		t.Fatalf("order %v", order)
	}
	if dot := p.DOT(); !strings.Contains(dot, `"first_line.head" -> "concat.all" [label="output"]`) {
		t.Fatalf("dot:\n%s", dot)
	}
	if m := p.Mermaid(); !strings.Contains(m, "flowchart LR") || !strings.Contains(m, "-->|output|") {
		t.Fatalf("mermaid:\n%s", m)
	}
}

func TestSecondProcessIsRefused(t *testing.T) {
	env := newEnv(t, "step \"concat\" \"a\" {\n  sources = [\"a.txt\"]\n}\n")
	env.write("a.txt", "x")
	p, _ := env.load()
	e, err := Open(context.Background(), p, Options{Workspace: env.dir})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, e)
	_, err = Open(context.Background(), p, Options{Workspace: env.dir, NoWait: true})
	if !errors.Is(err, cache.ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	var waitErr error
	go func() {
		defer wg.Done()
		_, waitErr = Open(ctx, p, Options{Workspace: env.dir})
	}()
	cancel()
	wg.Wait()
	if waitErr == nil || !strings.Contains(waitErr.Error(), "gave up waiting") {
		t.Fatalf("waiting open: %v", waitErr)
	}
}

// TestKillMidStep runs a step in a child process, kills it with SIGKILL
// while the step has half-written its output, and checks the next run
// succeeds with a consistent workspace.
func TestKillMidStep(t *testing.T) {
	if os.Getenv("MLBUILD_TEST_CHILD") != "" {
		t.Skip("child process")
	}
	dir := t.TempDir()
	marker := filepath.Join(dir, "started")
	src := "step \"concat\" \"a\" {\n  sources = [\"a.txt\"]\n}\nstep \"fail\" \"slow\" {\n  input = [concat.a.output]\n  message = \"hang\"\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "pipeline.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$")
	cmd.Env = append(os.Environ(), "MLBUILD_TEST_CHILD="+dir, "MLBUILD_TEST_MARKER="+marker)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(marker); err == nil {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("child never started the step:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()

	// The half-written output must be nowhere: not in build/, not cached.
	if _, err := os.Stat(filepath.Join(dir, "build", "fail.slow")); !os.IsNotExist(err) {
		t.Fatalf("killed step left build/fail.slow: %v", err)
	}
	// The next run (with the step fixed) succeeds and reuses concat.a.
	fixed := strings.Replace(src, `message = "hang"`, `message = "done"`, 1)
	fixed = strings.Replace(fixed, `step "fail" "slow"`, `step "concat" "slow"`, 1)
	fixed = strings.Replace(fixed, "input = [concat.a.output]\n  message = \"done\"", "sources = [concat.a.output]", 1)
	if err := os.WriteFile(filepath.Join(dir, "pipeline.hcl"), []byte(fixed), 0o644); err != nil {
		t.Fatal(err)
	}
	env := &testEnv{t: t, dir: dir, reg: steps.NewRegistry(), runs: map[string]*atomic.Int64{"concat": {}}}
	env.reg.Register(concatKind{env.runs["concat"]})
	r := env.run(Options{})
	wantStatus(t, r, map[string]Status{"concat.a": StatusCached, "concat.slow": StatusRan})
	entries, _ := os.ReadDir(filepath.Join(dir, "build"))
	var names []string
	for _, e := range entries {
		if e.Name() != ".lock" { // the workspace lock: its file stays
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	if strings.Join(names, " ") != "concat.a concat.slow" {
		t.Fatalf("build/ holds %v", names)
	}
}

// TestKillChild is the child of TestKillMidStep.
func TestKillChild(t *testing.T) {
	dir := os.Getenv("MLBUILD_TEST_CHILD")
	if dir == "" {
		t.Skip("only runs as TestKillMidStep's child")
	}
	env := &testEnv{t: t, dir: dir, reg: steps.NewRegistry(), runs: map[string]*atomic.Int64{"concat": {}}}
	env.reg.Register(concatKind{env.runs["concat"]})
	env.reg.Register(failKind{})
	env.run(Options{})
}

// TestHugeNumbersAreRefused: a number beyond float64's range is refused at
// load time (its canonical JSON would write every digit: 5 s for 1e3000000,
// minutes and gigabytes for 1e100000000).
func TestHugeNumbersAreRefused(t *testing.T) {
	env := newEnv(t, `
variable "x" {
  type    = number
  default = 1
}
step "concat" "a" {
  sources = ["a.txt"]
  seed    = var.x
}
`)
	env.write("a.txt", "x")
	_, err := env.load("x=1e100000")
	if err == nil || !strings.Contains(err.Error(), "beyond the range of a 64-bit float") || !strings.Contains(err.Error(), "pipeline.hcl:8:") {
		t.Fatalf("load: %v", err)
	}
	if _, err := env.load("x=1e300"); err != nil {
		t.Fatalf("1e300: %v", err)
	}
}

// TestHugeNumberMessageIsFast: the message about a number beyond float64's
// range gives its order of magnitude without computing its digits (which
// took minutes for 1e100000000).
func TestHugeNumberMessageIsFast(t *testing.T) {
	env := newEnv(t, "step \"concat\" \"a\" {\n  sources = [\"a.txt\"]\n  seed = -1e100000000\n}\n")
	env.write("a.txt", "x")
	_, err := env.load()
	if err == nil || !strings.Contains(err.Error(), "about -1e+100000000 is beyond the range") {
		t.Fatalf("load: %v", err)
	}
}

// TestExecutorChoice: a step's executor comes from its executor attribute,
// else from the executor block that says default = true; unknown names and
// two defaults are diagnostics.
func TestExecutorChoice(t *testing.T) {
	env := newEnv(t, `
executor "slurm" {
  default   = true
  partition = "gpu"
}
step "concat" "a" {
  sources = ["a.txt"]
}
step "concat" "b" {
  sources  = ["a.txt"]
  executor = "local"
}
`)
	env.write("a.txt", "x")
	p, err := env.load()
	if err != nil {
		t.Fatal(err)
	}
	a, _ := p.Step("concat.a")
	b, _ := p.Step("concat.b")
	if a.Executor != "slurm" || b.Executor != LocalExecutor {
		t.Fatalf("executors: a %q, b %q", a.Executor, b.Executor)
	}
	if c := p.Executors["slurm"]; !c.Default || c.Attrs["partition"].AsString() != "gpu" {
		t.Fatalf("executor block: %+v", c)
	}
	for src, want := range map[string]string{
		"step \"concat\" \"a\" {\n  sources = [\"a.txt\"]\n  executor = \"slrum\"\n}\n":  `there is no executor "slrum"`,
		"executor \"a\" {\n  default = true\n}\nexecutor \"b\" {\n  default = true\n}\n": "both say default = true",
		"executor \"local\" {\n}\n": "Invalid executor name",
		"step \"concat\" \"a\" {\n  sources = [\"a.txt\"]\n}\nstep \"concat\" \"b\" {\n  sources = [\"a.txt\"]\n  executor = concat.a.output\n}\n": "variables and functions only",
	} {
		env := newEnv(t, src)
		env.write("a.txt", "x")
		if _, err := env.load(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", src, err, want)
		}
	}
}
