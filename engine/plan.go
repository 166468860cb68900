package engine

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/mlbuild/mlbuild/cache"
)

// Action is what a run would do with a step.
type Action string

// Plan actions.
const (
	ActionRun     Action = "run"     // the key has no cached result
	ActionCached  Action = "cached"  // up to date; build/ holds the outputs
	ActionRestore Action = "restore" // cached; outputs are written back into build/
	// ActionMaybe: a dependency must run first; this step runs only if
	// that changes the dependency's output (early cutoff).
	ActionMaybe Action = "maybe"
)

// PlanEntry is one step of a plan.
type PlanEntry struct {
	Step   string `json:"step"`
	Action Action `json:"action"`
	// Key is empty while a dependency must run first.
	Key     string   `json:"key,omitempty"`
	Reasons []string `json:"reasons,omitempty"`
	// Changes are the differences from the step's last result in this
	// pipeline (config values, input digests, implementation version).
	Changes []Change `json:"changes,omitempty"`
}

// Plan says, without running anything, what a run would do and why.
func (e *Engine) Plan() ([]PlanEntry, error) {
	rebuild := map[string]bool{}
	for _, a := range e.opts.Rebuild {
		rebuild[a] = true
	}
	known := map[*Step]map[string]cache.OutputRef{}
	var plan []PlanEntry
	for _, s := range e.selected() {
		comps, complete, err := e.components(s, known)
		if err != nil {
			return nil, err
		}
		ent := PlanEntry{Step: s.Addr}
		prev := e.previous(s)
		ent.Changes = changes(compareComponents(s, comps, prev))
		if !complete {
			ent.Action = ActionMaybe
			for _, d := range s.Deps {
				if _, ok := known[d]; !ok {
					ent.Reasons = append(ent.Reasons, fmt.Sprintf("waits for %s, which must run first; reruns only if its output changes", d.Addr))
				}
			}
			if len(ent.Changes) > 0 {
				ent.Action = ActionRun
			}
			for _, c := range ent.Changes {
				ent.Reasons = append(ent.Reasons, c.String())
			}
			plan = append(plan, ent)
			continue
		}
		ent.Key = Key(comps)
		ar, ok, err := e.store.GetAction(ent.Key)
		if err != nil {
			return nil, err
		}
		if ok {
			if verr := validateResult(s, ent.Key, ar); verr != nil {
				// A run discards it and rebuilds (see build): say so.
				ent.Action = ActionRun
				ent.Reasons = []string{fmt.Sprintf("its cached result is invalid (%v): a run discards it and rebuilds the step", verr)}
				ent.Changes = nil
				plan = append(plan, ent)
				continue
			}
		}
		inCAS := ok
		if ok {
			for _, o := range ar.Outputs {
				if has, err := e.store.HasArtifact(o.Digest, o.Dir); err != nil {
					return nil, err
				} else if !has {
					inCAS = false
				}
			}
		}
		switch {
		case rebuild[s.Addr]:
			ent.Action = ActionRun
			ent.Reasons = []string{"forced by --rebuild"}
		case ok && e.materialized(s, ar):
			ent.Action = ActionCached
			ent.Changes = nil
			known[s] = ar.Outputs
		case ok && inCAS:
			ent.Action = ActionRestore
			ent.Reasons = []string{"outputs missing from " + BuildDirName + "/" + s.Addr + ": restored from the cache"}
			ent.Changes = nil
			known[s] = ar.Outputs
		case ok:
			ent.Action = ActionRun
			ent.Reasons = []string{"output missing from the cache"}
			ent.Changes = nil
		case prev == nil:
			ent.Action = ActionRun
			ent.Reasons = []string{"new: never built in this workspace"}
		default:
			ent.Action = ActionRun
			for _, c := range ent.Changes {
				ent.Reasons = append(ent.Reasons, c.String())
			}
			if len(ent.Reasons) == 0 {
				ent.Reasons = []string{"its previous result is no longer in the cache"}
			}
		}
		plan = append(plan, ent)
	}
	return plan, nil
}

// previous is the action result of the step's latest build in this
// pipeline (nil when there is none or it left the cache).
func (e *Engine) previous(s *Step) *cache.ActionResult {
	head, ok, err := e.store.Head(e.pipelineID, s.Addr)
	if err != nil || !ok {
		return nil
	}
	ar, ok, err := e.store.GetAction(head.Key)
	if err != nil || !ok {
		return nil
	}
	return ar
}

