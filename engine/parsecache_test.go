package engine

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// everySyntax uses every expression type and traversal step hclsyntax
// makes of a file without errors, and numbers, strings and keys of every
// kind the codec handles.
const everySyntax = `# every construct
variable "v" {
  default = {a = 1, "b" = [true, false, null], (var.x) = -1.5e3, c: "d"}
}

top = 1

step "x" "y" {
  splat     = var.list[*].name
  splat2    = var.list[*]
  splat3    = [var.a[*].b[*].c]
  attrsplat = var.list.*.name.0
  attrsplat2 = var.list.*
  index     = var.m["k"][0]
  index2    = var.m[var.i]
  index3    = var.m[ 2 ]
  index4    = f()[0].x
  legacy    = var.x.0.y
  tuplefor  = [for i, v in var.list : v.x if i > 0]
  objfor    = {for k, v in var.m : k => v...}
  objfor2   = {for v in var.m : v.k => v}
  nested    = [[for x in y : [for z in x : z]]]
  cond      = var.c ? 1 : 2
  logic     = !true || false && 1 < 2 && 2 <= 3 && 3 > 2 && 3 >= 1 && 1 == 1 && 1 != 2
  arith     = 1 + 2 - 3 * 4 / 5 % 6
  neg       = -var.n
  paren     = (1 + 2) * 3
  call      = upper("x${var.a}y%{if var.b}yes%{else}no%{endif}~")
  expand    = concat(var.a, var.b...)
  ns        = provider::ns::fn(1, "two")
  wrap      = "${var.a}"
  plain     = "plain"
  empty     = ""
  escapes   = "tab\there \"q\" \\ $${lit} %%{lit} caf\u00e9 \U0001F600 ✓"
  numbers   = [0, 1, 0.1, 1e10, 1.5E-7, 12345678901234567890123, 3.14159265358979323846264338327950288]
  heredoc   = <<EOT
plain ${var.name}
%{for x in var.list}${x}, %{endfor}
EOT
  indented  = <<-EOT
    indented ${var.name}
      more
    EOT
  obj       = {
    a     = 1
    "b c" = 2
    (var.k) = 3
    d.e   = 4
  }
  sub {
    deep {
      x = [1, 2,]
    }
  }
  sub {
  }
}

step "a" "b" {}
`

// corpus is every pipeline source the tests round-trip: the repository's
// .hcl files, the HCL examples of the docs, the bench's generated
// pipelines (1,000 and 10,000 steps) and everySyntax.
func corpus(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{"every.hcl": []byte(everySyntax)}
	for _, glob := range []string{"../pipelines/*.hcl", "../pipelines/*/*.hcl", "testdata/*.hcl"} {
		ms, _ := filepath.Glob(glob)
		for _, m := range ms {
			b, err := os.ReadFile(m)
			if err != nil {
				t.Fatal(err)
			}
			out[m] = b
		}
	}
	docs, _ := filepath.Glob("../docs/*.md")
	docs = append(docs, "../README.md")
	block := regexp.MustCompile("(?s)```hcl\n(.*?)```")
	for _, d := range docs {
		b, err := os.ReadFile(d)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range block.FindAllSubmatch(b, -1) {
			out[fmt.Sprintf("%s#%d", d, i)] = m[1]
		}
	}
	for _, n := range []int{1000, 10000} {
		out[fmt.Sprintf("large-%d.hcl", n)] = []byte(largePipeline(n, ""))
	}
	return out
}

// anonIDs lists, in a fixed order of the body's expressions (attributes by
// name), an id per splat symbol met (each splat's Item, then the symbols
// its Each refers to): two ASTs with the same list share their symbols
// alike.
func anonIDs(body *hclsyntax.Body) []int {
	ids := map[*hclsyntax.AnonSymbolExpr]int{}
	var seq []int
	id := func(a *hclsyntax.AnonSymbolExpr) {
		if _, ok := ids[a]; !ok {
			ids[a] = len(ids)
		}
		seq = append(seq, ids[a])
	}
	var walk func(b *hclsyntax.Body)
	walk = func(b *hclsyntax.Body) {
		names := make([]string, 0, len(b.Attributes))
		for n := range b.Attributes {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			_ = hclsyntax.VisitAll(b.Attributes[n].Expr, func(node hclsyntax.Node) hcl.Diagnostics {
				switch x := node.(type) {
				case *hclsyntax.SplatExpr:
					id(x.Item)
				case *hclsyntax.AnonSymbolExpr:
					id(x)
				}
				return nil
			})
		}
		for _, blk := range b.Blocks {
			walk(blk.Body)
		}
	}
	walk(body)
	return seq
}

