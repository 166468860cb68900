package engine

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

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

// FuzzParseCache: arbitrary bytes given to the parse cache's decoder, bare
// or in a well-formed entry, never panic, and what decodes encodes to
// what decodes the same; a source that parses without diagnostics decodes
// from its encoding to its very AST (roundTrip).
func FuzzParseCache(f *testing.F) {
	f.Add([]byte(everySyntax))
	f.Add([]byte(cachedPipeline(3)))
	f.Add([]byte("a = [for k, v in x : v[*].b if k > 0]\nb = c.*.d.0\n"))
	for _, src := range []string{everySyntax, cachedPipeline(3)} {
		file, _ := hclsyntax.ParseConfig([]byte(src), "p.hcl", hcl.InitialPos)
		enc, err := encodeBody(file.Body.(*hclsyntax.Body), []byte(src))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
		f.Add(encodeEntry(parseKey("p.hcl", []byte(src)), enc))
	}
	key := parseKey("p.hcl", nil)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeEntry(b, key)
		_, _ = decodeEntry(encodeEntry(key, b), key)
		if body, err := decodeBody(string(b)); err == nil {
			if enc, err := encodeBody(body, nil); err == nil {
				again, err := decodeBody(string(enc))
				if err != nil || !reflect.DeepEqual(again, body) {
					t.Fatalf("a decoded AST encodes to %v, %v", again, err)
				}
			}
		}
		file, diags := hclsyntax.ParseConfig(b, "p.hcl", hcl.InitialPos)
		if len(diags) > 0 {
			return
		}
		if _, err := encodeBody(file.Body.(*hclsyntax.Body), b); err != nil {
			if strings.Contains(err.Error(), "nested more than") {
				return
			}
			t.Fatal(err)
		}
		roundTrip(t, "p.hcl", b)
	})
}
