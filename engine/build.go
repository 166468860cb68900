package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/mlbuild/mlbuild/cache"
	"github.com/mlbuild/mlbuild/internal/version"
	"github.com/mlbuild/mlbuild/steps"
)

// Status is what happened to a step in a run.
type Status string

// Step statuses.
const (
	StatusRan     Status = "ran"
	StatusCached  Status = "cached"
	StatusFailed  Status = "failed"
	StatusSkipped Status = "skipped" // not started: a dependency failed or the run stopped
)

// EventType tells which fields of an Event are set.
type EventType string

// Event types.
const (
	EventStarted  EventType = "started"  // a step began to run (Step)
	EventProgress EventType = "progress" // a running step reported progress (Step, Progress)
	EventStep     EventType = "step"     // a step finished (Result)
	EventSummary  EventType = "summary"  // the run finished (Summary)
	EventWarning  EventType = "warning"  // something went wrong that does not fail the run (Message)
	EventOutput   EventType = "output"   // a running step's program printed a line (Step, Stream, Message)
)

// Event is one thing a run reports.
type Event struct {
	Type     EventType
	Step     string
	Progress *Progress
	Result   *StepResult
	Summary  *Summary
	Message  string
	// Stream is "stdout" or "stderr" for an EventOutput.
	Stream string
}

// Progress is a running step's report of its progress.
type Progress struct {
	Done    float64 `json:"done"`
	Total   float64 `json:"total"`
	Message string  `json:"message,omitempty"`
}

// OutputInfo is one output of a finished step.
type OutputInfo struct {
	Path   string `json:"path"` // workspace-relative, slash-separated
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	Dir    bool   `json:"dir,omitempty"`
}

// StepResult is how one step ended.
type StepResult struct {
	Step    string                `json:"step"`
	Status  Status                `json:"status"`
	Key     string                `json:"key,omitempty"`
	Outputs map[string]OutputInfo `json:"outputs,omitempty"`
	Seconds float64               `json:"seconds"`
	// Reason says why a step ran (or was skipped).
	Reason string `json:"reason,omitempty"`
	// Restored is set when cached outputs were written back into build/.
	Restored bool `json:"restored,omitempty"`
	// Source is "remote" for a result fetched from the remote cache.
	Source string `json:"source,omitempty"`
	Error  string `json:"error,omitempty"`
	err    error
}

// Summary counts a run's outcomes.
type Summary struct {
	Ran     int     `json:"ran"`
	Cached  int     `json:"cached"`
	Failed  int     `json:"failed"`
	Skipped int     `json:"skipped"`
	Seconds float64 `json:"seconds"`
	// BytesHashed is how much input content was read to compute keys.
	BytesHashed int64 `json:"bytes_hashed"`
	// Remote counts transfers to and from the remote cache.
	Remote *TransferStats `json:"remote,omitempty"`
	Steps  []*StepResult  `json:"-"`
	// Stamp identifies the no-op stamp that records these results: the
	// one a run wrote, or the one a no-op was answered from ("" when
	// none). Two summaries with the same Stamp have the same results, so
	// a caller may keep what it derived from one (the lockfile it wrote)
	// for the next.
	Stamp string `json:"-"`
}

func (e *Engine) emit(ev Event) {
	if e.opts.OnEvent == nil {
		return
	}
	e.eventMu.Lock()
	defer e.eventMu.Unlock()
	e.opts.OnEvent(ev)
}

// tmpDir is where steps write before their outputs are moved into place.
func (e *Engine) tmpDir() string { return filepath.Join(e.buildDir, ".tmp") }

