package engine

import (
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2/hclparse"
)

// parsePieces forces parseFile to cut even small sources, on n cores.
func parsePieces(t *testing.T) {
	t.Helper()
	old, procs := parallelParseMin, runtime.GOMAXPROCS(4)
	parallelParseMin = 0
	t.Cleanup(func() { parallelParseMin = old; runtime.GOMAXPROCS(procs) })
}

// A file parsed in pieces loads to exactly the pipeline of a whole-file
// parse: the same steps, ranges, configs and inputs.
func TestParseInPiecesLoadsTheSamePipeline(t *testing.T) {
	var b strings.Builder
	b.WriteString("variable \"seed\" {\n  default = 3\n}\n\n")
	for i := range 40 {
		fmt.Fprintf(&b, "step \"concat\" \"c%02d\" {\n  sources = [\"data/a.txt\"]\n  seed    = var.seed + %d\n}\n\n", i, i)
	}
	b.WriteString("step \"tree\" \"model\" {\n  input = concat.c39.output\n}\n")
	env := newEnv(t, b.String())
	env.write("data/a.txt", "alpha\n")
	if len(blockCuts([]byte(b.String()), 4)) != 4 {
		t.Fatal("the file is not cut in four")
	}
	whole, err := env.load()
	if err != nil {
		t.Fatal(err)
	}
	parsePieces(t)
	pieces, err := env.load()
	if err != nil {
		t.Fatal(err)
	}
	if len(whole.Steps) != 41 || len(pieces.Steps) != len(whole.Steps) {
		t.Fatalf("%d steps whole, %d in pieces", len(whole.Steps), len(pieces.Steps))
	}
	for i, w := range whole.Steps {
		p := pieces.Steps[i]
		if p.Addr != w.Addr || p.Range != w.Range || !reflect.DeepEqual(p.KeyConfig, w.KeyConfig) || !reflect.DeepEqual(p.Inputs, w.Inputs) {
			t.Fatalf("step %d: %s %v vs %s %v", i, p.Addr, p.Range, w.Addr, w.Range)
		}
	}
}

// Where the scan would cut inside a construct it does not follow (a
// heredoc, a block comment), the piece before fails to parse and the whole
// file is parsed instead: same blocks, and the same diagnostics for a
// broken file.
func TestParseInPiecesFallsBack(t *testing.T) {
	parsePieces(t)
	for name, src := range map[string]string{
		"heredoc": "step \"concat\" \"a\" {\n  note = <<EOT\n}\nstep \"concat\" \"fake\" {\nEOT\n}\n\nstep \"concat\" \"b\" {\n}\n",
		"comment": "step \"concat\" \"a\" {\n}\n/*\n}\nstep \"concat\" \"fake\" {\n}\n*/\nstep \"concat\" \"b\" {\n}\n",
		"nested":  "step \"concat\" \"a\" {\n  sub {\n}\nstep \"concat\" \"inner\" {\n}\n}\n\nstep \"concat\" \"b\" {\n}\n",
	} {
		t.Run(name, func(t *testing.T) {
			if len(blockCuts([]byte(src), 4)) < 2 {
				t.Fatal("the scan makes no cut here: the case tests nothing")
			}
			checkSameParse(t, src)
		})
	}
	// A broken file reports exactly what a whole-file parse reports.
	broken := strings.Repeat("step \"concat\" \"a\" {\n}\n\n", 5) + "step \"concat\" \"b\" {\n  x = [\n}\n\n" + strings.Repeat("step \"concat\" \"c\" {\n}\n\n", 5)
	if len(blockCuts([]byte(broken), 4)) < 2 {
		t.Fatal("the broken file is not cut")
	}
	if !checkSameParse(t, broken) {
		t.Error("the broken file parsed")
	}
	// Pieces that each parse but define the same top-level attribute:
	// the whole file's error.
	dup := "x = 1\nstep \"concat\" \"a\" {\n}\n\nx = 2\nstep \"concat\" \"b\" {\n}\n"
	if len(blockCuts([]byte(dup), 4)) < 2 {
		t.Fatal("the file with a duplicate attribute is not cut")
	}
	if !checkSameParse(t, dup) {
		t.Error("the duplicate attribute parsed")
	}
}

// The bench's generated pipeline parsed in four pieces is, node for node,
// the whole file's parse.
func TestParseInPiecesIsTheWholeFile(t *testing.T) {
	parsePieces(t)
	src := largePipeline(10000, "")
	if len(blockCuts([]byte(src), 4)) != 4 {
		t.Fatal("the file is not cut in four")
	}
	checkSameParse(t, src)
}

