package engine

import (
	"fmt"
	"sort"

	"github.com/mlbuild/mlbuild/cache"
)

// validateResult checks an action result, from the local cache or a
// remote, against what the step's kind produces: it must be for key, and
// have exactly the kind's declared outputs (steps.Schema.Outputs), each at
// its declared path, a file or a directory as declared, with a SHA-256
// digest and a size that is not negative. A result with an output renamed,
// added, missing, moved (to a nested, absolute or ".." path, or to
// another output's path) or of the wrong type is not one this step could
// have produced: installing it would break the steps that read its outputs.
func validateResult(s *Step, key string, ar *cache.ActionResult) error {
	if ar.Key != key {
		return fmt.Errorf("the result is for key %s, not %s", shortDigest(ar.Key), shortDigest(key))
	}
	declared := make(map[string]bool, len(s.Schema.Outputs))
	for _, o := range s.Schema.Outputs {
		declared[o.Name] = true
		got, ok := ar.Outputs[o.Name]
		if !ok {
			return fmt.Errorf("the result lacks output %q", o.Name)
		}
		if got.Path != o.Path {
			return fmt.Errorf("the result's output %q is at %q, not at %q where kind %s writes it", o.Name, got.Path, o.Path, s.Kind)
		}
		if got.Dir != o.Dir {
			want, is := "a file", "a directory"
			if o.Dir {
				want, is = is, want
			}
			return fmt.Errorf("the result's output %q is %s, but kind %s writes %s", o.Name, is, s.Kind, want)
		}
		if !validHex(got.Digest) {
			return fmt.Errorf("the result's output %q has a bad digest %q", o.Name, got.Digest)
		}
		if got.Size < 0 {
			return fmt.Errorf("the result's output %q has a negative size", o.Name)
		}
	}
	var extra []string
	for name := range ar.Outputs {
		if !declared[name] {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return fmt.Errorf("the result has outputs kind %s does not produce: %q", s.Kind, extra)
	}
	return nil
}

func validHex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