// Run builds the selected steps, in parallel where the graph allows.
// It returns the summary and, when any step failed, an error naming each
// failed step and its cause.
func (e *Engine) Run(ctx context.Context) (*Summary, error) {
	if e.wsLock == nil {
		return nil, errors.New("engine opened with ReadOnly cannot run steps")
	}
	start := time.Now()
	// The workspace lock is held, so no other mlbuild uses this
	// workspace's temporary folder: whatever is there was left by a killed
	// run.
	if err := os.RemoveAll(e.tmpDir()); err != nil {
		return nil, fmt.Errorf("clean %s: %w", e.tmpDir(), err)
	}
	defer os.RemoveAll(e.tmpDir())
	if err := os.MkdirAll(e.tmpDir(), 0o755); err != nil {
		return nil, fmt.Errorf("create build folder: %w", err)
	}
	if err := e.dropStamp(); err != nil {
		return nil, err
	}
	// Jobs left when the run ends (a step failed, the run was cancelled)
	// are cancelled.
	defer e.cancelExecutors()
	if err := e.submitAhead(ctx); err != nil {
		return nil, err
	}

	sel := e.selected()
	type state struct {
		done chan struct{}
		res  *StepResult
		outs map[string]cache.OutputRef
	}
	states := make(map[*Step]*state, len(sel))
	for _, s := range sel {
		states[s] = &state{done: make(chan struct{})}
	}
	rebuild := map[string]bool{}
	for _, a := range e.opts.Rebuild {
		rebuild[a] = true
	}
	sem := semaphore.NewWeighted(int64(e.opts.Jobs))
	var heavy sync.Mutex
	var failed atomic.Bool
	var wg sync.WaitGroup
	for _, s := range sel {
		st := states[s]
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(st.done)
			upstream := make(map[*Step]map[string]cache.OutputRef, len(s.Deps))
			for _, d := range s.Deps {
				ds := states[d]
				<-ds.done
				if ds.res.Status == StatusFailed || ds.res.Status == StatusSkipped {
					st.res = &StepResult{Step: s.Addr, Status: StatusSkipped, Reason: "dependency " + d.Addr + " did not build"}
					e.emit(Event{Type: EventStep, Step: s.Addr, Result: st.res})
					return
				}
				upstream[d] = ds.outs
			}
			skip := func(why string) {
				st.res = &StepResult{Step: s.Addr, Status: StatusSkipped, Reason: why}
				e.emit(Event{Type: EventStep, Step: s.Addr, Result: st.res})
			}
			if failed.Load() {
				skip("not started: another step failed")
				return
			}
			// A step another executor runs takes nothing of this
			// machine but its download.
			if e.executorOf(s) == nil {
				if s.Schema.Heavy {
					heavy.Lock()
					defer heavy.Unlock()
				}
				// A step that says it needs several cores reserves
				// them (at most -j, so it can run at all).
				weight := int64(min(max(s.Resources.CPUs, 1), e.opts.Jobs))
				if err := sem.Acquire(ctx, weight); err != nil {
					skip("not started: the run was interrupted")
					return
				}
				defer sem.Release(weight)
			}
			if failed.Load() {
				skip("not started: another step failed")
				return
			}
			st.res, st.outs = e.build(ctx, s, upstream, rebuild[s.Addr])
			if st.res.Status == StatusFailed {
				failed.Store(true)
			}
			e.emit(Event{Type: EventStep, Step: s.Addr, Result: st.res})
		}()
	}
	wg.Wait()

	sum := &Summary{}
	var errs []error
	keys := map[string]string{}
	for _, s := range sel {
		r := states[s].res
		sum.Steps = append(sum.Steps, r)
		switch r.Status {
		case StatusRan:
			sum.Ran++
		case StatusCached:
			sum.Cached++
		case StatusFailed:
			sum.Failed++
			errs = append(errs, fmt.Errorf("%s failed: %w", s.Addr, r.err))
		case StatusSkipped:
			sum.Skipped++
		}
		if r.Key != "" && r.Status != StatusFailed {
			keys[s.Addr] = r.Key
			if err := e.store.SetHead(e.pipelineID, s.Addr, r.Key); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) == 0 && sum.Skipped == 0 {
		rec := cache.RunRecord{Pipeline: e.pipelineID, Finished: time.Now().UTC(), Keys: keys}
		if err := e.store.PutRun(rec, len(e.opts.Targets) > 0); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 && sum.Skipped > 0 {
		errs = append(errs, ctxErrOr(ctx, errors.New("some steps did not run")))
	}
	if len(errs) == 0 && len(e.opts.Targets) == 0 {
		// Every step of the pipeline is built: checkpoints left by
		// interrupted runs of other configurations can no longer be used.
		if err := os.RemoveAll(filepath.Join(e.buildDir, ".state")); err != nil {
			e.log.Warn("cannot remove stale checkpoints", "err", err)
		}
	}
	if len(errs) == 0 && len(e.opts.Targets) == 0 && len(e.opts.Rebuild) == 0 {
		tok, err := e.writeStamp(sum)
		if err != nil {
			e.log.Warn("could not record the no-op stamp (the next no-op run will be slower)", "err", err)
		}
		sum.Stamp = tok
	}
	if !e.opts.Start.IsZero() {
		start = e.opts.Start
	}
	sum.Seconds = time.Since(start).Seconds()
	sum.BytesHashed = e.hasher.BytesRead()
	if e.remote != nil {
		st := e.remote.stats
		sum.Remote = &st
	}
	e.emit(Event{Type: EventSummary, Summary: sum})
	return sum, errors.Join(errs...)
}

func ctxErrOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
	return err
}

