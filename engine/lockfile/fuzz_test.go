package lockfile

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the lockfile parser. Every error must
// be a *SyntaxError naming a line of the input (several joined); whatever
// facts were read must encode (Bytes) and that canonical encoding must
// read back with no error to the same facts and encode to the same bytes.
// A file compared with itself has no mismatches.
func FuzzParse(f *testing.F) {
	if real, err := os.ReadFile("../../pipelines/mlbuild.lock"); err == nil {
		f.Add(real)
	}
	k, d := strings.Repeat("3f", 32), strings.Repeat("0d", 32)
	for _, s := range []string{
		header,
		header + "\n# twainbot.hcl csv_clean.onion\ntwainbot.hcl csv_clean.onion key " + k + "\ntwainbot.hcl csv_clean.onion output output " + d + " 12345\n",
		"a%20b.hcl s%25t.x output n%23o " + d + " 0\na%20b.hcl s%25t.x key " + k + "\n",
		"p s key " + k + "\np s key " + d + "\n",
		"p s output o " + d + " 1\np s output o " + d + " 2\np s output o " + d + " 1\n",
		"<<<<<<< HEAD\np s key " + k + "\n=======\np s key " + d + "\n>>>>>>> branch\n",
		"p s output o " + d + " 01\np s output o " + d + " -1\np s output o " + d + " +1\n",
		"p%4 s key " + k + "\np% s key " + k + "\np%zz s key " + k + "\n",
		"p s frob x\np s\n\tp s key " + k + " \r\n",
		"p%C2%A0q s key " + k + "\n",
		"p%0A s key " + k + "\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lf := &File{pipelines: map[string]map[string]Step{}}
		err := lf.parse("mlbuild.lock", data)
		lines := bytes.Count(data, []byte("\n")) + 1
		for _, e := range unjoin(err) {
			var se *SyntaxError
			if !errors.As(e, &se) {
				if strings.Contains(e.Error(), "more malformed line") {
					continue
				}
				t.Fatalf("error is not a *SyntaxError: %v", e)
			}
			if se.Path != "mlbuild.lock" || se.Line < 1 || se.Line > lines {
				t.Fatalf("syntax error at %s:%d of a %d-line file", se.Path, se.Line, lines)
			}
		}
		b, err := lf.Bytes()
		if err != nil {
			t.Fatalf("facts read from a lockfile do not encode: %v", err)
		}
		if !bytes.HasPrefix(b, []byte(header)) {
			t.Fatal("canonical encoding lacks the header")
		}
		back := &File{pipelines: map[string]map[string]Step{}}
		if err := back.parse("mlbuild.lock", b); err != nil {
			t.Fatalf("canonical encoding does not read back: %v\n%s", err, b)
		}
		if !sameFacts(lf, back) {
			t.Fatalf("round trip changed the facts:\n%#v\n%#v\n%s", lf.pipelines, back.pipelines, b)
		}
		b2, err := back.Bytes()
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("canonical encoding is not stable (%v):\n%s\n%s", err, b, b2)
		}
		for _, p := range lf.Pipelines() {
			if ms := Diff(lf.Pipeline(p), back.Pipeline(p)); len(ms) != 0 {
				t.Fatalf("pipeline %q differs from its own round trip: %v", p, ms)
			}
		}
	})
}

// unjoin lists the errors errors.Join combined (err itself otherwise).
func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// sameFacts compares two files' facts, ignoring steps with no facts (Bytes
// leaves them out).
func sameFacts(a, b *File) bool {
	norm := func(f *File) map[string]map[string]Step {
		out := map[string]map[string]Step{}
		for p, steps := range f.pipelines {
			for addr, s := range steps {
				if s.Key == "" && len(s.Outputs) == 0 {
					continue
				}
				if out[p] == nil {
					out[p] = map[string]Step{}
				}
				out[p][addr] = s
			}
		}
		return out
	}
	return reflect.DeepEqual(norm(a), norm(b))
}
