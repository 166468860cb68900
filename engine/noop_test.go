package engine

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mlbuild/mlbuild/steps"
)

func TestFastNoop(t *testing.T) {
	stampNow = func() time.Time { return time.Now().Add(time.Minute) }
	defer func() { stampNow = time.Now }()
	env := newEnv(t, chainPipeline)
	env.write("data/a.txt", "alpha\n")
	env.write("data/b.txt", "bravo\n")
	first := env.run(Options{})
	if first.err != nil {
		t.Fatal(first.err)
	}
	keys := map[string]string{}
	for _, r := range first.sum.Steps {
		keys[r.Step] = r.Key
	}
	fast := func(vars ...string) *Summary {
		t.Helper()
		p, err := env.load(vars...)
		if err != nil {
			t.Fatal(err)
		}
		var events int
		sum := FastNoop(p, Options{Workspace: env.dir, OnEvent: func(Event) { events++ }})
		if sum != nil && events != len(p.Steps)+1 {
			t.Fatalf("%d events for %d steps", events, len(p.Steps))
		}
		return sum
	}
	sum := fast()
	if sum == nil || sum.Cached != 5 || sum.Ran != 0 {
		t.Fatalf("no-op after a full run: %+v", sum)
	}
	for _, r := range sum.Steps {
		if r.Status != StatusCached || r.Key != keys[r.Step] || len(r.Outputs) == 0 {
			t.Fatalf("fast no-op result %+v, key want %s", r, keys[r.Step])
		}
	}
	if fast("seed=3") != nil {
		t.Fatal("a config change took the fast path")
	}

	// A target run leaves the stamp alone only if it writes nothing; here
	// any run drops it first and a full run writes it back.
	env.write("data/b.txt", "bravo2\n")
	if fast() != nil {
		t.Fatal("a changed source took the fast path")
	}
	if r := env.run(Options{}); r.err != nil || r.status["concat.b"] != StatusRan {
		t.Fatalf("rerun: %v %v", r.err, r.status)
	}
	if fast() == nil {
		t.Fatal("no stamp after the rerun")
	}

	out := filepath.Join(env.dir, "build/tree.model/model/sub/weights.bin")
	_ = os.Chmod(out, 0o644)
	if err := os.WriteFile(out, []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	if fast() != nil {
		t.Fatal("a damaged output took the fast path")
	}
	if r := env.run(Options{}); r.err != nil || r.sum.Ran != 0 {
		t.Fatalf("restore: %v %v", r.err, r.status)
	}
	if got := env.read("build/tree.model/model/sub/weights.bin"); got == "tampered" {
		t.Fatal("not restored")
	}
	if fast() == nil {
		t.Fatal("no stamp after the restore")
	}
	if err := os.WriteFile(filepath.Join(env.dir, "build/tree.model/model/extra.bin"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if fast() != nil {
		t.Fatal("a file added to a directory output took the fast path")
	}

	// A failed run leaves no stamp behind.
	env.write("pipeline.hcl", chainPipeline+"\nstep \"fail\" \"x\" {\n  input = [concat.a.output]\n}\n")
	if r := env.run(Options{}); r.err == nil {
		t.Fatal("the failing step did not fail")
	}
	if fast() != nil {
		t.Fatal("a failed run left a stamp")
	}
}

// QuickNoop answers a no-op without loading the pipeline while nothing
// loading reads has changed: the pipeline file, variables (flags and
// MLBUILD_VAR_*), -var-file files, what file(), fileexists() and glob()
// found, and the sources and outputs FastNoop checks. Any change to one
// of them sends the caller to Load.
func TestQuickNoop(t *testing.T) {
	stampNow = func() time.Time { return time.Now().Add(time.Minute) }
	defer func() { stampNow = time.Now }()
	pipeline := `
variable "seed" {
  type    = number
  default = 1
}

variable "extra" {
  type    = string
  default = "x"
}

step "concat" "a" {
  sources = concat(["data/a.txt"], glob("data/g*.txt"))
  seed    = var.seed + tonumber(file("data/seed.txt")) + (fileexists("data/flag") ? 1 : 0) + strlen(var.extra)
}

step "tree" "model" {
  input = concat.a.output
}
`
	env := newEnv(t, pipeline)
	env.write("data/a.txt", "alpha\n")
	env.write("data/g1.txt", "g1\n")
	env.write("data/seed.txt", "7")
	env.write("vars.hcl", "extra = \"y\"\n")
	file := filepath.Join(env.dir, "pipeline.hcl")
	lopts := func(environ ...string) LoadOptions {
		return LoadOptions{Registry: env.reg, Environ: append([]string{}, environ...), VarFiles: []string{filepath.Join(env.dir, "vars.hcl")}}
	}
	run := func() {
		t.Helper()
		p, err := Load(file, lopts())
		if err != nil {
			t.Fatal(err)
		}
		e, err := Open(t.Context(), p, Options{Workspace: env.dir})
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
		if sum.Stamp == "" {
			t.Fatal("a full run wrote no stamp")
		}
	}
	quick := func(lo LoadOptions) *Summary {
		t.Helper()
		var events int
		p, sum := QuickNoop(file, lo, Options{Workspace: env.dir, OnEvent: func(Event) { events++ }})
		if sum == nil {
			return nil
		}
		if events != len(sum.Steps)+1 || sum.Cached != 2 || len(p.Steps) != 2 {
			t.Fatalf("%d events, %+v, %d outline steps", events, sum, len(p.Steps))
		}
		if s, ok := p.Step("tree.model"); !ok || len(s.Schema.Outputs) == 0 || s.Impl == nil || p.File != file {
			t.Fatalf("outline: %+v", s)
		}
		return sum
	}
	run()
	first := quick(lopts())
	if first == nil {
		t.Fatal("no quick no-op after a full run")
	}
	again := quick(lopts("OTHER=1"))
	if again == nil || again.Stamp != first.Stamp {
		t.Fatal("an unrelated environment variable or a second no-op changed the answer")
	}
	for _, r := range again.Steps {
		if r.Status != StatusCached || r.Key == "" || len(r.Outputs) == 0 {
			t.Fatalf("result %+v", r)
		}
	}
	if quick(lopts("MLBUILD_VAR_seed=2")) != nil {
		t.Fatal("an MLBUILD_VAR_ variable took the quick path")
	}
	// A kind whose implementation version changed (a rebuilt mlbuild)
	// may compute other keys.
	lo := lopts()
	lo.Registry = steps.NewRegistry()
	lo.Registry.Register(treeKind{env.runs["tree"]})
	lo.Registry.Register(versionedKind{concatKind{env.runs["concat"]}, "another"})
	if quick(lo) != nil {
		t.Fatal("a new kind version took the quick path")
	}
	lo = lopts()
	lo.Vars = []string{"seed=3"}
	if quick(lo) != nil {
		t.Fatal("a -var took the quick path")
	}
	lo = lopts()
	lo.VarFiles = nil
	if quick(lo) != nil {
		t.Fatal("dropping a -var-file took the quick path")
	}

	changes := []struct {
		what   string
		change func()
	}{
		{"an edit of the pipeline", func() { env.write("pipeline.hcl", pipeline+"\n# a comment\n") }},
		{"an edit of a -var-file", func() { env.write("vars.hcl", "extra = \"z\"\n") }},
		{"an edit of a file file() read", func() { env.write("data/seed.txt", "8") }},
		{"a file fileexists() looks for", func() { env.write("data/flag", "") }},
		{"a new match of glob()", func() { env.write("data/g2.txt", "g2\n") }},
		{"an edit of a source", func() { env.write("data/a.txt", "alpha2\n") }},
		{"an edit of an output", func() { env.write("build/tree.model/model/sub/weights.bin", "tampered") }},
	}
	for _, c := range changes {
		c.change()
		if quick(lopts()) != nil {
			t.Fatalf("%s took the quick path", c.what)
		}
		run()
		if quick(lopts()) == nil {
			t.Fatalf("no quick no-op after the run that followed %s", c.what)
		}
	}
}

// versionedKind is a kind with another implementation version.
type versionedKind struct {
	steps.Kind
	version string
}

func (k versionedKind) Schema() steps.Schema {
	s := k.Kind.Schema()
	s.Version = k.version
	return s
}

// A full run right after its files were written (a checkout, a copy, an
// edit) cannot trust their identities, so its stamp has no load record
// and the no-op after it must load the pipeline; that no-op records what
// loading read once it has settled, and the one after it is quick. Without
// that, every no-op until the next real build would load the pipeline.
func TestFastNoopRecordsSettledLoad(t *testing.T) {
	pipeline := `
step "concat" "a" {
  sources = ["data/a.txt"]
  seed    = tonumber(file("data/seed.txt"))
}
`
	env := newEnv(t, pipeline)
	env.write("data/a.txt", "alpha\n")
	env.write("data/seed.txt", "7")
	file := filepath.Join(env.dir, "pipeline.hcl")
	lopts := LoadOptions{Registry: env.reg}
	opts := Options{Workspace: env.dir}

	// The files are fresh when loading reads them, settled by the time
	// the run ends (a long build): the stamp has no load record.
	stampNow = time.Now
	defer func() { stampNow = time.Now }()
	p, err := Load(file, lopts)
	if err != nil {
		t.Fatal(err)
	}
	stampNow = func() time.Time { return time.Now().Add(time.Minute) }
	sum := buildPipeline(t, p, opts)
	if sum.Stamp == "" {
		t.Fatal("the full run wrote no stamp")
	}
	if _, q := QuickNoop(file, lopts, opts); q != nil {
		t.Fatal("a quick no-op from a stamp whose load read fresh files")
	}

	// Loaded again, the files have settled: the no-op records them.
	p, err = Load(file, lopts)
	if err != nil {
		t.Fatal(err)
	}
	if FastNoop(p, opts) == nil {
		t.Fatal("the loaded no-op was not a no-op")
	}
	q1, q2 := QuickNoop(file, lopts, opts)
	if q1 == nil || q2 == nil || q2.Stamp != sum.Stamp || q2.Cached != 1 {
		t.Fatalf("after a loaded no-op, QuickNoop = %v, %+v; want the run's stamp %s", q1, q2, sum.Stamp)
	}
	if env.runs["concat"].Load() != 1 {
		t.Errorf("concat ran %d times", env.runs["concat"].Load())
	}
}
