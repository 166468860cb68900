package lockfile

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func hx(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func sampleSteps(tag string) map[string]Step {
	return map[string]Step{
		"csv_clean.onion": {Key: hx("k-onion" + tag), Outputs: map[string]Output{
			"output": {Digest: hx("o-onion" + tag), Size: 12345},
		}},
		"gutenberg_decode.books": {Key: hx("k-books" + tag), Outputs: map[string]Output{
			"texts": {Digest: hx("o-books" + tag), Size: 982211},
			"index": {Digest: hx("o-index" + tag), Size: 0},
		}},
		"dataset.mix": {Key: hx("k-mix" + tag), Outputs: map[string]Output{}},
	}
}

func writeRead(t *testing.T, f *File) (*File, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), Name)
	if err := f.Write(path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	g, err := Read(path)
	if err != nil {
		t.Fatalf("Read: %v\n%s", err, data)
	}
	return g, data
}

func TestMissingFileIsEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), Name)
	f, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Pipeline("x.hcl"); got == nil || len(got) != 0 {
		t.Fatalf("Pipeline of empty file = %v", got)
	}
	// An empty File writes nothing where there was nothing.
	if err := f.Write(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("empty File created %s: %v", path, err)
	}
}

func TestRoundTrip(t *testing.T) {
	f := &File{}
	want := sampleSteps("")
	// Names that need escaping survive the trip.
	want["csv_clean.odd"] = Step{Key: hx("odd"), Outputs: map[string]Output{
		"with space": {Digest: hx("sp"), Size: 1},
		"50%#x\tq":   {Digest: hx("pc"), Size: 2},
	}}
	f.SetPipeline("twain bot.hcl", want)
	g, data := writeRead(t, f)
	if got := g.Pipeline("twain bot.hcl"); !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %#v\nwant %#v\n%s", got, want, data)
	}
	if !bytes.Contains(data, []byte("twain%20bot.hcl csv_clean.odd output 50%25%23x%09q ")) {
		t.Fatalf("escaped names not as documented:\n%s", data)
	}
	for i, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if n := len(strings.Split(line, " ")); n != 4 && n != 6 {
			t.Fatalf("line %d has %d single-space-separated fields: %q", i+1, n, line)
		}
	}
}

func TestExampleFormat(t *testing.T) {
	f := &File{}
	f.SetPipeline("twainbot.hcl", map[string]Step{
		"csv_clean.onion": {Key: hx("k"), Outputs: map[string]Output{"output": {Digest: hx("o"), Size: 12345}}},
	})
	data, err := f.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	want := header + "\n# twainbot.hcl csv_clean.onion\n" +
		"twainbot.hcl csv_clean.onion key " + hx("k") + "\n" +
		"twainbot.hcl csv_clean.onion output output " + hx("o") + " 12345\n"
	if string(data) != want {
		t.Fatalf("got\n%s\nwant\n%s", data, want)
	}
}

func TestDeterministicBytes(t *testing.T) {
	var first []byte
	for i := 0; i < 20; i++ {
		f := &File{}
		// Insertion order varies; map iteration order varies by itself.
		if i%2 == 0 {
			f.SetPipeline("b.hcl", sampleSteps("b"))
			f.SetPipeline("a.hcl", sampleSteps("a"))
		} else {
			f.SetPipeline("a.hcl", sampleSteps("a"))
			f.SetPipeline("b.hcl", sampleSteps("b"))
		}
		data, err := f.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = data
		} else if !bytes.Equal(first, data) {
			t.Fatalf("bytes differ between runs:\n%s\n---\n%s", first, data)
		}
	}
	// Sorted: pipelines, then steps, then outputs; key line before outputs.
	var facts []string
	for _, l := range strings.Split(string(first), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			facts = append(facts, l)
		}
	}
	for i := 1; i < len(facts); i++ {
		if facts[i-1] >= facts[i] {
			t.Fatalf("facts not sorted: %q before %q", facts[i-1], facts[i])
		}
	}
	// Reading back and writing again gives the same bytes, even from a
	// shuffled file with comments and duplicates.
	path := filepath.Join(t.TempDir(), Name)
	shuffled := []string{}
	for i := len(facts) - 1; i >= 0; i-- {
		shuffled = append(shuffled, facts[i], "# a comment", "", facts[i]+"\r")
	}
	if err := os.WriteFile(path, []byte(strings.Join(shuffled, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	g, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	again, err := g.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, again) {
		t.Fatalf("canonical form not restored:\n%s\n---\n%s", first, again)
	}
}

func TestWriteUnchangedDoesNotWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), Name)
	f := &File{}
	f.SetPipeline("a.hcl", sampleSteps(""))
	if err := f.Write(path); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	g, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Write(path); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); !fi.ModTime().Equal(old) {
		t.Fatalf("unchanged Write touched the file: mtime %v, want %v", fi.ModTime(), old)
	}
	// A change is written, and no temporary file is left behind.
	g.SetPipeline("a.hcl", sampleSteps("2"))
	if err := g.Write(path); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.ModTime().Equal(old) {
		t.Fatal("changed Write did not write")
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Fatalf("folder holds %v", ents)
	}
}

