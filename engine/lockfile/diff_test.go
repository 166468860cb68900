package lockfile

import (
	"reflect"
	"strings"
	"testing"
)

func TestDiffEqualIsEmpty(t *testing.T) {
	if got := Diff(sampleSteps(""), sampleSteps("")); len(got) != 0 {
		t.Fatalf("Diff of equal sets = %v", got)
	}
	if got := Diff(nil, nil); len(got) != 0 {
		t.Fatalf("Diff(nil, nil) = %v", got)
	}
}

func TestDiffCases(t *testing.T) {
	locked := map[string]Step{
		"a.same":    {Key: hx("1"), Outputs: map[string]Output{"o": {Digest: hx("o1"), Size: 1}}},
		"b.key":     {Key: hx("2"), Outputs: map[string]Output{"o": {Digest: hx("o2"), Size: 2}}},
		"c.output":  {Key: hx("3"), Outputs: map[string]Output{"o": {Digest: hx("o3"), Size: 3}, "gone": {Digest: hx("g"), Size: 1}}},
		"d.extra":   {Key: hx("4")},
		"f.size":    {Key: hx("6"), Outputs: map[string]Output{"o": {Digest: hx("o6"), Size: 6}}},
		"g.unknown": {Key: hx("7"), Outputs: map[string]Output{"o": {Digest: hx("o7"), Size: 7}}},
		"h.nokey":   {Outputs: map[string]Output{}},
	}
	actual := map[string]Step{
		"a.same":    {Key: hx("1"), Outputs: map[string]Output{"o": {Digest: hx("o1"), Size: 1}}},
		"b.key":     {Key: hx("2b"), Outputs: map[string]Output{"o": {Digest: hx("o2"), Size: 2}}},
		"c.output":  {Key: hx("3"), Outputs: map[string]Output{"o": {Digest: hx("o3b"), Size: 3}, "new": {Digest: hx("n"), Size: 1}}},
		"e.missing": {Key: hx("5"), Outputs: map[string]Output{}},
		"f.size":    {Key: hx("6"), Outputs: map[string]Output{"o": {Digest: hx("o6"), Size: 60}}},
		// Key and outputs not known yet: nothing to compare.
		"g.unknown": {},
		"h.nokey":   {Key: hx("8"), Outputs: map[string]Output{}},
	}
	got := Diff(locked, actual)
	want := []Mismatch{
		{Step: "b.key", Kind: KindKey, Locked: hx("2"), Actual: hx("2b")},
		{Step: "c.output", Kind: KindOutput, Output: "gone", Locked: hx("g")},
		{Step: "c.output", Kind: KindOutput, Output: "new", Actual: hx("n")},
		{Step: "c.output", Kind: KindOutput, Output: "o", Locked: hx("o3"), Actual: hx("o3b")},
		{Step: "d.extra", Kind: KindExtra, Locked: hx("4")},
		{Step: "e.missing", Kind: KindMissing, Actual: hx("5")},
		{Step: "f.size", Kind: KindOutput, Output: "o", Locked: "size 6", Actual: "size 60"},
		{Step: "h.nokey", Kind: KindKey, Actual: hx("8")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Diff:\n got %+v\nwant %+v", got, want)
	}
	wantStrings := []string{
		"step b.key: key changed from " + hx("2")[:12] + " (locked) to " + hx("2b")[:12] + ": its inputs, config or implementation version differ",
		`step c.output: output "gone" is locked (` + hx("g")[:12] + `) but the step no longer produces it`,
		`step c.output: output "new" (now ` + hx("n")[:12] + `) is not in the lockfile`,
		`step c.output: output "o" changed from ` + hx("o3")[:12] + " (locked) to " + hx("o3b")[:12],
		"step d.extra is in the lockfile but not in the pipeline",
		"step e.missing is not in the lockfile",
		`step f.size: output "o" changed from size 6 (locked) to size 60`,
		"step h.nokey has no key in the lockfile (its key is now " + hx("8")[:12] + ")",
	}
	for i, m := range got {
		if s := m.String(); s != wantStrings[i] {
			t.Errorf("String()\n got %q\nwant %q", s, wantStrings[i])
		}
	}
}

func TestDiffKeyAndOutputsBothReported(t *testing.T) {
	locked := map[string]Step{"a.b": {Key: hx("1"), Outputs: map[string]Output{"o": {Digest: hx("x"), Size: 1}}}}
	actual := map[string]Step{"a.b": {Key: hx("2"), Outputs: map[string]Output{"o": {Digest: hx("y"), Size: 1}}}}
	got := Diff(locked, actual)
	if len(got) != 2 || got[0].Kind != KindKey || got[1].Kind != KindOutput {
		t.Fatalf("Diff = %v", got)
	}
	// The sort is stable across calls (map order varies).
	for i := 0; i < 10; i++ {
		if again := Diff(locked, actual); !reflect.DeepEqual(again, got) {
			t.Fatalf("Diff not deterministic: %v vs %v", again, got)
		}
	}
	if !strings.HasPrefix(got[0].String(), "step a.b: key changed") {
		t.Fatalf("String = %q", got[0].String())
	}
}