// roundTrip parses src whole, encodes and decodes its body, and fails
// unless the decoded AST is the parsed one: deep-equal (operations are
// the same pointers, so DeepEqual compares them without their funcs) and
// with the same splat symbols shared. It reports false for a source that
// does not parse without diagnostics.
func roundTrip(t *testing.T, name string, src []byte) bool {
	t.Helper()
	f, diags := hclsyntax.ParseConfig(src, name, hcl.InitialPos)
	if len(diags) > 0 {
		return false
	}
	body := f.Body.(*hclsyntax.Body)
	enc, err := encodeBody(body, src)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	key := parseKey(name, src)
	got, err := decodeEntry(encodeEntry(key, enc), key)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if !reflect.DeepEqual(got, body) {
		t.Fatalf("%s: the decoded AST differs from the parsed one", name)
	}
	if a, b := anonIDs(got), anonIDs(body); !slices.Equal(a, b) {
		t.Fatalf("%s: splat symbols %v, parsed %v", name, a, b)
	}
	if wf := syntaxFile(got, src, name); !reflect.DeepEqual(wf, f) {
		t.Fatalf("%s: the file differs from ParseConfig's", name)
	}
	return true
}

// Every pipeline source of the repository, the docs' examples and the
// bench's generated pipelines decode to the AST they were parsed to.
func TestParseCacheRoundTrip(t *testing.T) {
	n := 0
	for name, src := range corpus(t) {
		if roundTrip(t, name, src) {
			n++
		} else if !strings.Contains(name, "#") {
			t.Errorf("%s does not parse", name)
		}
	}
	if n < 10 {
		t.Fatalf("only %d sources round-tripped", n)
	}
	// every.hcl has what it claims.
	f, _ := hclsyntax.ParseConfig([]byte(everySyntax), "every.hcl", hcl.InitialPos)
	seen := map[string]bool{}
	_ = hclsyntax.VisitAll(f.Body.(*hclsyntax.Body), func(n hclsyntax.Node) hcl.Diagnostics {
		seen[fmt.Sprintf("%T", n)] = true
		if x, ok := n.(*hclsyntax.ObjectConsKeyExpr); ok && x.ForceNonLiteral {
			seen["ForceNonLiteral"] = true
		}
		if x, ok := n.(*hclsyntax.FunctionCallExpr); ok && x.ExpandFinal {
			seen["ExpandFinal"] = true
		}
		return nil
	})
	for _, want := range []string{"LiteralValueExpr", "ScopeTraversalExpr", "RelativeTraversalExpr", "FunctionCallExpr",
		"ConditionalExpr", "BinaryOpExpr", "UnaryOpExpr", "ObjectConsExpr", "ObjectConsKeyExpr", "TupleConsExpr",
		"TemplateExpr", "TemplateJoinExpr", "TemplateWrapExpr", "ForExpr", "IndexExpr", "SplatExpr", "AnonSymbolExpr",
		"ParenthesesExpr", "ForceNonLiteral", "ExpandFinal"} {
		if !seen["*hclsyntax."+want] && !seen[want] {
			t.Errorf("every.hcl has no %s", want)
		}
	}
}

