package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/mlbuild/mlbuild/cache"
)

// Remote is a shared cache the engine consults on a local miss and fills
// after a step runs. The CLI adapts the backends of cache/remote to it.
type Remote interface {
	// Pull fetches the action result for key and every blob it needs into
	// the local store, verified, without recording the action locally; it
	// returns nil when the remote has no such action.
	Pull(ctx context.Context, key string) (*cache.ActionResult, TransferStats, error)
	// Push uploads the result's blobs the remote lacks, then the result.
	Push(ctx context.Context, ar *cache.ActionResult) (TransferStats, error)
	// Unavailable reports whether err means the remote can't be reached,
	// after which the engine stops using it for the rest of the run.
	Unavailable(err error) bool
	// String names the remote, with credentials redacted.
	String() string
}

// TransferStats counts what moved to or from a remote.
type TransferStats struct {
	Uploaded   int   `json:"uploaded"`
	Downloaded int   `json:"downloaded"`
	Skipped    int   `json:"skipped"`
	BytesUp    int64 `json:"bytes_up"`
	BytesDown  int64 `json:"bytes_down"`
}

func (t *TransferStats) add(o TransferStats) {
	t.Uploaded += o.Uploaded
	t.Downloaded += o.Downloaded
	t.Skipped += o.Skipped
	t.BytesUp += o.BytesUp
	t.BytesDown += o.BytesDown
}

// RemoteMode says how a run uses the remote cache.
type RemoteMode string

// Remote modes.
const (
	RemoteReadWrite RemoteMode = "read-write"
	RemoteReadOnly  RemoteMode = "read-only"
)

// remoteState tracks a run's use of the remote: it is dropped, with one
// warning, the first time it can't be reached.
type remoteState struct {
	r        Remote
	write    bool
	disabled atomic.Bool
	warned   sync.Once
	mu       sync.Mutex
	stats    TransferStats
}

// UseRemote makes the engine consult r on local misses and, in read-write
// mode (the default when mode is ""), upload fresh results to it.
func (e *Engine) UseRemote(r Remote, mode RemoteMode) error {
	switch mode {
	case "", RemoteReadWrite, RemoteReadOnly:
	default:
		return fmt.Errorf("remote cache mode %q: use %q or %q", mode, RemoteReadWrite, RemoteReadOnly)
	}
	e.remote = &remoteState{r: r, write: mode != RemoteReadOnly}
	return nil
}

// HasRemote reports whether the engine uses a remote cache.
func (e *Engine) HasRemote() bool { return e.remote != nil }

func (e *Engine) remoteActive() *remoteState {
	rs := e.remote
	if rs == nil || rs.disabled.Load() {
		return nil
	}
	return rs
}

// remoteFailed reports a remote problem without failing the build.
func (e *Engine) remoteFailed(step string, err error) {
	rs := e.remote
	if rs.r.Unavailable(err) || errors.Is(err, context.DeadlineExceeded) {
		rs.warned.Do(func() {
			rs.disabled.Store(true)
			e.log.Warn(fmt.Sprintf("remote cache %s is unreachable (%v); continuing with the local cache only", rs.r, err))
			e.emit(Event{Type: EventWarning, Step: step, Message: fmt.Sprintf("remote cache %s is unreachable; continuing with the local cache only: %v", rs.r, err)})
		})
		return
	}
	e.log.Warn(fmt.Sprintf("remote cache %s: %s: %v", rs.r, step, err))
	e.emit(Event{Type: EventWarning, Step: step, Message: fmt.Sprintf("remote cache %s: %v", rs.r, err)})
}

// pullRemote tries the remote for key; on success the action is recorded
// locally (after all its blobs) and returned.
func (e *Engine) pullRemote(ctx context.Context, s *Step, key string) *cache.ActionResult {
	rs := e.remoteActive()
	if rs == nil {
		return nil
	}
	// The remote applies the same check before it downloads anything.
	check := func(ar *cache.ActionResult) error { return validateResult(s, key, ar) }
	ar, st, err := rs.r.Pull(cache.WithActionCheck(ctx, check), key)
	rs.mu.Lock()
	rs.stats.add(st)
	rs.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			e.remoteFailed(s.Addr, fmt.Errorf("%s: %w (rebuilding it locally)", s.Addr, err))
		}
		return nil
	}
	if ar == nil {
		return nil
	}
	if err := validateResult(s, key, ar); err != nil {
		// Never recorded locally: its blobs, if any came, are
		// unreferenced and go at the next `cache gc`.
		e.warn(s.Addr, fmt.Sprintf("remote cache %s: %s: discarding an invalid result (%v); rebuilding the step locally", rs.r, s.Addr, err))
		return nil
	}
	if err := e.store.PutAction(ar); err != nil {
		e.warn(s.Addr, fmt.Sprintf("%s: recording the result from remote cache %s locally: %v", s.Addr, rs.r, err))
		return nil
	}
	return ar
}