// materialized reports whether build/KIND.NAME holds the result's outputs.
func (e *Engine) materialized(s *Step, ar *cache.ActionResult) bool {
	final := filepath.Join(e.buildDir, s.Addr)
	for _, o := range ar.Outputs {
		a, err := e.hasher.Digest(filepath.Join(final, filepath.FromSlash(o.Path)))
		if err != nil || a.Digest != o.Digest {
			return false
		}
	}
	return true
}

// Explanation lays a step's key components beside those of its last
// cached run and names what changed.
type Explanation struct {
	Step string `json:"step"`
	// Key is the step's current key (empty while a dependency must run
	// first).
	Key string `json:"key,omitempty"`
	// Action is what a run would do now.
	Action Action `json:"action"`
	// ComparedWith is the key of the run the components are compared
	// with, and Against says which run it is.
	ComparedWith string   `json:"compared_with,omitempty"`
	Against      string   `json:"against"`
	Rows         []Row    `json:"components"`
	Changes      []Change `json:"changes"`
	Reasons      []string `json:"reasons,omitempty"`
	// Pending are the upstream steps whose outputs are not known yet
	// because they must run first: whether this step reruns depends on
	// whether their outputs change.
	Pending []string `json:"pending,omitempty"`
	// Conclusion says in one sentence what the comparison means when no
	// component changed ("no component changed", or that the step reruns
	// only if a pending upstream's output changes); empty when Changes
	// lists changes.
	Conclusion string `json:"conclusion,omitempty"`
}

// Explain compares the step's key components now with those of its last
// cached run; when the step is already up to date it compares its last
// result with the one it replaced, so it says what the last rebuild
// changed.
func (e *Engine) Explain(addr string) (*Explanation, error) {
	s, ok := e.p.byAddr[addr]
	if !ok {
		return nil, fmt.Errorf("no step %s in %s%s", addr, displayName(e.p.File), suggest(addr, e.p.addrs()))
	}
	plan, err := e.Plan()
	if err != nil {
		return nil, err
	}
	known := map[*Step]map[string]cache.OutputRef{}
	var ent PlanEntry
	for _, p := range plan {
		st := e.p.byAddr[p.Step]
		if p.Action == ActionCached || p.Action == ActionRestore {
			if ar, ok, _ := e.store.GetAction(p.Key); ok {
				known[st] = ar.Outputs
			}
		}
		if p.Step == addr {
			ent = p
		}
	}
	comps, _, err := e.components(s, known)
	if err != nil {
		return nil, err
	}
	ex := &Explanation{Step: addr, Key: ent.Key, Action: ent.Action, Reasons: ent.Reasons}
	head, hasHead, err := e.store.Head(e.pipelineID, addr)
	if err != nil {
		return nil, err
	}
	cmpKey := head.Key
	ex.Against = "the step's last cached run"
	if hasHead && head.Key == ent.Key && head.Prev != "" {
		cmpKey = head.Prev
		ex.Against = "the run before the last (the step is up to date; these are the changes that made it rebuild)"
	}
	var prev *cache.ActionResult
	if hasHead {
		if ar, ok, err := e.store.GetAction(cmpKey); err != nil {
			return nil, err
		} else if ok {
			prev = ar
			ex.ComparedWith = cmpKey
		} else {
			ex.Against = "nothing: the step's last result is no longer in the cache"
		}
	} else {
		ex.Against = "nothing: the step was never built in this workspace"
	}
	ex.Rows = compareComponents(s, comps, prev)
	ex.Changes = changes(ex.Rows)
	for _, d := range s.Deps {
		if _, ok := known[d]; !ok {
			ex.Pending = append(ex.Pending, d.Addr)
		}
	}
	switch {
	case len(ex.Changes) > 0:
	case len(ex.Pending) > 0:
		ex.Conclusion = fmt.Sprintf("no known component changed; %s reruns only if the output of %s changes (it must run first)", addr, orList(ex.Pending))
	default:
		ex.Conclusion = "no component changed"
	}
	return ex, nil
}

// orList joins names as "a", "a or b", "a, b or c".
func orList(names []string) string {
	if len(names) <= 1 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
