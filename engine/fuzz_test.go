package engine

import (
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/mlbuild/mlbuild/steps"
)

// FuzzLoad feeds arbitrary pipeline sources to the loader: it must return
// a pipeline or diagnostics, never panic.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(chainPipeline))
	f.Add([]byte("step \"concat\" \"a\" {\n  sources = [concat.b.output]\n}\nstep \"concat\" \"b\" {\n  sources = [concat.a.output]\n}\n"))
	f.Add([]byte("variable \"x\" {\n  type = list(number)\n  default = [1, \"a\"]\n}\n"))
	f.Add([]byte("step \"concat\" \"a\" {\n  sources = glob(\"*.txt\")\n  seed = var.x[0]\n}\n"))
	f.Add([]byte("step \"concat\" \"a\" { sources = [\"${upper(\"a\")}.txt\"] }"))
	f.Add([]byte("\xff\xfe{{{"))
	dir := f.TempDir()
	for _, n := range []string{"a.txt", "A.txt", "data/a.txt", "data/b.txt"} {
		p := filepath.Join(dir, n)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		_ = os.WriteFile(p, []byte("x\n"), 0o644)
	}
	reg := steps.NewRegistry()
	var n atomic.Int64
	reg.Register(concatKind{&n})
	reg.Register(firstLineKind{&n})
	reg.Register(treeKind{&n})
	reg.Register(failKind{})
	f.Fuzz(func(t *testing.T, src []byte) {
		p := filepath.Join(t.TempDir(), "pipeline.hcl")
		for _, n := range []string{"a.txt", "data/a.txt", "data/b.txt"} {
			q := filepath.Join(filepath.Dir(p), n)
			_ = os.MkdirAll(filepath.Dir(q), 0o755)
			_ = os.WriteFile(q, []byte("x\n"), 0o644)
		}
		if err := os.WriteFile(p, src, 0o644); err != nil {
			t.Fatal(err)
		}
		pl, err := Load(p, LoadOptions{Registry: reg, Environ: []string{}})
		if err != nil {
			var de *DiagError
			if !errors.As(err, &de) {
				t.Fatalf("non-diagnostic error: %v", err)
			}
			_ = de.Error()
			return
		}
		_ = pl.DOT()
		_ = pl.Mermaid()
	})
}
