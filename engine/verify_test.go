package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/steps"
)

// counterKind writes a different output every time it runs: the kind of
// non-reproducible step verify exists to catch.
type counterKind struct{ n *atomic.Int64 }

func (counterKind) Schema() steps.Schema {
	return steps.Schema{Kind: "counter", Version: "1",
		Attributes: []steps.Attribute{{Name: "input", Type: cty.List(cty.String), Input: true, Required: true}},
		Outputs:    []steps.Output{{Name: "output", Path: "out", Dir: true}}}
}

func (k counterKind) Run(ctx context.Context, inv *steps.Invocation) error {
	dir := filepath.Join(inv.OutDir, "out")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("same\n"), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "b.txt"), []byte(fmt.Sprintf("line one\nrun %d\n", k.n.Add(1))), 0o644)
}

func TestVerify(t *testing.T) {
	env := newEnv(t, chainPipeline+"\nstep \"counter\" \"flaky\" {\n  input = concat.b.output\n}\n")
	env.reg.Register(counterKind{&atomic.Int64{}})
	env.write("data/a.txt", "alpha\n")
	env.write("data/b.txt", "bravo\n")
	p, err := env.load()
	if err != nil {
		t.Fatal(err)
	}
	e, err := Open(context.Background(), p, Options{Workspace: env.dir})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, e)
	res, err := e.Verify(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]VerifyResult{}
	for _, r := range res {
		got[r.Step] = r
	}
	for _, s := range []string{"concat.a", "first_line.head", "concat.b", "concat.all", "tree.model"} {
		if !got[s].Reproducible {
			t.Errorf("%s: not reproducible: %+v", s, got[s])
		}
	}
	fl := got["counter.flaky"]
	if fl.Reproducible || len(fl.Outputs) != 1 || fl.Outputs[0].FirstDiff != "b.txt: byte 13 (line 2)" {
		t.Fatalf("flaky step: %+v", fl)
	}
	// Verify stored and installed nothing: build/ still holds the first run.
	if b := env.read("build/counter.flaky/out/b.txt"); b != "line one\nrun 1\n" {
		t.Fatalf("verify replaced the output: %q", b)
	}
}

func TestLocked(t *testing.T) {
	env := newEnv(t, chainPipeline)
	env.write("data/a.txt", "alpha\n")
	env.write("data/b.txt", "bravo\n")
	first := env.run(Options{})
	locked := map[string]LockedStep{}
	for _, r := range first.sum.Steps {
		ls := LockedStep{Key: r.Key, Outputs: map[string]string{}}
		for n, o := range r.Outputs {
			ls.Outputs[n] = o.Digest
		}
		locked[r.Step] = ls
	}
	if r := env.run(Options{Locked: locked}); r.err != nil {
		t.Fatalf("--locked with nothing changed: %v", r.err)
	}
	env.write("data/b.txt", "bravo, changed\n")
	r := env.run(Options{Locked: locked})
	if r.err == nil || !errors.Is(r.err, errLockMismatch) || !strings.Contains(r.err.Error(), "concat.b failed: differs from the lockfile: key") ||
		!strings.Contains(r.err.Error(), "input.sources[0] changed: data/b.txt") {
		t.Fatalf("--locked after an input change: %v", r.err)
	}
	if r.status["concat.all"] != StatusSkipped {
		t.Fatalf("dependent of a mismatch: %v", r.status)
	}
	// A locked output digest that the build doesn't reproduce.
	env.write("data/b.txt", "bravo\n")
	bad := locked["concat.a"]
	bad.Outputs = map[string]string{"output": strings.Repeat("0", 64), "report": bad.Outputs["report"]}
	locked["concat.a"] = bad
	r = env.run(Options{Locked: locked})
	if r.err == nil || !strings.Contains(r.err.Error(), `same key, different outputs (not reproducible?): output "output" is sha256:`) {
		t.Fatalf("--locked with a different output: %v", r.err)
	}
}