// The codec refuses what a parse without errors does not make, so that
// such a file is parsed instead of cached.
func TestParseCacheUnencodable(t *testing.T) {
	r := hcl.Range{Filename: "p.hcl"}
	lit := func(v cty.Value) *hclsyntax.Body {
		return &hclsyntax.Body{Attributes: hclsyntax.Attributes{"a": {Name: "a", Expr: &hclsyntax.LiteralValueExpr{Val: v, SrcRange: r}}}}
	}
	for name, body := range map[string]*hclsyntax.Body{
		"syntax error":  {Attributes: hclsyntax.Attributes{"a": {Name: "a", Expr: &hclsyntax.ExprSyntaxError{Placeholder: cty.DynamicVal}}}},
		"operation":     {Attributes: hclsyntax.Attributes{"a": {Name: "a", Expr: &hclsyntax.UnaryOpExpr{Op: &hclsyntax.Operation{}, Val: &hclsyntax.LiteralValueExpr{Val: cty.True}}}}},
		"unknown":       lit(cty.UnknownVal(cty.Number)),
		"list":          lit(cty.ListValEmpty(cty.String)),
		"marked":        lit(cty.True.Mark("m")),
		"missing expr":  {Attributes: hclsyntax.Attributes{"a": {Name: "a"}}},
		"attr name":     {Attributes: hclsyntax.Attributes{"a": {Name: "b", Expr: &hclsyntax.LiteralValueExpr{Val: cty.True}}}},
		"labels":        {Blocks: hclsyntax.Blocks{{Type: "step", Labels: []string{"a"}, Body: &hclsyntax.Body{}}}},
		"splat no item": {Attributes: hclsyntax.Attributes{"a": {Name: "a", Expr: &hclsyntax.SplatExpr{Source: &hclsyntax.LiteralValueExpr{Val: cty.True}, Each: &hclsyntax.LiteralValueExpr{Val: cty.True}}}}},
	} {
		if _, err := encodeBody(body, nil); !errors.Is(err, errUnencodable) {
			t.Errorf("%s: %v, want errUnencodable", name, err)
		}
	}
	deep := strings.Repeat("[", maxASTDepth+1) + strings.Repeat("]", maxASTDepth+1)
	f, diags := hclsyntax.ParseConfig([]byte("a = "+deep+"\n"), "p.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if _, err := encodeBody(f.Body.(*hclsyntax.Body), nil); !errors.Is(err, errUnencodable) {
		t.Errorf("too deep: %v, want errUnencodable", err)
	}
}

// loadFlushed is Load, then FlushParseCache.
func loadFlushed(path string, opts LoadOptions) (*Pipeline, error) {
	p, err := Load(path, opts)
	FlushParseCache()
	return p, err
}

// useParseCache caches files of any size for the test, in a fresh folder
// it returns.
func useParseCache(t *testing.T) string {
	t.Helper()
	old := parseCacheMin
	parseCacheMin = 0
	dir := filepath.Join(t.TempDir(), "parse")
	t.Cleanup(func() {
		FlushParseCache() // before the folder is removed
		parseCacheMin = old
	})
	return dir
}

// cachedPipeline is a pipeline of the test kinds that uses variables,
// functions, splats, for expressions, templates and conditionals: its
// variables, n concat steps and a tree step, as blocks.
func cachedBlocks(n int) []string {
	out := []string{"variable \"seed\" {\n  default = 3\n}\n", "variable \"names\" {\n  default = [{n = \"a\"}, {n = \"b\"}]\n}\n"}
	for i := range n {
		out = append(out, fmt.Sprintf("step \"concat\" \"c%03d\" {\n  sources = [for x in var.names[*].n : \"data/${x}.txt\" if x != \"\"]\n  seed    = var.seed > 2 ? var.seed * %d + length(var.names.*.n) : -1\n}\n", i, i))
	}
	return append(out, fmt.Sprintf("step \"tree\" \"model\" {\n  input = concat.c%03d.output\n}\n", n-1))
}

// cachedPipeline is cachedBlocks in one file.
func cachedPipeline(n int) string { return strings.Join(cachedBlocks(n), "\n") }

// sameSteps fails unless two loads of a pipeline evaluated alike: the same
// steps, ranges, configs, inputs and dependencies, and the same
// fingerprint (every key but for input content).
func sameSteps(t *testing.T, got, want *Pipeline) {
	t.Helper()
	if len(got.Steps) != len(want.Steps) || fingerprint(got) != fingerprint(want) {
		t.Fatalf("%d steps, fingerprint %s; want %d, %s", len(got.Steps), fingerprint(got), len(want.Steps), fingerprint(want))
	}
	for i, w := range want.Steps {
		g := got.Steps[i]
		if g.Addr != w.Addr || g.Range != w.Range || !reflect.DeepEqual(g.KeyConfig, w.KeyConfig) || !reflect.DeepEqual(g.Inputs, w.Inputs) ||
			!reflect.DeepEqual(g.attrRanges, w.attrRanges) || len(g.Deps) != len(w.Deps) {
			t.Fatalf("step %s differs", w.Addr)
		}
		for k, v := range w.Config {
			if !g.Config[k].RawEquals(v) {
				t.Fatalf("step %s: %s = %#v, want %#v", w.Addr, k, g.Config[k], v)
			}
		}
	}
}

