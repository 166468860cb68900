package engine

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/mlbuild/mlbuild/cache"
)

// errLockMismatch marks a difference from the lockfile under --locked.
var errLockMismatch = errors.New("differs from the lockfile")

// checkLockedKey fails a step whose key is not the locked one, naming what
// changed when the locked result is still in the cache.
func (e *Engine) checkLockedKey(s *Step, key string, comps cache.KeyComponents) error {
	if e.opts.Locked == nil {
		return nil
	}
	ls, ok := e.opts.Locked[s.Addr]
	if !ok {
		return fmt.Errorf("%w: the step is not in the lockfile (run without --locked to add it)", errLockMismatch)
	}
	if ls.Key == key {
		return nil
	}
	why := ""
	if ar, ok, err := e.store.GetAction(ls.Key); err == nil && ok {
		var parts []string
		for _, c := range changes(compareComponents(s, comps, ar)) {
			parts = append(parts, c.String())
		}
		if len(parts) > 0 {
			why = ": " + strings.Join(parts, "; ")
		}
	}
	return fmt.Errorf("%w: key %s, locked %s%s", errLockMismatch, shortDigest(key), shortDigest(ls.Key), why)
}

// checkLockedOutputs fails a step whose outputs differ from the locked ones.
func (e *Engine) checkLockedOutputs(s *Step, outs map[string]cache.OutputRef) error {
	if e.opts.Locked == nil {
		return nil
	}
	ls := e.opts.Locked[s.Addr]
	var diffs []string
	names := make([]string, 0, len(outs))
	for n := range outs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		want, ok := ls.Outputs[n]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("output %q is not in the lockfile", n))
		case want != outs[n].Digest:
			diffs = append(diffs, fmt.Sprintf("output %q is sha256:%s, locked sha256:%s", n, shortDigest(outs[n].Digest), shortDigest(want)))
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: same key, different outputs (not reproducible?): %s", errLockMismatch, strings.Join(diffs, "; "))
}
