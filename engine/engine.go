package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mlbuild/mlbuild/cache"
)

// Options configure an Engine.
type Options struct {
	// Workspace is the folder that holds build/ and, by default, the
	// cache (.mlbuild/cache). Default: the working directory.
	Workspace string
	// CacheDir overrides the cache location (also MLBUILD_CACHE_DIR).
	CacheDir string
	// Jobs caps how many steps run at once (default: number of CPUs).
	Jobs int
	// Targets restricts a run to these steps (KIND.NAME) and what they
	// need; empty means every step.
	Targets []string
	// Rebuild forces these steps to run even when cached.
	Rebuild []string
	// OnEvent receives progress and results; it may be nil. It is called
	// from several goroutines, never concurrently.
	OnEvent func(Event)
	// Log receives diagnostics (nil discards).
	Log *slog.Logger
	// NoWait fails at once, instead of waiting, when another mlbuild
	// process holds the workspace or the cache.
	NoWait bool
	// ReadOnly opens the engine for commands that only read (plan,
	// explain, show): it takes no workspace lock and never waits for the
	// cache's: while another process holds it, Open fails at once with an
	// error that says so (errors.Is cache.ErrLocked). Run, Verify, Push and
	// Pull need an engine opened without it.
	ReadOnly bool
	// Locked, when not nil, holds each step's key and output digests from
	// the lockfile: a step whose key or outputs differ fails (run --locked).
	Locked map[string]LockedStep
	// Executors are the executors steps may run on, by name (the
	// pipeline's executor blocks, made by the caller). Steps whose
	// executor is not local are submitted to theirs when the run starts.
	Executors map[string]Executor
	// Executor, when set, overrides every step's executor: "local" runs
	// them all in this process (run --executor).
	Executor string
	// BuildOnly, when set, are the only steps this run may execute; any
	// other it needs must be cached, locally or on the remote, else it
	// fails (the node side of an executor: its dependencies' jobs ran
	// elsewhere).
	BuildOnly []string
	// StateDir, when set, replaces build/.state as the folder of the
	// steps' checkpoints (a folder on a shared filesystem, so that a job
	// requeued on another node resumes where the first left off).
	StateDir string
	// Start, when set, is when the command began: the summary's Seconds
	// count from it, so that they include loading the pipeline (zero:
	// from when Run, FastNoop or QuickNoop began).
	Start time.Time
}

// LockedStep is a step's entry in the lockfile.
type LockedStep struct {
	Key string
	// Outputs maps output names to SHA-256 digests.
	Outputs map[string]string
}

// Engine plans and runs one pipeline against the workspace's cache.
type Engine struct {
	p          *Pipeline
	opts       Options
	store      *cache.Store
	wsLock     *cache.Lock // nil when ReadOnly
	hasher     *cache.Hasher
	plain      *cache.Hasher // no stat cache: for files in temporary places
	workspace  string
	buildDir   string
	pipelineID string
	log        *slog.Logger

	eventMu sync.Mutex

	digestMu sync.Mutex
	digests  map[string]*digestMemo

	remote *remoteState

	// submitted are the steps whose jobs an executor has.
	submitMu  sync.Mutex
	submitted map[string]bool
}

type digestMemo struct {
	once sync.Once
	art  cache.Artifact
	err  error
}