// build brings one step up to date: from the cache when its key has a
// result, else by running it.
func (e *Engine) build(ctx context.Context, s *Step, upstream map[*Step]map[string]cache.OutputRef, force bool) (*StepResult, map[string]cache.OutputRef) {
	start := time.Now()
	res := &StepResult{Step: s.Addr}
	fail := func(err error) (*StepResult, map[string]cache.OutputRef) {
		res.Status, res.err, res.Error = StatusFailed, err, err.Error()
		res.Seconds = time.Since(start).Seconds()
		return res, nil
	}
	comps, _, err := e.components(s, upstream)
	if err != nil {
		return fail(err)
	}
	res.Key = Key(comps)
	if err := e.checkLockedKey(s, res.Key, comps); err != nil {
		return fail(err)
	}
	cached := func(ar *cache.ActionResult, source string) (*StepResult, map[string]cache.OutputRef, error) {
		restored, err := e.restore(s, ar)
		if err != nil {
			return nil, nil, err
		}
		_ = e.store.TouchAction(ar)
		if err := e.checkLockedOutputs(s, ar.Outputs); err != nil {
			return nil, nil, err
		}
		res.Status, res.Restored, res.Source = StatusCached, restored, source
		res.Outputs = e.outputInfo(s, ar.Outputs)
		res.Seconds = time.Since(start).Seconds()
		return res, ar.Outputs, nil
	}
	if !force {
		ar, ok, err := e.store.GetAction(res.Key)
		if err != nil {
			return fail(err)
		}
		if ok {
			if verr := validateResult(s, res.Key, ar); verr != nil {
				// Not a result this step could have produced: drop it,
				// so that it neither breaks this run nor the next.
				e.warn(s.Addr, fmt.Sprintf("%s: discarding an invalid result from the local cache (%v); rebuilding the step", s.Addr, verr))
				if err := e.store.DeleteAction(res.Key); err != nil {
					return fail(err)
				}
				res.Reason = "its cached result was invalid"
			} else {
				r, outs, err := cached(ar, "")
				switch {
				case err == nil:
					return r, outs
				case errors.Is(err, errNotInCAS):
					res.Reason = "its outputs are missing from the cache"
				case errors.Is(err, cache.ErrBlobMissing):
					// The store found a blob damaged and removed it;
					// the step is rebuilt (or fetched from the remote).
					e.warn(s.Addr, fmt.Sprintf("%s: damaged local cache entry discarded (%v); rebuilding the step", s.Addr, err))
					res.Reason = "its cached outputs were damaged"
				default:
					return fail(err)
				}
			}
		}
		// A step whose job was submitted for this run gets its result
		// through the job (below), which may already have uploaded it.
		if !e.wasSubmitted(s.Addr) {
			if ar := e.pullRemote(ctx, s, res.Key); ar != nil {
				r, outs, err := cached(ar, "remote")
				if err == nil {
					return r, outs
				}
				if errors.Is(err, errLockMismatch) {
					return fail(err)
				}
				e.warn(s.Addr, fmt.Sprintf("%s: restoring the result from remote cache %s failed (%v); rebuilding the step", s.Addr, e.remote.r, err))
			}
		}
	} else {
		res.Reason = "forced by --rebuild"
	}
	if res.Reason == "" {
		res.Reason = e.runReason(s, comps)
	}
	if e.opts.BuildOnly != nil && !slices.Contains(e.opts.BuildOnly, s.Addr) {
		return fail(fmt.Errorf("its result (key %s) is neither in the local nor in the remote cache, and this run may only build %s: the job that builds it must have failed", shortDigest(res.Key), strings.Join(e.opts.BuildOnly, ", ")))
	}
	e.emit(Event{Type: EventStarted, Step: s.Addr})
	if ex := e.executorOf(s); ex != nil {
		ar, err := e.runOnExecutor(ctx, ex, s, res.Key)
		if err != nil {
			return fail(err)
		}
		r, outs, err := cached(ar, ex.Name())
		if err != nil {
			return fail(err)
		}
		r.Status = StatusRan
		return r, outs
	}
	outs, err := e.execute(ctx, s, comps, res.Key, start)
	if err != nil {
		return fail(err)
	}
	if err := e.checkLockedOutputs(s, outs); err != nil {
		return fail(err)
	}
	res.Status = StatusRan
	res.Outputs = e.outputInfo(s, outs)
	res.Seconds = time.Since(start).Seconds()
	return res, outs
}