// A pipeline loaded through the parse cache, when the entry is written
// and when it is read, is the one loaded without it; files that do not
// parse, or are too small, get no entry, and their diagnostics are a
// parse's.
func TestParseCacheLoadsTheSamePipeline(t *testing.T) {
	env := newEnv(t, cachedPipeline(30))
	env.write("data/a.txt", "alpha\n")
	env.write("data/b.txt", "beta\n")
	dir := useParseCache(t)
	load := func(cache string) *Pipeline {
		t.Helper()
		p, err := loadFlushed(filepath.Join(env.dir, "pipeline.hcl"), LoadOptions{Registry: env.reg, Environ: []string{}, ParseCache: cache})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	want := load("")
	hits := parseCacheHits.Load()
	sameSteps(t, load(dir), want)
	if parseCacheHits.Load() != hits {
		t.Fatal("a hit in an empty cache")
	}
	es, _ := parseEntries(dir)
	if len(es) != 1 {
		t.Fatalf("%d entries, want 1", len(es))
	}
	cached := load(dir)
	sameSteps(t, cached, want)
	if parseCacheHits.Load() != hits+1 {
		t.Fatal("the second load parsed again")
	}
	// Diagnostics render from the cached file as from the parsed one.
	name := displayName(filepath.Join(env.dir, "pipeline.hcl"))
	if !bytes.Equal(cached.files[name].Bytes, want.files[name].Bytes) {
		t.Fatal("the cached file lacks its source")
	}

	// A file that does not parse: the same diagnostics, and no entry.
	env.write("pipeline.hcl", cachedPipeline(3)+"step \"concat\" \"bad\" {\n  sources = [\n}\n")
	_, werr := loadFlushed(filepath.Join(env.dir, "pipeline.hcl"), LoadOptions{Registry: env.reg, Environ: []string{}})
	_, gerr := loadFlushed(filepath.Join(env.dir, "pipeline.hcl"), LoadOptions{Registry: env.reg, Environ: []string{}, ParseCache: dir})
	if werr == nil || gerr == nil || werr.Error() != gerr.Error() {
		t.Fatalf("diagnostics %v, want %v", gerr, werr)
	}
	if es, _ := parseEntries(dir); len(es) != 1 {
		t.Fatalf("%d entries after a file that does not parse, want 1", len(es))
	}
	// A file that parses but does not evaluate is cached, and its
	// diagnostics are the same from the cache.
	env.write("pipeline.hcl", cachedPipeline(3)+"step \"concat\" \"bad\" {\n  sources = [var.nope]\n}\n")
	_, werr = loadFlushed(filepath.Join(env.dir, "pipeline.hcl"), LoadOptions{Registry: env.reg, Environ: []string{}})
	for range 2 {
		_, gerr = loadFlushed(filepath.Join(env.dir, "pipeline.hcl"), LoadOptions{Registry: env.reg, Environ: []string{}, ParseCache: dir})
		if werr == nil || gerr == nil || werr.Error() != gerr.Error() {
			t.Fatalf("diagnostics %v, want %v", gerr, werr)
		}
	}
	// A small file is parsed: no entry.
	parseCacheMin = 1 << 20
	env.write("pipeline.hcl", cachedPipeline(2))
	load(dir)
	if es, _ := parseEntries(dir); len(es) != 2 {
		t.Fatalf("%d entries after a small file, want 2", len(es))
	}
}

// A file parsed in pieces is cached as one whole-file AST, and loads the
// same from the cache.
func TestParseCacheOfPieces(t *testing.T) {
	parsePieces(t)
	env := newEnv(t, cachedPipeline(40))
	env.write("data/a.txt", "alpha\n")
	env.write("data/b.txt", "beta\n")
	dir := useParseCache(t)
	path := filepath.Join(env.dir, "pipeline.hcl")
	src, _ := os.ReadFile(path)
	if len(blockCuts(src, 4)) != 4 {
		t.Fatal("the file is not cut in four")
	}
	want, err := loadFlushed(path, LoadOptions{Registry: env.reg, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	hits := parseCacheHits.Load()
	for range 2 {
		got, err := loadFlushed(path, LoadOptions{Registry: env.reg, Environ: []string{}, ParseCache: dir})
		if err != nil {
			t.Fatal(err)
		}
		sameSteps(t, got, want)
	}
	if parseCacheHits.Load() != hits+1 {
		t.Fatal("no hit")
	}
}

// In a folder pipeline, after one file changed, the others are decoded
// and that one parsed (and cached).
func TestParseCacheFolder(t *testing.T) {
	env := newEnv(t, "")
	env.write("p/data/a.txt", "alpha\n")
	env.write("p/data/b.txt", "beta\n")
	files := make([]strings.Builder, 5)
	for i, b := range cachedBlocks(50) {
		files[i%5].WriteString(b + "\n")
	}
	for i := range files {
		env.write(fmt.Sprintf("p/%d.hcl", i), files[i].String())
	}
	dir := useParseCache(t)
	load := func(cache string) *Pipeline {
		t.Helper()
		p, err := loadFlushed(filepath.Join(env.dir, "p"), LoadOptions{Registry: env.reg, Environ: []string{}, ParseCache: cache})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	load(dir)
	f1 := filepath.Join(env.dir, "p", "1.hcl")
	b, _ := os.ReadFile(f1)
	env.write("p/1.hcl", "# touched\n"+string(b))
	want := load("")
	hits := parseCacheHits.Load()
	sameSteps(t, load(dir), want)
	if got := parseCacheHits.Load() - hits; got != 4 {
		t.Fatalf("%d files decoded, want 4", got)
	}
	if es, _ := parseEntries(dir); len(es) != 6 {
		t.Fatalf("%d entries, want 6", len(es))
	}
}

// A damaged, truncated or misplaced entry is not used: the file is parsed
// (the pipeline the same) and the entry written again.
func TestParseCacheDamagedEntry(t *testing.T) {
	env := newEnv(t, cachedPipeline(10))
	env.write("data/a.txt", "alpha\n")
	env.write("data/b.txt", "beta\n")
	dir := useParseCache(t)
	path := filepath.Join(env.dir, "pipeline.hcl")
	want, err := loadFlushed(path, LoadOptions{Registry: env.reg, Environ: []string{}, ParseCache: dir})
	if err != nil {
		t.Fatal(err)
	}
	es, _ := parseEntries(dir)
	if len(es) != 1 {
		t.Fatalf("%d entries", len(es))
	}
	entry := es[0].path
	good, _ := os.ReadFile(entry)
	other := parseKey("other.hcl", nil)
	damages := map[string][]byte{
		"empty":     {},
		"truncated": good[:len(good)/2],
		"no crc":    good[:len(good)-4],
		"longer":    append(slices.Clone(good), 0),
		"magic":     append([]byte("mlbuild parse cache 0\n"), good[len(parseCacheMagic):]...),
		"crc":       flip(good, len(good)-1),
		"payload":   flip(good, parseCacheHeader+len(good[parseCacheHeader:])/2),
		"length":    flip(good, parseCacheHeader-8),
		"other key": encodeEntry(other, good[parseCacheHeader:len(good)-4]),
		"garbage":   bytes.Repeat([]byte{0xff}, len(good)),
	}
	for name, b := range damages {
		if err := os.WriteFile(entry, b, 0o644); err != nil {
			t.Fatal(err)
		}
		hits := parseCacheHits.Load()
		got, err := loadFlushed(path, LoadOptions{Registry: env.reg, Environ: []string{}, ParseCache: dir})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		sameSteps(t, got, want)
		if parseCacheHits.Load() != hits {
			t.Fatalf("%s: the entry was used", name)
		}
		if b, _ := os.ReadFile(entry); !bytes.Equal(b, good) {
			t.Fatalf("%s: the entry was not written again", name)
		}
	}
	// A payload that checks but does not decode (a codec bug, say) is
	// not used either.
	key := parseKey(displayName(path), mustRead(t, path))
	if err := os.WriteFile(entry, encodeEntry(key, []byte{1, 2, 3}), 0o644); err != nil {
		t.Fatal(err)
	}
	hits := parseCacheHits.Load()
	if _, err := loadFlushed(path, LoadOptions{Registry: env.reg, Environ: []string{}, ParseCache: dir}); err != nil || parseCacheHits.Load() != hits {
		t.Fatalf("a corrupt payload: %v, used %v", err, parseCacheHits.Load() != hits)
	}
	// An unwritable folder only costs the parse.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := loadFlushed(path, LoadOptions{Registry: env.reg, Environ: []string{}, ParseCache: dir})
	if err != nil {
		t.Fatal(err)
	}
	sameSteps(t, got, want)
}

func flip(b []byte, i int) []byte {
	c := slices.Clone(b)
	c[i] ^= 0x40
	return c
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The folder stays under its cap, the least recently used entries going
// first; gc removes the entries unused for its age and old temporary
// files.
func TestParseCacheCapAndGC(t *testing.T) {
	cacheDir := t.TempDir()
	dir := ParseCacheDir(cacheDir)
	old := parseCacheMaxBytes
	t.Cleanup(func() { parseCacheMaxBytes = old })
	body := func(i int) (*hclsyntax.Body, []byte) {
		src := []byte(fmt.Sprintf("a = %d\n%s", i, strings.Repeat("# padding\n", 100)))
		f, _ := hclsyntax.ParseConfig(src, "p.hcl", hcl.InitialPos)
		return f.Body.(*hclsyntax.Body), src
	}
	var paths []string
	for i := range 5 {
		b, src := body(i)
		key := parseKey("p.hcl", src)
		path := filepath.Join(dir, fmt.Sprintf("%x", key))
		parseCacheMaxBytes = 1 << 30
		if err := writeParseEntry(dir, path, key, b, src); err != nil {
			t.Fatal(err)
		}
		used := time.Now().Add(-time.Duration(10-i) * 24 * time.Hour)
		if err := os.Chtimes(path, used, used); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, path)
	}
	es, _ := parseEntries(dir)
	size := es[0].size
	// Reading an entry marks it used: the oldest becomes the newest.
	b0, src0 := body(0)
	if got := readParseEntry(paths[0], parseKey("p.hcl", src0)); !reflect.DeepEqual(got, b0) {
		t.Fatal("the entry does not read back")
	}
	// A sixth entry over a cap of four: the two least recently used go.
	parseCacheMaxBytes = 4 * size
	b5, src5 := body(5)
	key5 := parseKey("p.hcl", src5)
	path5 := filepath.Join(dir, fmt.Sprintf("%x", key5))
	if err := writeParseEntry(dir, path5, key5, b5, src5); err != nil {
		t.Fatal(err)
	}
	for i, p := range append(paths, path5) {
		_, err := os.Stat(p)
		if gone := i == 1 || i == 2; gone != errors.Is(err, os.ErrNotExist) {
			t.Errorf("entry %d: %v", i, err)
		}
	}
	// gc: entry 3, unused for longer than ParseCacheMaxAge, goes and
	// entry 4 (6 days) stays, but not with --older-than 5d1h; so does a
	// temporary file over an hour old; files not the cache's stay.
	tmp := filepath.Join(dir, "x.123.tmp")
	stale := time.Now().Add(-2 * time.Hour)
	for _, f := range []string{tmp, filepath.Join(dir, "README")} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(f, stale, stale); err != nil {
			t.Fatal(err)
		}
	}
	stamp := time.Now().Add(-ParseCacheMaxAge - time.Hour)
	if err := os.Chtimes(paths[3], stamp, stamp); err != nil {
		t.Fatal(err)
	}
	res, err := CollectParseCache(cacheDir, 0, true)
	if err != nil || res.Removed != 2 || res.Kept != 3 {
		t.Fatalf("dry run: %+v, %v", res, err)
	}
	if _, err := os.Stat(tmp); err != nil {
		t.Fatal("the dry run removed a file")
	}
	res, err = CollectParseCache(cacheDir, 0, false)
	if err != nil || res.Removed != 2 || res.Kept != 3 || res.Bytes != size+1 {
		t.Fatalf("gc: %+v, %v", res, err)
	}
	res, err = CollectParseCache(cacheDir, 5*24*time.Hour+time.Hour, false)
	if err != nil || res.Removed != 1 || res.Kept != 2 {
		t.Fatalf("gc --older-than: %+v, %v", res, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "README")); err != nil {
		t.Fatal("gc removed a file not its own")
	}
	if res, err := CollectParseCache(t.TempDir(), 0, false); err != nil || res != (ParseCacheGCResult{}) {
		t.Fatalf("no parse cache: %+v, %v", res, err)
	}
}

// Entries are encoded while the caller goes on with the pipeline, whose
// expressions evaluating only reads (run with -race).
func TestParseCacheWritesWhileTheASTIsUsed(t *testing.T) {
	env := newEnv(t, cachedPipeline(300))
	env.write("data/a.txt", "alpha\n")
	env.write("data/b.txt", "beta\n")
	dir := useParseCache(t)
	for range 2 {
		p, err := Load(filepath.Join(env.dir, "pipeline.hcl"), LoadOptions{Registry: env.reg, Environ: []string{}, ParseCache: dir})
		if err != nil {
			t.Fatal(err)
		}
		ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"var": cty.ObjectVal(p.Variables)}}
		for _, s := range p.Steps {
			for _, a := range s.attrs {
				_, _ = a.Expr.Value(ctx)
				_ = a.Expr.Variables()
			}
		}
		FlushParseCache()
	}
	if es, _ := parseEntries(dir); len(es) != 1 {
		t.Fatalf("%d entries, want 1", len(es))
	}
}
