package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"time"
)

// InputRef is one input artifact of a step as recorded in its key.
type InputRef struct {
	// Name is the artifact's base name (never an absolute path).
	Name   string `json:"name"`
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	Dir    bool   `json:"dir,omitempty"`
}

// OutputRef is one output artifact of a step.
type OutputRef struct {
	// Path is the artifact's path under the step's output folder.
	Path   string `json:"path"`
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	Dir    bool   `json:"dir,omitempty"`
}

// KeyComponents are everything a step's key is computed from; the key is
// the SHA-256 of their canonical JSON encoding.
type KeyComponents struct {
	Kind    string `json:"kind"`
	Version string `json:"version"`
	// Config maps each keyed attribute to its canonical JSON value.
	Config map[string]json.RawMessage `json:"config"`
	// Inputs maps each input role to its artifacts, in pipeline order.
	Inputs map[string][]InputRef `json:"inputs"`
}

// Provenance records how an action's outputs were produced. None of it
// enters the key.
type Provenance struct {
	MlbuildVersion string              `json:"mlbuild_version"`
	GoVersion      string              `json:"go_version"`
	Device         string              `json:"device"`
	Host           string              `json:"host,omitempty"`
	Started        time.Time           `json:"started"`
	Seconds        float64             `json:"seconds"`
	InputPaths     map[string][]string `json:"input_paths,omitempty"`
}

// ActionResult is an action-cache entry: a step key's outputs, the
// components the key came from and how the outputs were produced.
type ActionResult struct {
	Key        string               `json:"key"`
	Step       string               `json:"step"`
	Components KeyComponents        `json:"components"`
	Outputs    map[string]OutputRef `json:"outputs"`
	Provenance Provenance           `json:"provenance"`
	LastUsed   time.Time            `json:"last_used"`
}

// GetAction returns the action-cache entry for key.
func (s *Store) GetAction(key string) (*ActionResult, bool, error) {
	var ar ActionResult
	ok, err := s.getJSON(pfxAction+key, &ar)
	if !ok || err != nil {
		return nil, false, err
	}
	return &ar, true, nil
}

// PutAction commits an action-cache entry. Callers store every output blob
// first, so an entry never names a blob that is not whole.
func (s *Store) PutAction(ar *ActionResult) error {
	if ar.LastUsed.IsZero() {
		ar.LastUsed = time.Now().UTC()
	}
	return s.putJSON(pfxAction+ar.Key, ar)
}

// TouchAction records a use of the entry (for age-based gc), at most once
// an hour so that no-op runs stay write-free.
func (s *Store) TouchAction(ar *ActionResult) error {
	now := time.Now().UTC()
	if now.Sub(ar.LastUsed) < time.Hour {
		return nil
	}
	ar.LastUsed = now
	return s.putJSON(pfxAction+ar.Key, ar)
}

// RunRecord is a pipeline's latest successful run: the roots that gc keeps.
type RunRecord struct {
	Pipeline string            `json:"pipeline"`
	Finished time.Time         `json:"finished"`
	Keys     map[string]string `json:"keys"` // step -> key
}

// PutRun records a pipeline's successful run, replacing the previous one.
// A run of some targets only is merged into the previous record so that
// the other steps' results stay protected.
// A run whose keys are all unchanged writes nothing.
func (s *Store) PutRun(rec RunRecord, partial bool) error {
	var old RunRecord
	ok, err := s.getJSON(pfxRun+rec.Pipeline, &old)
	if err != nil {
		return err
	}
	if ok && partial {
		for step, key := range old.Keys {
			if _, set := rec.Keys[step]; !set {
				rec.Keys[step] = key
			}
		}
	}
	if ok && maps.Equal(old.Keys, rec.Keys) {
		return nil
	}
	return s.putJSON(pfxRun+rec.Pipeline, rec)
}

// Runs returns every pipeline's latest successful run.
func (s *Store) Runs() ([]RunRecord, error) {
	var out []RunRecord
	err := s.scan(pfxRun, true, func(_ string, val []byte) error {
		var r RunRecord
		if err := json.Unmarshal(val, &r); err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

// HeadRecord is the key of a step's latest result in a pipeline and the key
// it replaced, so that explain can say what changed in the last rebuild.
type HeadRecord struct {
	Key  string `json:"key"`
	Prev string `json:"prev,omitempty"`
}

// SetHead records key as the latest result of step in pipeline, keeping the
// key it replaces as Prev. Setting the same key again writes nothing, so
// no-op runs stay write-free.
func (s *Store) SetHead(pipeline, step, key string) error {
	old, ok, err := s.Head(pipeline, step)
	if err != nil {
		return err
	}
	if ok && old.Key == key {
		return nil
	}
	return s.putJSON(pfxHead+pipeline+"\x00"+step, HeadRecord{Key: key, Prev: old.Key})
}

// Head returns step's latest result in pipeline.
func (s *Store) Head(pipeline, step string) (HeadRecord, bool, error) {
	var h HeadRecord
	ok, err := s.getJSON(pfxHead+pipeline+"\x00"+step, &h)
	return h, ok, err
}

// DeleteAction removes the action-cache entry for key (a result found
// invalid); the blobs it referenced stay until `cache gc` finds them
// unreferenced.
func (s *Store) DeleteAction(key string) error {
	if err := s.delete(pfxAction + key); err != nil {
		return fmt.Errorf("cache delete action %s: %w", short(key), err)
	}
	return nil
}

type actionCheckKey struct{}

// WithActionCheck returns a context that carries check, which code that
// fetches an action result from elsewhere (a remote cache's Pull) applies
// with CheckAction before it transfers anything the result names.
func WithActionCheck(ctx context.Context, check func(*ActionResult) error) context.Context {
	return context.WithValue(ctx, actionCheckKey{}, check)
}

// CheckAction applies the check WithActionCheck put in ctx (none: nil).
func CheckAction(ctx context.Context, ar *ActionResult) error {
	if check, ok := ctx.Value(actionCheckKey{}).(func(*ActionResult) error); ok && check != nil {
		return check(ar)
	}
	return nil
}