func TestMultiplePipelines(t *testing.T) {
	f := &File{}
	f.SetPipeline("a.hcl", sampleSteps("a"))
	f.SetPipeline("b.hcl", sampleSteps("b"))
	g, _ := writeRead(t, f)
	if got := g.Pipelines(); !reflect.DeepEqual(got, []string{"a.hcl", "b.hcl"}) {
		t.Fatalf("Pipelines = %v", got)
	}
	// Replacing one pipeline leaves the other alone.
	g.SetPipeline("a.hcl", map[string]Step{"x.y": {Key: hx("only")}})
	h, _ := writeRead(t, g)
	if got := h.Pipeline("b.hcl"); !reflect.DeepEqual(got, sampleSteps("b")) {
		t.Fatalf("b.hcl changed: %v", got)
	}
	if got := h.Pipeline("a.hcl"); !reflect.DeepEqual(got, map[string]Step{"x.y": {Key: hx("only"), Outputs: map[string]Output{}}}) {
		t.Fatalf("a.hcl = %v", got)
	}
	// An empty set removes the pipeline.
	h.SetPipeline("a.hcl", nil)
	if got := h.Pipelines(); !reflect.DeepEqual(got, []string{"b.hcl"}) {
		t.Fatalf("Pipelines after removal = %v", got)
	}
	// Pipeline returns a copy.
	p := h.Pipeline("b.hcl")
	p["csv_clean.onion"].Outputs["output"] = Output{Digest: hx("mutated")}
	if h.Pipeline("b.hcl")["csv_clean.onion"].Outputs["output"].Digest == hx("mutated") {
		t.Fatal("Pipeline exposes the File's maps")
	}
}

func TestWriteRejectsUnreadableEntries(t *testing.T) {
	for name, steps := range map[string]map[string]Step{
		"bad key":     {"a.b": {Key: "pending:x"}},
		"bad digest":  {"a.b": {Key: hx("k"), Outputs: map[string]Output{"o": {Digest: "xyz"}}}},
		"empty name":  {"a.b": {Key: hx("k"), Outputs: map[string]Output{"": {Digest: hx("o")}}}},
		"negative":    {"a.b": {Key: hx("k"), Outputs: map[string]Output{"o": {Digest: hx("o"), Size: -1}}}},
		"upper hex":   {"a.b": {Key: strings.ToUpper(hx("k"))}},
		"empty step":  {"": {Key: hx("k")}},
		"short key":   {"a.b": {Key: "abc"}},
		"digest only": {"a.b": {Outputs: map[string]Output{"o": {Digest: ""}}}},
	} {
		f := &File{}
		f.SetPipeline("p.hcl", steps)
		if err := f.Write(filepath.Join(t.TempDir(), Name)); err == nil {
			t.Errorf("%s: Write succeeded", name)
		}
	}
}