// Open locks the workspace (WORKSPACE/build/.lock) and opens its cache
// for the pipeline. It waits (saying so through opts.Log) while another
// mlbuild process uses the workspace or the cache. The workspace is locked
// first, so that two runs in one workspace never share build/.tmp even
// when their caches differ (MLBUILD_CACHE_DIR), and two processes never
// wait for each other's locks in opposite orders.
func Open(ctx context.Context, p *Pipeline, opts Options) (*Engine, error) {
	ws := opts.Workspace
	if ws == "" {
		var err error
		if ws, err = os.Getwd(); err != nil {
			return nil, err
		}
	}
	ws, err := filepath.Abs(ws)
	if err != nil {
		return nil, err
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var wsLock *cache.Lock
	if !opts.ReadOnly {
		bd := filepath.Join(ws, BuildDirName)
		if err := os.MkdirAll(bd, 0o755); err != nil {
			return nil, fmt.Errorf("create build folder: %w", err)
		}
		if wsLock, err = cache.AcquireLock(ctx, filepath.Join(bd, ".lock"), "the workspace "+ws, opts.NoWait, log); err != nil {
			return nil, err
		}
	}
	dir := CacheDir(ws, opts.CacheDir)
	store, err := cache.Open(ctx, dir, cache.Options{Log: log, NoWait: opts.NoWait || opts.ReadOnly})
	if err != nil {
		wsLock.Release()
		if opts.ReadOnly && errors.Is(err, cache.ErrLocked) {
			err = fmt.Errorf("%w; commands that only read the cache do not wait for it: run this one again when that process has finished", err)
		}
		return nil, err
	}
	if opts.Jobs <= 0 {
		opts.Jobs = runtime.NumCPU()
	}
	for _, list := range [][]string{opts.Targets, opts.Rebuild} {
		for _, a := range list {
			if _, ok := p.byAddr[a]; !ok {
				_ = store.Close() // nothing was written yet; the error to report is this one
				wsLock.Release()
				return nil, fmt.Errorf("no step %s in %s%s", a, displayName(p.File), suggest(a, p.addrs()))
			}
		}
	}
	if p.partial {
		// Loaded for some targets: only their closure was evaluated.
		for _, s := range (&Engine{p: p, opts: opts}).selected() {
			if s.Config == nil {
				_ = store.Close() // nothing was written yet
				wsLock.Release()
				return nil, fmt.Errorf("%s was loaded for other targets and not evaluated: load the pipeline with these targets (LoadOptions.Targets) or none", s.Addr)
			}
		}
	}
	id := pipelineID(ws, p.File)
	e := &Engine{
		p: p, opts: opts, store: store, wsLock: wsLock,
		hasher: cache.NewHasher(store), plain: cache.NewHasher(nil),
		workspace: ws, buildDir: filepath.Join(ws, BuildDirName), pipelineID: id, log: log,
		digests: map[string]*digestMemo{},
	}
	return e, nil
}

// pipelineID names a pipeline in the cache's records: its path relative to
// the workspace (absolute when outside it).
func pipelineID(workspace, file string) string {
	if rel, err := filepath.Rel(workspace, file); err == nil && !strings.HasPrefix(rel, "..") {
		return filepath.ToSlash(rel)
	}
	return filepath.ToSlash(file)
}

// CacheDir is where a workspace's cache lives: explicit, else
// MLBUILD_CACHE_DIR, else WORKSPACE/.mlbuild/cache.
func CacheDir(workspace, explicit string) string {
	if explicit != "" {
		return explicit
	}
	if d := os.Getenv("MLBUILD_CACHE_DIR"); d != "" {
		return d
	}
	return filepath.Join(workspace, ".mlbuild", "cache")
}

// PipelineID names the pipeline in the cache's records: its path relative
// to the workspace.
func (e *Engine) PipelineID() string { return e.pipelineID }

// Close closes the cache and releases the workspace.
func (e *Engine) Close() error {
	err := e.store.Close()
	e.wsLock.Release()
	return err
}

// Store is the engine's cache.
func (e *Engine) Store() *cache.Store { return e.store }

// BytesRead is how many bytes of input content the engine has hashed (0
// on a rerun with unchanged inputs, thanks to the stat cache).
func (e *Engine) BytesRead() int64 { return e.hasher.BytesRead() }

func (p *Pipeline) addrs() []string {
	out := make([]string, len(p.Steps))
	for i, s := range p.Steps {
		out[i] = s.Addr
	}
	return out
}

// selected returns the steps a run builds, dependencies first: the targets
// and everything they need, or every step.
func (e *Engine) selected() []*Step {
	want := map[*Step]bool{}
	var mark func(s *Step)
	mark = func(s *Step) {
		if want[s] {
			return
		}
		want[s] = true
		for _, d := range s.Deps {
			mark(d)
		}
	}
	if len(e.opts.Targets) == 0 {
		for _, s := range e.p.Steps {
			want[s] = true
		}
	} else {
		for _, a := range e.opts.Targets {
			mark(e.p.byAddr[a])
		}
	}
	return topoOrder(e.p.Steps, want)
}

// topoOrder lists the wanted steps with every step after its
// dependencies, otherwise in file order.
func topoOrder(all []*Step, want map[*Step]bool) []*Step {
	var out []*Step
	seen := map[*Step]bool{}
	var visit func(s *Step)
	visit = func(s *Step) {
		if seen[s] {
			return
		}
		seen[s] = true
		for _, d := range s.Deps {
			visit(d)
		}
		if want[s] {
			out = append(out, s)
		}
	}
	for _, s := range all {
		if want[s] {
			visit(s)
		}
	}
	return out
}

// digest hashes a source input once per engine, through the stat cache.
func (e *Engine) digest(path string) (cache.Artifact, error) {
	e.digestMu.Lock()
	m, ok := e.digests[path]
	if !ok {
		m = &digestMemo{}
		e.digests[path] = m
	}
	e.digestMu.Unlock()
	m.once.Do(func() { m.art, m.err = e.hasher.Digest(path) })
	return m.art, m.err
}

// pendingPrefix marks, in the components a plan shows, an input whose
// digest is not known yet because its producer must run first.
const pendingPrefix = "pending:"

// components computes a step's key components. outputs gives each
// dependency's output refs; a dependency missing from it is pending and
// makes the key unknown (complete is false).
func (e *Engine) components(s *Step, outputs map[*Step]map[string]cache.OutputRef) (comps cache.KeyComponents, complete bool, err error) {
	comps = cache.KeyComponents{
		Kind:    s.Kind,
		Version: s.Schema.Version,
		Config:  s.KeyConfig,
		Inputs:  map[string][]cache.InputRef{},
	}
	complete = true
	for role, ins := range s.Inputs {
		refs := make([]cache.InputRef, 0, len(ins))
		for _, in := range ins {
			// A named input is known by its name; others by the base
			// name of their path.
			name := in.Key
			if in.From != nil {
				outs, ok := outputs[in.From]
				if name == "" {
					name = pathBase(in.Name)
				}
				if !ok {
					complete = false
					refs = append(refs, cache.InputRef{Name: name, Digest: pendingPrefix + in.From.Addr})
					continue
				}
				o := outs[in.Output]
				if in.Key == "" {
					name = pathBase(o.Path)
				}
				refs = append(refs, cache.InputRef{Name: name, Digest: o.Digest, Size: o.Size, Dir: o.Dir})
				continue
			}
			a, err := e.digest(in.Path)
			if err != nil {
				return comps, false, fmt.Errorf("%s: input %s (%s): %w", s.Addr, in.Name, role, unwrapPathErr(err))
			}
			if name == "" {
				name = pathBase(in.Name)
			}
			refs = append(refs, cache.InputRef{Name: name, Digest: a.Digest, Size: a.Size, Dir: a.Dir})
		}
		comps.Inputs[role] = refs
	}
	return comps, complete, nil
}

// Key is the SHA-256 of the components' canonical JSON (encoding/json
// sorts map keys; config values are already canonical cty JSON).
func Key(c cache.KeyComponents) string {
	b, _ := json.Marshal(c) // cannot fail: strings, numbers and valid JSON
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func pathBase(p string) string {
	p = strings.TrimRight(p, "/")
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// Change is one difference between two sets of key components.
type Change struct {
	// Component names what changed: "version", "config.seed",
	// "input.source[0]".
	Component string `json:"component"`
	Old       string `json:"old"`
	New       string `json:"new"`
}

// String says the change in words.
func (c Change) String() string {
	switch {
	case c.Old == "":
		return fmt.Sprintf("%s added (%s)", c.Component, c.New)
	case c.New == "":
		return fmt.Sprintf("%s removed (was %s)", c.Component, c.Old)
	default:
		return fmt.Sprintf("%s changed: %s → %s", c.Component, c.Old, c.New)
	}
}

// Row is one component of a key, side by side with the same component of
// an earlier key.
type Row struct {
	Component string `json:"component"`
	Current   string `json:"current"`
	Previous  string `json:"previous"`
	Changed   bool   `json:"changed"`
}

// compareComponents lists every component of cur beside prev's (prev may be
// nil), naming inputs by the paths the step gives them.
func compareComponents(s *Step, cur cache.KeyComponents, prev *cache.ActionResult) []Row {
	var pc *cache.KeyComponents
	var prevPaths map[string][]string
	if prev != nil {
		pc, prevPaths = &prev.Components, prev.Provenance.InputPaths
	}
	return compareKeys(s, cur, pc, prevPaths)
}

// compareKeys lists every component of cur beside prev's; prevPaths names
// prev's inputs as its pipeline wrote them.
func compareKeys(s *Step, cur cache.KeyComponents, prev *cache.KeyComponents, prevPaths map[string][]string) []Row {
	var rows []Row
	add := func(comp, c, p string) {
		rows = append(rows, Row{Component: comp, Current: c, Previous: p, Changed: prev != nil && c != p})
	}
	pv := func(f func(*cache.KeyComponents) string) string {
		if prev == nil {
			return ""
		}
		return f(prev)
	}
	add("kind", cur.Kind, pv(func(k *cache.KeyComponents) string { return k.Kind }))
	add("version", cur.Version, pv(func(k *cache.KeyComponents) string { return k.Version }))
	var names []string
	seen := map[string]bool{}
	for n := range cur.Config {
		names, seen[n] = append(names, n), true
	}
	if prev != nil {
		for n := range prev.Config {
			if !seen[n] {
				names = append(names, n)
			}
		}
	}
	sort.Strings(names)
	for _, n := range names {
		add("config."+n, string(cur.Config[n]), pv(func(k *cache.KeyComponents) string { return string(k.Config[n]) }))
	}
	roles := []string{}
	seen = map[string]bool{}
	for r := range cur.Inputs {
		roles, seen[r] = append(roles, r), true
	}
	if prev != nil {
		for r := range prev.Inputs {
			if !seen[r] {
				roles = append(roles, r)
			}
		}
	}
	sort.Strings(roles)
	for _, r := range roles {
		c := cur.Inputs[r]
		var p []cache.InputRef
		if prev != nil {
			p = prev.Inputs[r]
		}
		if ins := s.Inputs[r]; len(ins) > 0 && ins[0].Key != "" {
			rows = append(rows, compareNamed(s, r, c, p, prev != nil, prevPaths[r])...)
			continue
		}
		for i := 0; i < max(len(c), len(p)); i++ {
			comp := fmt.Sprintf("input.%s[%d]", r, i)
			var cs, ps string
			if i < len(c) {
				cs = describeInput(s, r, i, c[i])
			}
			if i < len(p) {
				name := p[i].Name
				if ps := prevPaths[r]; i < len(ps) {
					name = ps[i]
				}
				ps = name + " sha256:" + shortDigest(p[i].Digest)
			}
			row := Row{Component: comp, Current: cs, Previous: ps}
			if prev != nil {
				pending := i < len(c) && strings.HasPrefix(c[i].Digest, pendingPrefix)
				row.Changed = !pending && (i >= len(c) || i >= len(p) || c[i].Digest != p[i].Digest || c[i].Name != p[i].Name)
			}
			rows = append(rows, row)
		}
	}
	return rows
}

// compareNamed compares the inputs of a map-typed attribute by name
// (input.inputs["count.py"]), so that adding one shows as one added row.
func compareNamed(s *Step, role string, cur, prev []cache.InputRef, havePrev bool, prevPaths []string) []Row {
	byName := func(refs []cache.InputRef) map[string]int {
		m := make(map[string]int, len(refs))
		for i, r := range refs {
			m[r.Name] = i
		}
		return m
	}
	ci, pi := byName(cur), byName(prev)
	names := make([]string, 0, len(ci)+len(pi))
	for n := range ci {
		names = append(names, n)
	}
	for n := range pi {
		if _, ok := ci[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var rows []Row
	for _, n := range names {
		row := Row{Component: fmt.Sprintf("input.%s[%q]", role, n)}
		i, inCur := ci[n]
		j, inPrev := pi[n]
		if inCur {
			row.Current = describeInput(s, role, i, cur[i])
		}
		if inPrev {
			name := n
			if j < len(prevPaths) {
				name = prevPaths[j]
			}
			row.Previous = name + " sha256:" + shortDigest(prev[j].Digest)
		}
		if havePrev {
			pending := inCur && strings.HasPrefix(cur[i].Digest, pendingPrefix)
			row.Changed = !pending && (!inCur || !inPrev || cur[i].Digest != prev[j].Digest)
		}
		rows = append(rows, row)
	}
	return rows
}

func describeInput(s *Step, role string, i int, ref cache.InputRef) string {
	name := ref.Name
	if ins := s.Inputs[role]; i < len(ins) {
		name = ins[i].Name
	}
	if strings.HasPrefix(ref.Digest, pendingPrefix) {
		return fmt.Sprintf("%s (not known yet: %s must run first)", name, strings.TrimPrefix(ref.Digest, pendingPrefix))
	}
	return name + " sha256:" + shortDigest(ref.Digest)
}

func shortDigest(d string) string {
	if len(d) > 12 {
		return d[:12]
	}
	return d
}

// changes is the changed rows of a comparison, as Changes.
func changes(rows []Row) []Change {
	var out []Change
	for _, r := range rows {
		if r.Changed {
			out = append(out, Change{Component: r.Component, Old: r.Previous, New: r.Current})
		}
	}
	return out
}