// runReason says why a step whose key has no cached result must run.
func (e *Engine) runReason(s *Step, comps cache.KeyComponents) string {
	head, ok, err := e.store.Head(e.pipelineID, s.Addr)
	if err != nil || !ok {
		return "new: never built in this workspace"
	}
	prev, ok, err := e.store.GetAction(head.Key)
	if err != nil || !ok {
		return "its previous result is no longer in the cache"
	}
	ch := changes(compareComponents(s, comps, prev))
	if len(ch) == 0 {
		return "its previous result is no longer in the cache"
	}
	parts := make([]string, len(ch))
	for i, c := range ch {
		parts[i] = c.String()
	}
	return strings.Join(parts, "; ")
}

func (e *Engine) outputInfo(s *Step, outs map[string]cache.OutputRef) map[string]OutputInfo {
	m := make(map[string]OutputInfo, len(outs))
	for name, o := range outs {
		m[name] = OutputInfo{Path: BuildDirName + "/" + s.Addr + "/" + o.Path, Digest: o.Digest, Size: o.Size, Dir: o.Dir}
	}
	return m
}

var errNotInCAS = errors.New("outputs not in the cache")

// restore makes build/KIND.NAME hold the cached outputs, writing them from
// the store only when what is there differs. It reports whether it wrote.
func (e *Engine) restore(s *Step, ar *cache.ActionResult) (bool, error) {
	final := filepath.Join(e.buildDir, s.Addr)
	intact := true
	for _, o := range ar.Outputs {
		a, err := e.hasher.Digest(filepath.Join(final, filepath.FromSlash(o.Path)))
		if err != nil || a.Digest != o.Digest || a.Dir != o.Dir {
			intact = false
			break
		}
	}
	if intact {
		return false, nil
	}
	for _, o := range ar.Outputs {
		ok, err := e.store.HasArtifact(o.Digest, o.Dir)
		if err != nil {
			return false, err
		}
		if !ok {
			return false, errNotInCAS
		}
	}
	tmp, err := os.MkdirTemp(e.tmpDir(), s.Addr+"-restore-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(tmp)
	for _, o := range ar.Outputs {
		p := filepath.Join(tmp, filepath.FromSlash(o.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return false, err
		}
		if err := e.store.MaterializeArtifact(o.Digest, o.Dir, p, e.plain); err != nil {
			return false, fmt.Errorf("restore %s output %s from the cache: %w", s.Addr, o.Path, err)
		}
	}
	if err := e.install(s, tmp, ar.Outputs); err != nil {
		return false, err
	}
	return true, nil
}

// install moves a complete output folder into build/KIND.NAME, replacing
// what was there, then records the files in the stat cache so the next
// run does not re-read them.
func (e *Engine) install(s *Step, dir string, outs map[string]cache.OutputRef) error {
	final := filepath.Join(e.buildDir, s.Addr)
	var old string
	if _, err := os.Lstat(final); err == nil {
		old = filepath.Join(e.tmpDir(), fmt.Sprintf("%s-old-%d", s.Addr, time.Now().UnixNano()))
		if err := os.Rename(final, old); err != nil {
			return fmt.Errorf("replace %s: %w", final, err)
		}
	}
	if err := os.Rename(dir, final); err != nil {
		return fmt.Errorf("install %s: %w", final, err)
	}
	if old != "" {
		_ = os.RemoveAll(old)
	}
	for _, o := range outs {
		if err := e.trust(filepath.Join(final, filepath.FromSlash(o.Path)), o); err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) trust(path string, o cache.OutputRef) error {
	if !o.Dir {
		return e.hasher.Trust(path, o.Digest)
	}
	m, err := e.store.Manifest(o.Digest)
	if err != nil {
		return err
	}
	for _, ent := range m.Entries {
		if !ent.Dir {
			if err := e.hasher.Trust(filepath.Join(path, filepath.FromSlash(ent.Path)), ent.Digest); err != nil {
				return err
			}
		}
	}
	return nil
}

// execute runs the step in a private folder, stores its outputs in the
// CAS, commits the action result and installs the outputs. Any failure
// leaves neither a cache entry nor a changed build/ folder.
func (e *Engine) execute(ctx context.Context, s *Step, comps cache.KeyComponents, key string, start time.Time) (map[string]cache.OutputRef, error) {
	outDir, err := os.MkdirTemp(e.tmpDir(), s.Addr+"-out-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(outDir)
	// Checkpoints of an interrupted run of this very key survive in its
	// state folder, and the next run resumes from them.
	stateDir := e.stateDir(key)
	inputPaths, device, err := e.invoke(ctx, s, comps, outDir, stateDir)
	if err != nil {
		return nil, err
	}
	outs, err := e.collectOutputs(s, outDir, true)
	if err != nil {
		return nil, err
	}
	ar := &cache.ActionResult{
		Key: key, Step: s.Addr, Components: comps, Outputs: outs,
		Provenance: cache.Provenance{
			MlbuildVersion: version.String(),
			GoVersion:      runtime.Version(),
			Device:         device,
			Host:           hostname(),
			Started:        start.UTC(),
			Seconds:        time.Since(start).Seconds(),
			InputPaths:     inputPaths,
		},
	}
	if err := e.store.PutAction(ar); err != nil {
		return nil, err
	}
	if err := e.install(s, outDir, outs); err != nil {
		return nil, err
	}
	e.pushRemote(ctx, s, ar)
	if err := os.RemoveAll(stateDir); err != nil {
		e.log.Warn("cannot remove a finished step's checkpoints", "dir", stateDir, "err", err)
	}
	return outs, nil
}

// LogDirName is the folder, under build/, of the steps' report folders
// (steps.Invocation.LogDir): build/.logs/KIND.NAME/.
const LogDirName = ".logs"

// LogDir is the report folder of the step's last run in this workspace.
func (e *Engine) LogDir(s *Step) string {
	return filepath.Join(e.buildDir, LogDirName, s.Addr)
}

// stateDir is where a step run with key keeps the checkpoints it resumes
// from after an interruption (see steps.Invocation.StateDir).
func (e *Engine) stateDir(key string) string {
	if e.opts.StateDir != "" {
		return filepath.Join(e.opts.StateDir, key)
	}
	return filepath.Join(e.buildDir, ".state", key)
}

// invoke runs the step's kind with outDir as its output folder, a
// scratch folder it removes afterwards and stateDir for checkpoints (a
// fresh one inside the scratch folder when empty). It returns the inputs' paths by
// role, as the pipeline names them, and the device the step reported
// running on (steps.Invocation.ReportDevice; "cpu" when it reported none).
func (e *Engine) invoke(ctx context.Context, s *Step, comps cache.KeyComponents, outDir, stateDir string) (map[string][]string, string, error) {
	scratch, err := os.MkdirTemp(e.tmpDir(), s.Addr+"-scratch-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(scratch)
	if stateDir == "" {
		stateDir = filepath.Join(scratch, "state")
	}
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return nil, "", fmt.Errorf("create the step's state folder: %w", err)
	}
	logDir := e.LogDir(s)
	if err := os.RemoveAll(logDir); err != nil {
		return nil, "", fmt.Errorf("remove the step's last log folder: %w", err)
	}
	device := "cpu"
	inv := &steps.Invocation{
		Step:     s.Addr,
		Config:   s.Config,
		Inputs:   map[string][]steps.InputFile{},
		OutDir:   outDir,
		TempDir:  scratch,
		StateDir: stateDir,
		Log:      e.log.With("step", s.Addr),
		Progress: func(done, total float64, msg string) {
			e.emit(Event{Type: EventProgress, Step: s.Addr, Progress: &Progress{Done: done, Total: total, Message: msg}})
		},
		Output: func(stream, line string) {
			e.emit(Event{Type: EventOutput, Step: s.Addr, Stream: stream, Message: line})
		},
		LogDir: logDir,
		Device: func(name string) { device = name },
	}
	inputPaths := map[string][]string{}
	for role, ins := range s.Inputs {
		for i, in := range ins {
			p := in.Path
			if in.From != nil {
				p = filepath.Join(e.workspace, filepath.FromSlash(in.Name))
			}
			inv.Inputs[role] = append(inv.Inputs[role], steps.InputFile{Path: p, Name: in.Name, Digest: comps.Inputs[role][i].Digest, Key: in.Key})
			inputPaths[role] = append(inputPaths[role], in.Name)
		}
	}
	if err := runStep(ctx, s.Impl, inv); err != nil {
		if ctx.Err() != nil {
			return nil, "", fmt.Errorf("interrupted: %w", ctx.Err())
		}
		return nil, "", s.locate(err)
	}
	return inputPaths, device, nil
}

// locate points an attribute error that the step's kind returned while
// running (a *steps.AttrError) at the attribute in the pipeline file, as
// load-time diagnostics are: "twainbot.hcl:12:3: attribute "seq_len": ...";
// an attribute left at its default is pointed at the step's block.
func (s *Step) locate(err error) error {
	var ae *steps.AttrError
	if !errors.As(err, &ae) {
		return err
	}
	r, ok := s.attrRanges[ae.Attr]
	if !ok {
		r = s.Range
	}
	if r.Filename == "" {
		return err
	}
	return fmt.Errorf("%s:%d:%d: %w", r.Filename, r.Start.Line, r.Start.Column, err)
}

// runStep calls the kind, turning a panic into an error that names it. A
// panic whose value is an error with a Failure method (tensor.DeviceError:
// a GPU out of memory, say) is the step's failure, reported as such; any
// other panic is a bug.
func runStep(ctx context.Context, k steps.Kind, inv *steps.Invocation) (err error) {
	defer func() {
		if r := recover(); r != nil {
			inv.Logger().Debug("step panicked", "panic", r, "stack", string(debug.Stack()))
			var f interface {
				error
				Failure()
			}
			if e, ok := r.(error); ok && errors.As(e, &f) {
				err = fmt.Errorf("%s: %w", inv.Step, e)
				return
			}
			err = fmt.Errorf("internal error in step kind %s: %v (this is a bug in mlbuild; please report it)", inv.Step, r)
		}
	}()
	return k.Run(ctx, inv)
}

// collectOutputs checks that every declared output exists, removes
// anything else from the folder, makes the files read-only, digests them
// and, when store is set, stores them in the CAS.
func (e *Engine) collectOutputs(s *Step, dir string, store bool) (map[string]cache.OutputRef, error) {
	keep := map[string]bool{}
	for _, o := range s.Schema.Outputs {
		first, _, _ := strings.Cut(o.Path, "/")
		keep[first] = true
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, ent := range entries {
		if !keep[ent.Name()] {
			if err := os.RemoveAll(filepath.Join(dir, ent.Name())); err != nil {
				return nil, err
			}
		}
	}
	outs := make(map[string]cache.OutputRef, len(s.Schema.Outputs))
	for _, o := range s.Schema.Outputs {
		p := filepath.Join(dir, filepath.FromSlash(o.Path))
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("step kind %s did not write its output %q (%s)", s.Kind, o.Name, o.Path)
		}
		if fi.IsDir() != o.Dir {
			want := "a file"
			if o.Dir {
				want = "a directory"
			}
			return nil, fmt.Errorf("step kind %s wrote output %q (%s) but it is not %s", s.Kind, o.Name, o.Path, want)
		}
		if err := makeReadOnly(p); err != nil {
			return nil, err
		}
		a, err := e.plain.Digest(p)
		if err != nil {
			return nil, err
		}
		if store {
			if err := e.store.PutArtifact(p, a); err != nil {
				return nil, fmt.Errorf("store output %q: %w", o.Name, err)
			}
		}
		outs[o.Name] = cache.OutputRef{Path: o.Path, Digest: a.Digest, Size: a.Size, Dir: a.Dir}
	}
	return outs, nil
}

func makeReadOnly(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return os.Chmod(p, fi.Mode().Perm()&^0o222)
	})
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}
