package engine

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A folder is one pipeline of its .hcl files (variable files aside):
// blocks refer across files, relative paths resolve against the folder, a
// duplicate across files names both, and the quick no-op notices a file
// added to the folder.
func TestFolderPipeline(t *testing.T) {
	stampNow = func() time.Time { return time.Now().Add(time.Minute) }
	defer func() { stampNow = time.Now }()
	env := newEnv(t, "")
	env.write("stages/vars.hcl", `
variable "seed" {
  type    = number
  default = 1
}
`)
	env.write("stages/data.hcl", `
step "concat" "a" {
  sources = ["data/a.txt"]
  seed    = var.seed
}
`)
	env.write("stages/model.hcl", `
step "tree" "model" {
  input = concat.a.output
}
`)
	env.write("stages/ci.vars.hcl", "seed = 2\n") // a -var-file: not part of the folder's pipeline
	env.write("stages/data/a.txt", "alpha\n")
	dir := filepath.Join(env.dir, "stages")
	lopts := LoadOptions{Registry: env.reg, Environ: []string{}}

	p, err := Load(dir, lopts)
	if err != nil {
		t.Fatal(err)
	}
	if p.File != dir || p.Dir != dir || len(p.Files) != 3 || filepath.Base(p.Files[0]) != "data.hcl" {
		t.Fatalf("File %s, Dir %s, Files %v", p.File, p.Dir, p.Files)
	}
	model, ok := p.Step("tree.model")
	if !ok || len(model.Deps) != 1 || model.Deps[0].Addr != "concat.a" {
		t.Fatalf("tree.model: %+v", model)
	}
	a, _ := p.Step("concat.a")
	if got := a.Inputs["sources"][0].Path; got != filepath.Join(dir, "data", "a.txt") {
		t.Errorf("a source resolves to %s, not inside the folder", got)
	}
	withVars := lopts
	withVars.VarFiles = []string{filepath.Join(dir, "ci.vars.hcl")}
	pv, err := Load(dir, withVars)
	if err != nil {
		t.Fatal(err)
	}
	av, _ := pv.Step("concat.a")
	if av.Config["seed"].AsBigFloat().String() != "2" {
		t.Errorf("seed from the -var-file: %v", av.Config["seed"])
	}

	// A run, then a quick no-op of the folder; a new file in it voids that.
	if sum := buildPipeline(t, p, Options{Workspace: env.dir}); sum.Ran != 2 {
		t.Fatalf("run: %+v", sum)
	}
	if _, q := QuickNoop(dir, lopts, Options{Workspace: env.dir}); q == nil || q.Cached != 2 {
		t.Fatalf("no quick no-op of the folder after a run: %+v", q)
	}
	env.write("stages/extra.hcl", "# nothing yet\n")
	if _, q := QuickNoop(dir, lopts, Options{Workspace: env.dir}); q != nil {
		t.Fatal("a file added to the folder kept the quick no-op")
	}

	// The same step in two files: the error points at the second and
	// names the first.
	env.write("stages/dup.hcl", "step \"concat\" \"a\" {\n  sources = [\"data/a.txt\"]\n}\n")
	_, err = Load(dir, lopts)
	var de *DiagError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "dup.hcl") || !strings.Contains(err.Error(), "data.hcl") {
		t.Errorf("a step declared in two files: %v", err)
	}

	// A folder of variable files only is no pipeline.
	env.write("novars/ci.vars.hcl", "seed = 2\n")
	if _, err := Load(filepath.Join(env.dir, "novars"), lopts); err == nil || !strings.Contains(err.Error(), "holds no .hcl file") {
		t.Errorf("a folder without pipeline files: %v", err)
	}
}

// With targets, Load evaluates only them and what they need: a broken step
// elsewhere does not stop building the target, the others have no config,
// the engine refuses a pipeline loaded for other targets, and the partial
// load leaves no load record for the quick no-op.
func TestLoadTargetsEvaluatesOnlyTheirClosure(t *testing.T) {
	env := newEnv(t, `
step "concat" "a" {
  sources = ["data/a.txt"]
}

step "tree" "model" {
  input = concat.a.output
}

step "concat" "broken" {
  sources = [file("data/missing.txt")]
}
`)
	env.write("data/a.txt", "alpha\n")
	file := filepath.Join(env.dir, "pipeline.hcl")
	if _, err := Load(file, LoadOptions{Registry: env.reg}); err == nil {
		t.Fatal("the broken step loaded without targets")
	}
	p, err := Load(file, LoadOptions{Registry: env.reg, Targets: []string{"tree.model"}})
	if err != nil {
		t.Fatalf("with a target the broken step still failed the load: %v", err)
	}
	if !p.Partial() {
		t.Error("not partial")
	}
	for addr, evaluated := range map[string]bool{"concat.a": true, "tree.model": true, "concat.broken": false} {
		s, _ := p.Step(addr)
		if (s.Config != nil) != evaluated {
			t.Errorf("%s evaluated: %v, want %v", addr, s.Config != nil, evaluated)
		}
	}
	if p.loadRecord() != nil {
		t.Error("a partial load has a load record")
	}
	if _, err := Open(t.Context(), p, Options{Workspace: env.dir}); err == nil || !strings.Contains(err.Error(), "not evaluated") {
		t.Errorf("Open of a partial pipeline for every step: %v", err)
	}
	if sum := buildPipeline(t, p, Options{Workspace: env.dir, Targets: []string{"tree.model"}}); sum.Ran != 2 {
		t.Fatalf("run of the target: %+v", sum)
	}
}

// buildPipeline opens an engine on p, runs it and closes it, failing the
// test on any error.
func buildPipeline(t *testing.T, p *Pipeline, opts Options) *Summary {
	t.Helper()
	e, err := Open(t.Context(), p, opts)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := e.Run(t.Context())
	if cerr := e.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	return sum
}