func TestMalformedLines(t *testing.T) {
	k, d := hx("k"), hx("d")
	cases := []struct {
		line, want string
	}{
		{"p.hcl a.b", "got 2 field(s)"},
		{"p.hcl a.b key", "4 fields"},
		{"p.hcl a.b key " + k + " extra", "4 fields"},
		{"p.hcl a.b key 1234", "not 64 lowercase hex"},
		{"p.hcl a.b key " + strings.ToUpper(k), "not 64 lowercase hex"},
		{"p.hcl a.b output o " + d, "6 fields"},
		{"p.hcl a.b output o nothex 12", "not 64 lowercase hex"},
		{"p.hcl a.b output o " + d + " -1", "not a byte count"},
		{"p.hcl a.b output o " + d + " 12k", "not a byte count"},
		{"p.hcl a.b output o " + d + " 012", "not a byte count"},
		{"p.hcl a.b output o%zz " + d + " 1", "two hex digits"},
		{"p%2.hcl a.b key " + k, "two hex digits"},
		{"p.hcl a.b size 12", "unknown fact \"size\""},
		{"<<<<<<< HEAD", "unresolved merge conflict"},
		{"=======", "unresolved merge conflict"},
		{">>>>>>> feature", "unresolved merge conflict"},
	}
	for _, c := range cases {
		path := filepath.Join(t.TempDir(), Name)
		good := "p.hcl ok.step key " + hx("good")
		body := header + "\n" + good + "\n" + c.line + "\n"
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		lineNo := strings.Count(header, "\n") + 3
		f, err := Read(path)
		if err == nil {
			t.Errorf("%q: no error", c.line)
			continue
		}
		var se *SyntaxError
		if !errors.As(err, &se) || se.Line != lineNo || se.Path != path {
			t.Errorf("%q: error %v does not name line %d", c.line, err, lineNo)
		}
		msg := err.Error()
		for _, w := range []string{path + ":" + strconv.Itoa(lineNo) + ":", c.want, "delete the line or rerun `mlbuild run`"} {
			if !strings.Contains(msg, w) {
				t.Errorf("%q: error %q lacks %q", c.line, msg, w)
			}
		}
		// The well-formed lines are still returned, so that run can
		// regenerate the file.
		if f == nil || f.Pipeline("p.hcl")["ok.step"].Key != hx("good") {
			t.Errorf("%q: well-formed entries lost", c.line)
		}
	}
}

func TestContradictionsAndDuplicates(t *testing.T) {
	path := filepath.Join(t.TempDir(), Name)
	body := strings.Join([]string{
		"p.hcl a.b key " + hx("1"),
		"p.hcl a.b key " + hx("1"), // identical: fine
		"p.hcl a.b output o " + hx("o") + " 3",
		"p.hcl a.b key " + hx("2"), // contradicts line 1
		"p.hcl a.b output o " + hx("o") + " 4",
	}, "\n")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Read(path)
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, w := range []string{":4: key of step a.b contradicts line 1", ":5: output o of step a.b contradicts line 3"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q lacks %q", msg, w)
		}
	}
}

