package engine

import (
	"os"
	"path/filepath"
	"testing"
	"time"
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