// warn reports a problem that does not fail the run, in the log and as a
// warning event.
func (e *Engine) warn(step, msg string) {
	e.log.Warn(msg)
	e.emit(Event{Type: EventWarning, Step: step, Message: msg})
}

// pushRemote uploads a fresh result when the remote is writable.
func (e *Engine) pushRemote(ctx context.Context, s *Step, ar *cache.ActionResult) {
	rs := e.remoteActive()
	if rs == nil || !rs.write {
		return
	}
	st, err := rs.r.Push(ctx, ar)
	rs.mu.Lock()
	rs.stats.add(st)
	rs.mu.Unlock()
	if err != nil && ctx.Err() == nil {
		e.remoteFailed(s.Addr, fmt.Errorf("upload of %s: %w", s.Addr, err))
	}
}

// Push uploads the cached results of the selected steps (those whose key
// is known and cached locally) to the remote.
func (e *Engine) Push(ctx context.Context) (TransferStats, error) {
	var total TransferStats
	if e.remote == nil {
		return total, errors.New("no remote cache configured: set cache { remote = \"...\" } in the pipeline or MLBUILD_REMOTE")
	}
	plan, err := e.Plan()
	if err != nil {
		return total, err
	}
	var missing []string
	for _, ent := range plan {
		if ent.Action != ActionCached && ent.Action != ActionRestore {
			missing = append(missing, ent.Step)
			continue
		}
		ar, ok, err := e.store.GetAction(ent.Key)
		if err != nil || !ok {
			return total, fmt.Errorf("%s: local result vanished: %v", ent.Step, err)
		}
		st, err := e.remote.r.Push(ctx, ar)
		total.add(st)
		if err != nil {
			return total, fmt.Errorf("push %s to %s: %w", ent.Step, e.remote.r, err)
		}
	}
	if len(missing) > 0 {
		return total, fmt.Errorf("not pushed, not built locally (run them first): %v", missing)
	}
	return total, nil
}

// Pull fetches the selected steps' results for the current inputs from
// the remote into the local cache, in dependency order (a step's key needs
// its dependencies' output digests). It reports the steps it could not
// find.
func (e *Engine) Pull(ctx context.Context) (TransferStats, []string, error) {
	var total TransferStats
	if e.remote == nil {
		return total, nil, errors.New("no remote cache configured: set cache { remote = \"...\" } in the pipeline or MLBUILD_REMOTE")
	}
	known := map[*Step]map[string]cache.OutputRef{}
	var absent []string
	for _, s := range e.selected() {
		comps, complete, err := e.components(s, known)
		if err != nil {
			return total, absent, err
		}
		if !complete {
			absent = append(absent, s.Addr+" (a dependency is missing)")
			continue
		}
		key := Key(comps)
		if ar, ok, err := e.store.GetAction(key); err == nil && ok && validateResult(s, key, ar) == nil {
			if has, _ := e.hasOutputs(ar); has {
				known[s] = ar.Outputs
				continue
			}
		}
		check := func(ar *cache.ActionResult) error { return validateResult(s, key, ar) }
		ar, st, err := e.remote.r.Pull(cache.WithActionCheck(ctx, check), key)
		total.add(st)
		if err != nil {
			return total, absent, fmt.Errorf("pull %s from %s: %w", s.Addr, e.remote.r, err)
		}
		if ar == nil {
			absent = append(absent, s.Addr)
			continue
		}
		if err := validateResult(s, key, ar); err != nil {
			return total, absent, fmt.Errorf("pull %s from %s: invalid result: %w", s.Addr, e.remote.r, err)
		}
		if err := e.store.PutAction(ar); err != nil {
			return total, absent, err
		}
		known[s] = ar.Outputs
	}
	return total, absent, nil
}

func (e *Engine) hasOutputs(ar *cache.ActionResult) (bool, error) {
	for _, o := range ar.Outputs {
		if ok, err := e.store.HasArtifact(o.Digest, o.Dir); err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}
