package lockfile

import (
	"fmt"
	"sort"
	"strconv"
)

// Mismatch kinds.
const (
	// KindMissing: the step is in the pipeline but not in the lockfile.
	KindMissing = "missing"
	// KindExtra: the step is in the lockfile but not in the pipeline.
	KindExtra = "extra"
	// KindKey: the step's key differs (its inputs, config or implementation
	// version changed).
	KindKey = "key"
	// KindOutput: one output's digest (or size) differs, or the output is
	// on one side only (Locked or Actual is "").
	KindOutput = "output"
)

// Mismatch is one difference between a pipeline's locked and actual
// entries, as `mlbuild run --locked` reports it.
type Mismatch struct {
	Step   string
	Kind   string // KindMissing, KindExtra, KindKey or KindOutput
	Output string // the output's name, for KindOutput
	// Locked and Actual are the differing values: keys for KindKey,
	// digests for KindOutput ("size N" when only the size differs), "" for
	// a value that one side lacks.
	Locked, Actual string
}

func short(d string) string {
	if len(d) > 12 {
		return d[:12]
	}
	return d
}

// String says what differs in one sentence.
func (m Mismatch) String() string {
	switch m.Kind {
	case KindMissing:
		return fmt.Sprintf("step %s is not in the lockfile", m.Step)
	case KindExtra:
		return fmt.Sprintf("step %s is in the lockfile but not in the pipeline", m.Step)
	case KindKey:
		if m.Locked == "" {
			return fmt.Sprintf("step %s has no key in the lockfile (its key is now %s)", m.Step, short(m.Actual))
		}
		return fmt.Sprintf("step %s: key changed from %s (locked) to %s: its inputs, config or implementation version differ",
			m.Step, short(m.Locked), short(m.Actual))
	case KindOutput:
		switch {
		case m.Locked == "":
			return fmt.Sprintf("step %s: output %q (now %s) is not in the lockfile", m.Step, m.Output, short(m.Actual))
		case m.Actual == "":
			return fmt.Sprintf("step %s: output %q is locked (%s) but the step no longer produces it", m.Step, m.Output, short(m.Locked))
		}
		return fmt.Sprintf("step %s: output %q changed from %s (locked) to %s", m.Step, m.Output, short(m.Locked), short(m.Actual))
	}
	return fmt.Sprintf("step %s: %s differs: locked %q, actual %q", m.Step, m.Kind, m.Locked, m.Actual)
}

var kindOrder = map[string]int{KindMissing: 0, KindExtra: 1, KindKey: 2, KindOutput: 3}

// Diff compares a pipeline's locked entries with its actual ones. An
// actual step whose Key is "" or whose Outputs is nil has that part not
// known yet (for instance a step downstream of one not built) and it is not
// compared; an empty non-nil Outputs means the step produced nothing. The
// result is sorted by step, then kind (missing, extra, key, output), then
// output name; it is empty when the two agree.
func Diff(locked, actual map[string]Step) []Mismatch {
	var out []Mismatch
	for addr, a := range actual {
		l, ok := locked[addr]
		if !ok {
			out = append(out, Mismatch{Step: addr, Kind: KindMissing, Actual: a.Key})
			continue
		}
		if a.Key != "" && a.Key != l.Key {
			out = append(out, Mismatch{Step: addr, Kind: KindKey, Locked: l.Key, Actual: a.Key})
		}
		if a.Outputs == nil {
			continue
		}
		for name, ao := range a.Outputs {
			lo, ok := l.Outputs[name]
			switch {
			case !ok:
				out = append(out, Mismatch{Step: addr, Kind: KindOutput, Output: name, Actual: ao.Digest})
			case lo.Digest != ao.Digest:
				out = append(out, Mismatch{Step: addr, Kind: KindOutput, Output: name, Locked: lo.Digest, Actual: ao.Digest})
			case lo.Size != ao.Size:
				out = append(out, Mismatch{Step: addr, Kind: KindOutput, Output: name,
					Locked: "size " + strconv.FormatInt(lo.Size, 10), Actual: "size " + strconv.FormatInt(ao.Size, 10)})
			}
		}
		for name, lo := range l.Outputs {
			if _, ok := a.Outputs[name]; !ok {
				out = append(out, Mismatch{Step: addr, Kind: KindOutput, Output: name, Locked: lo.Digest})
			}
		}
	}
	for addr, l := range locked {
		if _, ok := actual[addr]; !ok {
			out = append(out, Mismatch{Step: addr, Kind: KindExtra, Locked: l.Key})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Step != b.Step {
			return a.Step < b.Step
		}
		if a.Kind != b.Kind {
			return kindOrder[a.Kind] < kindOrder[b.Kind]
		}
		return a.Output < b.Output
	})
	return out
}