func TestManyErrorsAreCapped(t *testing.T) {
	path := filepath.Join(t.TempDir(), Name)
	if err := os.WriteFile(path, []byte(strings.Repeat("garbage\n", 50)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Read(path)
	if err == nil || strings.Count(err.Error(), "\n") > maxErrors || !strings.Contains(err.Error(), "40 more malformed") {
		t.Fatalf("error = %v", err)
	}
}

// TestMergeFriendly simulates two branches that change different steps of
// a committed lockfile and merges them with git's three-way line merge.
func TestMergeFriendly(t *testing.T) {
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git not installed; skipping the three-way merge test")
	}
	steps := func() map[string]Step {
		m := map[string]Step{}
		for _, a := range []string{"a.one", "b.two", "c.three", "d.four", "e.five"} {
			m[a] = Step{Key: hx("k" + a), Outputs: map[string]Output{
				"out":  {Digest: hx("o" + a), Size: 10},
				"meta": {Digest: hx("m" + a), Size: 20},
			}}
		}
		return m
	}
	change := func(m map[string]Step, addr, tag string) {
		m[addr] = Step{Key: hx(tag + addr), Outputs: map[string]Output{
			"out":  {Digest: hx(tag + "o" + addr), Size: 11},
			"meta": {Digest: hx(tag + "m" + addr), Size: 21},
		}}
	}
	type edit func(f *File)
	setIn := func(pipe string, fn func(map[string]Step)) edit {
		return func(f *File) {
			m := f.Pipeline(pipe)
			fn(m)
			f.SetPipeline(pipe, m)
		}
	}
	cases := []struct {
		name          string
		ours, theirs  edit
		wantConflict  bool
		checkContents bool
	}{
		{"neighbouring steps changed",
			setIn("p.hcl", func(m map[string]Step) { change(m, "b.two", "x") }),
			setIn("p.hcl", func(m map[string]Step) { change(m, "c.three", "y") }), false, true},
		{"first and last steps changed",
			setIn("p.hcl", func(m map[string]Step) { change(m, "a.one", "x") }),
			setIn("p.hcl", func(m map[string]Step) { change(m, "e.five", "y") }), false, true},
		{"step added next to a changed step",
			setIn("p.hcl", func(m map[string]Step) { change(m, "b.two2", "x") }),
			setIn("p.hcl", func(m map[string]Step) { change(m, "c.three", "y"); change(m, "b.two", "y") }), false, true},
		{"step removed next to a changed step",
			setIn("p.hcl", func(m map[string]Step) { delete(m, "c.three") }),
			setIn("p.hcl", func(m map[string]Step) { change(m, "b.two", "y"); change(m, "d.four", "y") }), false, true},
		{"output added to one step, another step changed",
			setIn("p.hcl", func(m map[string]Step) {
				s := m["b.two"]
				s.Outputs["zzz"] = Output{Digest: hx("new"), Size: 1}
				m["b.two"] = s
			}),
			setIn("p.hcl", func(m map[string]Step) { change(m, "c.three", "y") }), false, true},
		{"different pipelines changed",
			setIn("p.hcl", func(m map[string]Step) { change(m, "e.five", "x") }),
			setIn("q.hcl", func(m map[string]Step) { change(m, "a.one", "y") }), false, true},
		{"pipeline added beside a changed one",
			func(f *File) { f.SetPipeline("pp.hcl", steps()) },
			setIn("p.hcl", func(m map[string]Step) { change(m, "e.five", "y") }), false, true},
		{"same step changed differently",
			setIn("p.hcl", func(m map[string]Step) { change(m, "c.three", "x") }),
			setIn("p.hcl", func(m map[string]Step) { change(m, "c.three", "y") }), true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			base := &File{}
			base.SetPipeline("p.hcl", steps())
			base.SetPipeline("q.hcl", steps())
			ours, _ := reload(t, base)
			theirs, _ := reload(t, base)
			c.ours(ours)
			c.theirs(theirs)
			paths := map[string]*File{"base": base, "ours": ours, "theirs": theirs}
			for name, f := range paths {
				if err := f.Write(filepath.Join(dir, name)); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(git, "merge-file", "-L", "ours", "-L", "base", "-L", "theirs",
				filepath.Join(dir, "ours"), filepath.Join(dir, "base"), filepath.Join(dir, "theirs"))
			out, err := cmd.CombinedOutput()
			merged, _ := os.ReadFile(filepath.Join(dir, "ours"))
			conflict := err != nil
			if conflict != c.wantConflict {
				t.Fatalf("conflict = %v (%v %s), want %v; merged:\n%s", conflict, err, out, c.wantConflict, merged)
			}
			if !c.checkContents {
				if _, err := Read(filepath.Join(dir, "ours")); err == nil || !strings.Contains(err.Error(), "unresolved merge conflict") {
					t.Fatalf("conflicted file read without the conflict error: %v", err)
				}
				return
			}
			got, err := Read(filepath.Join(dir, "ours"))
			if err != nil {
				t.Fatalf("merged file: %v\n%s", err, merged)
			}
			// The union: ours's changes applied to theirs.
			want, _ := reload(t, theirs)
			c.ours(want)
			wb, _ := want.Bytes()
			if !bytes.Equal(merged, wb) {
				t.Fatalf("merged file is not the union:\n%s\n--- want\n%s", merged, wb)
			}
			for _, p := range want.Pipelines() {
				if !reflect.DeepEqual(got.Pipeline(p), want.Pipeline(p)) {
					t.Fatalf("pipeline %s differs after merge", p)
				}
			}
		})
	}
}

func reload(t *testing.T, f *File) (*File, []byte) {
	t.Helper()
	return writeRead(t, f)
}