// checkSameParse fails the test unless parsing src in pieces gives a
// whole-file parse's diagnostics and, when there are none, its file: the
// same AST, node for node and range for range; it reports whether src had
// errors.
func checkSameParse(t *testing.T, src string) bool {
	t.Helper()
	want, wd := hclparse.NewParser().ParseHCL([]byte(src), "p.hcl")
	got, gd := parseFile(hclparse.NewParser(), []byte(src), "p.hcl")
	if wd.Error() != gd.Error() {
		t.Fatalf("diagnostics %v, want %v", gd, wd)
	}
	if wd.HasErrors() {
		return true
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatal("the file parsed in pieces differs from the whole file's")
	}
	return false
}

// FuzzParseInPieces: for any source, parsing in pieces gives a whole-file
// parse's diagnostics and, when there are none, its AST.
func FuzzParseInPieces(f *testing.F) {
	f.Add("step \"concat\" \"a\" {\n}\n\nstep \"concat\" \"b\" {\n  x = 1\n}\n")
	f.Add("step \"concat\" \"a\" {\n  note = <<EOT\n}\nstep \"concat\" \"fake\" {\nEOT\n}\n\nstep \"concat\" \"b\" {\n}\n")
	f.Add("variable \"v\" {\n}\n/*\n}\nstep \"x\" \"y\" {\n*/\n}\nstep \"concat\" \"b\" {\n}\n")
	f.Add("step \"a\" \"b\" {\n  s = \"${\n}\nstep \"c\" \"d\" {\n}\"\n}\n")
	old := parallelParseMin
	parallelParseMin = 0
	defer func() { parallelParseMin = old }()
	f.Fuzz(func(t *testing.T, src string) { checkSameParse(t, src) })
}

// Steps evaluated on several cores give what a serial evaluation gives:
// the same configs, inputs and keys' configs, the diagnostics in step
// order, and a load record of the same reads (run with -race).
func TestParallelEvaluation(t *testing.T) {
	stampNow = func() time.Time { return time.Now().Add(time.Minute) }
	defer func() { stampNow = time.Now }()
	var b strings.Builder
	for i := range 600 {
		fmt.Fprintf(&b, "step \"concat\" \"c%03d\" {\n  sources = concat([\"data/a.txt\"], glob(\"data/g*.txt\"))\n  seed    = tonumber(file(\"data/seed.txt\")) + %d + (fileexists(\"data/flag\") ? 1 : 0)\n}\n\n", i, i)
	}
	env := newEnv(t, b.String())
	env.write("data/a.txt", "alpha\n")
	env.write("data/g1.txt", "g\n")
	env.write("data/seed.txt", "7")
	old := parallelEvalMin
	t.Cleanup(func() { parallelEvalMin = old })
	parallelEvalMin = 1 << 30
	serial, err := env.load()
	if err != nil {
		t.Fatal(err)
	}
	parallelEvalMin = 100
	procs := runtime.GOMAXPROCS(4)
	defer runtime.GOMAXPROCS(procs)
	par, err := env.load()
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range serial.Steps {
		p := par.Steps[i]
		if p.Addr != s.Addr || !reflect.DeepEqual(p.KeyConfig, s.KeyConfig) || !reflect.DeepEqual(p.Inputs, s.Inputs) || !p.Config["seed"].RawEquals(s.Config["seed"]) {
			t.Fatalf("step %s differs", s.Addr)
		}
	}
	sr, pr := serial.loadRecord(), par.loadRecord()
	if sr == nil || pr == nil || len(sr.Files) != len(pr.Files) || len(sr.Globs) != len(pr.Globs) || len(sr.Exists) != len(pr.Exists) {
		t.Fatalf("load records differ: %v vs %v", sr, pr)
	}
	// Broken steps report in step order.
	env.write("pipeline.hcl", b.String()+"step \"concat\" \"bad1\" {\n  sources = [\"data/none1\"]\n}\n\nstep \"concat\" \"bad2\" {\n  sources = [\"data/none2\"]\n}\n")
	_, err = env.load()
	if err == nil || strings.Index(err.Error(), "none1") > strings.Index(err.Error(), "none2") {
		t.Errorf("diagnostics out of order: %v", err)
	}
}

// largePipeline is the source of the bench's generated pipeline of n steps
// (bench/gen.go: 99 csv_clean steps per 100, each over in/NNNNN.csv with
// prefix before "in/", and a split merging them).
func largePipeline(n int, prefix string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Generated by mlbuild's bench: %d steps, %d csv_clean in groups of %d, each group merged by a split.\n\n", n, n/100*99, 99)
	file := 0
	for g := range n / 100 {
		var outs []string
		for range 99 {
			file++
			fmt.Fprintf(&b, "step \"csv_clean\" \"c%05d\" {\n  source = [%q]\n}\n\n", file, fmt.Sprintf("%sin/%05d.csv", prefix, file))
			outs = append(outs, fmt.Sprintf("csv_clean.c%05d.output", file))
		}
		fmt.Fprintf(&b, "step \"split\" \"s%03d\" {\n  inputs = [\n    %s,\n  ]\n}\n\n", g+1, strings.Join(outs, ",\n    "))
	}
	return b.String()
}
