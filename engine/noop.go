package engine

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mlbuild/mlbuild/cache"
	"github.com/mlbuild/mlbuild/internal/version"
	"github.com/mlbuild/mlbuild/steps"
)

// The no-op stamp lets a rerun with nothing to do skip the cache entirely,
// as ninja's log does: after a successful full run, the engine records the
// pipeline's fingerprint (every step's kind, implementation version, keyed
// config and input paths), the stat identity of every source input and of
// every file it installed under build/, and each step's result. A later
// run whose pipeline evaluates to the same fingerprint and finds every
// recorded file unchanged knows every key and every output is as recorded,
// so it reports every step cached without opening the cache or reading a
// byte of input. Any run that may change something deletes the stamp first
// (under the cache lock), and a source that changed within the racy window
// before the run keeps the stamp from being written.
//
// The stamp also records what loading the pipeline read: the identity of
// the pipeline file, of the -var-file files and of the files file() read,
// what glob() and fileexists() found, the -var values and MLBUILD_VAR_*
// variables, and the steps' outline (kinds, names, outputs). When all of
// that is as recorded, loading would evaluate to the same fingerprint, so
// QuickNoop answers a no-op without parsing or evaluating the pipeline at
// all: its cost is reading the stamp and one stat per recorded file, as
// ninja's no-op is. Steps whose inputs a kind resolves (a command's tools,
// looked up on PATH) keep the outline out, so such pipelines are loaded.

// stampNow is the clock writeStamp judges settled sources by (tests move
// it forward instead of waiting out the racy window).
var stampNow = time.Now

// stampMagic starts every stamp file; a stamp in another format is
// ignored (and replaced by the next full run).
const stampMagic = "mlbuild no-op stamp 3\n"

// stamp is what a no-op check compares against.
type stamp struct {
	// Token identifies this stamp (Summary.Stamp).
	Token       string
	Fingerprint string
	// Load is what loading the pipeline read (nil: a no-op must load it).
	Load    *loadRecord
	Sources []stampFile
	Steps   []stampStep
}

type stampFile struct {
	Path string
	ID   cache.FileID
}

type stampStep struct {
	Result StepResult
	// Files are workspace-relative (slash-separated under build/).
	Files []stampFile
}

// loadRecord is what a pipeline's evaluation depended on besides its text.
type loadRecord struct {
	Version string
	// Binary is the identity of the running executable: a rebuilt
	// mlbuild (whose version string a development build may share) may
	// have other kinds, defaults or functions.
	Binary   cache.FileID
	Vars     []string // LoadOptions.Vars, in order
	VarFiles []string // absolute
	Env      []string // the MLBUILD_VAR_* entries, sorted
	Files    []stampFile
	Globs    []globRead
	Exists   []existsRead
	Steps    []outlineStep
}

type globRead struct {
	Pattern string // absolute
	Matches []string
}

type existsRead struct {
	Path   string
	Exists bool
}

// outlineStep is what a command needs of a step it did not load: its
// address, where it runs, and the outputs a kind that declares them per
// step declared (the others come from the registry).
type outlineStep struct {
	Kind, Name, Executor string
	// KindVersion is the kind's implementation version when the step was
	// loaded.
	KindVersion string
	Declared    bool
	Outputs     []steps.Output
}

// loadReads records, while a pipeline loads, the files, globs and settings
// its evaluation depends on.
type loadReads struct {
	start time.Time
	// mu guards rec and unstable: steps are evaluated in parallel.
	mu       sync.Mutex
	rec      loadRecord
	unstable bool // something read cannot be checked without loading
}

// markUnstable says that something loading read cannot be checked
// without loading.
func (r *loadReads) markUnstable() {
	r.mu.Lock()
	r.unstable = true
	r.mu.Unlock()
}

func newLoadReads(opts LoadOptions) *loadReads {
	r := &loadReads{start: stampNow()}
	r.rec.Version = version.String()
	if id, ok := executableID(); ok {
		r.rec.Binary = id
	} else {
		r.unstable = true
	}
	r.rec.Vars = slices.Clone(opts.Vars)
	for _, f := range opts.VarFiles {
		abs, err := filepath.Abs(f)
		if err != nil {
			r.unstable = true
		}
		r.rec.VarFiles = append(r.rec.VarFiles, abs)
	}
	r.rec.Env = varEnv(opts.Environ)
	return r
}

// executableID is the identity of the running executable.
func executableID() (cache.FileID, bool) {
	exe, err := os.Executable()
	if err != nil {
		return cache.FileID{}, false
	}
	fi, err := os.Stat(exe)
	if err != nil {
		return cache.FileID{}, false
	}
	return cache.IdentityOf(fi), true
}

// varEnv is the MLBUILD_VAR_* entries of environ (os.Environ() when nil),
// sorted.
func varEnv(environ []string) []string {
	if environ == nil {
		environ = os.Environ()
	}
	var out []string
	for _, kv := range environ {
		if strings.HasPrefix(kv, "MLBUILD_VAR_") {
			out = append(out, kv)
		}
	}
	sort.Strings(out)
	return out
}

// file records the identity of a file loading is about to read; one that
// changed too recently to be trusted makes the record unstable.
func (r *loadReads) file(abs string) {
	if r == nil {
		return
	}
	fi, err := os.Stat(abs)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil || fi.IsDir() {
		r.unstable = true
		return
	}
	id := cache.IdentityOf(fi)
	if !id.Settled(r.start) {
		r.unstable = true
	}
	r.rec.Files = append(r.rec.Files, stampFile{Path: abs, ID: id})
}

func (r *loadReads) glob(pattern string, matches []string) {
	if r != nil {
		r.mu.Lock()
		r.rec.Globs = append(r.rec.Globs, globRead{pattern, slices.Clone(matches)})
		r.mu.Unlock()
	}
}

func (r *loadReads) exists(abs string, ok bool) {
	if r != nil {
		r.mu.Lock()
		r.rec.Exists = append(r.rec.Exists, existsRead{abs, ok})
		r.mu.Unlock()
	}
}

// record is the pipeline's load record for its stamp, or nil when a no-op
// must load it.
func (p *Pipeline) loadRecord() *loadRecord {
	r := p.reads
	if r == nil || r.unstable {
		return nil
	}
	rec := r.rec
	rec.Steps = make([]outlineStep, 0, len(p.Steps))
	for _, s := range p.Steps {
		if s.Executor != "" && s.Executor != LocalExecutor {
			return nil
		}
		o := outlineStep{Kind: s.Kind, Name: s.Name, Executor: s.Executor, KindVersion: s.Schema.Version}
		if _, ok := s.Impl.(steps.OutputDeclarer); ok {
			for _, out := range s.Schema.Outputs {
				if out.Headline != nil {
					return nil // not in the stamp's encoding
				}
			}
			o.Declared, o.Outputs = true, s.Schema.Outputs
		}
		rec.Steps = append(rec.Steps, o)
	}
	return &rec
}

// fingerprint hashes everything about the evaluated pipeline that enters
// keys, except input content (which the stamp's file identities cover).
func fingerprint(p *Pipeline) string {
	h := sha256.New()
	var b []byte
	line := func(parts ...string) {
		b = b[:0]
		for i, s := range parts {
			if i > 0 {
				b = append(b, ' ')
			}
			b = append(b, s...)
		}
		b = append(b, '\n')
		h.Write(b)
	}
	line("mlbuild", version.String())
	var names []string
	for _, s := range p.Steps {
		line("step", s.Addr, s.Kind, s.Schema.Version)
		names = names[:0]
		for n := range s.KeyConfig {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			line("config", n, string(s.KeyConfig[n]))
		}
		names = names[:0]
		for r := range s.Inputs {
			names = append(names, r)
		}
		sort.Strings(names)
		for _, r := range names {
			for _, in := range s.Inputs[r] {
				from := ""
				if in.From != nil {
					from = in.From.Addr + "." + in.Output
				}
				line("input", r, strconv.Quote(in.Name), strconv.Quote(in.Path), strconv.Quote(from))
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func stampPath(cacheDir, workspace, pipelineID string) string {
	sum := sha256.Sum256([]byte(workspace + "\x00" + pipelineID))
	return filepath.Join(cacheDir, "noop", hex.EncodeToString(sum[:16]))
}

func (e *Engine) stampPath() string {
	return stampPath(e.store.Dir(), e.workspace, e.pipelineID)
}

// statWorkers is how many goroutines stat a stamp's files.
const statWorkers = 4

// allUnchanged reports whether each of n files (file(i) gives its path and
// recorded identity) still has its identity; it stats them in parallel
// and stops at the first that changed.
func allUnchanged(n int, file func(i int) (string, cache.FileID)) bool {
	workers := min(statWorkers, max(1, runtime.GOMAXPROCS(0)*2), (n+255)/256)
	if workers <= 1 {
		for i := range n {
			if !sameIdentity(file(i)) {
				return false
			}
		}
		return true
	}
	var changed atomic.Bool
	var next atomic.Int64
	var wg sync.WaitGroup
	const chunk = 256
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !changed.Load() {
				lo := int(next.Add(chunk)) - chunk
				if lo >= n {
					return
				}
				for i := lo; i < min(lo+chunk, n); i++ {
					if !sameIdentity(file(i)) {
						changed.Store(true)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	return !changed.Load()
}

// sameIdentity stats path (without allocating) and compares its identity
// with id, as cache.IdentityOf computes it.
func sameIdentity(path string, id cache.FileID) bool {
	var st syscall.Stat_t
	for {
		err := syscall.Stat(path, &st)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return false
		}
		break
	}
	return st.Size == id.Size && st.Mtim.Sec*1e9+st.Mtim.Nsec == id.MtimeNs && st.Ctim.Sec*1e9+st.Ctim.Nsec == id.CtimeNs &&
		st.Ino == id.Ino && uint64(st.Dev) == id.Dev
}

// stampHolds reports whether every file the stamp recorded, sources and
// installed outputs, is unchanged.
func stampHolds(st *stamp, ws string) bool {
	if !allUnchanged(len(st.Sources), func(i int) (string, cache.FileID) { return st.Sources[i].Path, st.Sources[i].ID }) {
		return false
	}
	type ref struct{ step, file int }
	var refs []ref
	for i := range st.Steps {
		for j := range st.Steps[i].Files {
			refs = append(refs, ref{i, j})
		}
	}
	prefix := ws + string(filepath.Separator)
	return allUnchanged(len(refs), func(k int) (string, cache.FileID) {
		f := &st.Steps[refs[k].step].Files[refs[k].file]
		return prefix + filepath.FromSlash(f.Path), f.ID
	})
}

// stampPathOf is the stamp file of the pipeline at abs in workspace ws
// (cacheDir as Options.CacheDir).
func stampPathOf(ws, cacheDir, abs string) string {
	return stampPath(CacheDir(ws, cacheDir), ws, pipelineID(ws, abs))
}

// readStamp reads the stamp of the pipeline file abs in workspace ws (both
// absolute); nil when there is none or it cannot be read.
func readStamp(ws, cacheDir, abs string) *stamp {
	b, err := os.ReadFile(stampPathOf(ws, cacheDir, abs))
	if err != nil {
		return nil
	}
	st, err := decodeStamp(b)
	if err != nil {
		return nil
	}
	return st
}

// workspaceOf is opts.Workspace, absolute (the working directory when
// unset).
func workspaceOf(opts Options) (string, error) {
	ws := opts.Workspace
	if ws == "" {
		var err error
		if ws, err = os.Getwd(); err != nil {
			return "", err
		}
	}
	return filepath.Abs(ws)
}

// fastPath reports whether a run with these options may be answered by
// the stamp: a plain run of every step.
func fastPath(opts Options) bool {
	return len(opts.Targets) == 0 && len(opts.Rebuild) == 0 && len(opts.BuildOnly) == 0
}

// FastNoop reports, without opening the cache, whether a full run of the
// pipeline would run nothing, restore nothing and read no input. When it
// would, FastNoop reports each step as cached through opts.OnEvent, ends
// with the summary, and returns it; otherwise it returns nil and the caller
// runs as usual. It applies only to plain runs of every step (no targets,
// no --rebuild).
func FastNoop(p *Pipeline, opts Options) *Summary {
	start := time.Now()
	if !fastPath(opts) {
		return nil
	}
	ws, err := workspaceOf(opts)
	if err != nil {
		return nil
	}
	st := readStamp(ws, opts.CacheDir, p.File)
	if st == nil || st.Fingerprint != fingerprint(p) || len(st.Steps) != len(p.Steps) || !stampHolds(st, ws) {
		return nil
	}
	// The pipeline was loaded, so the stamp's load record was missing
	// (the run that wrote it read a file too fresh to trust: one just
	// edited, copied or checked out) or no longer held (another mlbuild
	// binary, an edit that changed no key). Record what this load read, if
	// it has settled, so that the next no-op skips loading.
	if rec := p.loadRecord(); rec != nil {
		st.Load = rec
		_ = writeStampFile(stampPathOf(ws, opts.CacheDir, p.File), st) // best effort: the next no-op loads again
	}
	return reportNoop(st, opts, start)
}

// QuickNoop is FastNoop without loading the pipeline: when the stamp of
// the pipeline file at path records what loading it read (see the package
// notes on the stamp) and all of it, and every recorded file, is as it
// was, it reports every step cached through opts.OnEvent, as FastNoop
// does, and returns the summary and the pipeline's outline: a Pipeline
// whose steps have their kind, name, address, schema (outputs included)
// and executor but no config, inputs or dependencies, enough to name and
// announce them. Otherwise it returns nil, nil, and the caller loads the
// pipeline as usual (and may still find it a no-op with FastNoop).
func QuickNoop(path string, lopts LoadOptions, opts Options) (*Pipeline, *Summary) {
	start := time.Now()
	if !fastPath(opts) || (opts.Executor != "" && opts.Executor != LocalExecutor) {
		return nil, nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, nil
	}
	ws, err := workspaceOf(opts)
	if err != nil {
		return nil, nil
	}
	st := readStamp(ws, opts.CacheDir, abs)
	if st == nil || st.Load == nil || !st.Load.holds(lopts) {
		return nil, nil
	}
	p, ok := outline(abs, st.Load, lopts.Registry)
	if !ok || len(st.Steps) != len(p.Steps) || !stampHolds(st, ws) {
		return nil, nil
	}
	return p, reportNoop(st, opts, start)
}

// holds reports whether loading with lopts would read what r recorded.
func (r *loadRecord) holds(lopts LoadOptions) bool {
	if r.Version != version.String() || !slices.Equal(r.Vars, lopts.Vars) || len(r.VarFiles) != len(lopts.VarFiles) ||
		!slices.Equal(r.Env, varEnv(lopts.Environ)) {
		return false
	}
	if id, ok := executableID(); !ok || id != r.Binary {
		return false
	}
	for i, f := range lopts.VarFiles {
		if abs, err := filepath.Abs(f); err != nil || abs != r.VarFiles[i] {
			return false
		}
	}
	if !allUnchanged(len(r.Files), func(i int) (string, cache.FileID) { return r.Files[i].Path, r.Files[i].ID }) {
		return false
	}
	for _, e := range r.Exists {
		if _, err := os.Stat(e.Path); (err == nil) != e.Exists {
			return false
		}
	}
	for _, g := range r.Globs {
		m, err := filepath.Glob(g.Pattern)
		if err != nil {
			return false
		}
		sort.Strings(m)
		if !slices.Equal(m, g.Matches) {
			return false
		}
	}
	return true
}

// outline makes the pipeline's outline from a load record: false when a
// kind is no longer registered or has another implementation version.
func outline(abs string, r *loadRecord, reg *steps.Registry) (*Pipeline, bool) {
	if reg == nil {
		reg = steps.Default
	}
	p := &Pipeline{File: abs, Dir: filepath.Dir(abs), byAddr: make(map[string]*Step, len(r.Steps)),
		Steps: make([]*Step, 0, len(r.Steps))}
	type kindInfo struct {
		impl   steps.Kind
		schema steps.Schema
	}
	kinds := map[string]kindInfo{}
	all := make([]Step, len(r.Steps))
	for i, o := range r.Steps {
		k, ok := kinds[o.Kind]
		if !ok {
			impl, found := reg.Lookup(o.Kind)
			if !found {
				return nil, false
			}
			k = kindInfo{impl, impl.Schema()}
			kinds[o.Kind] = k
		}
		if k.schema.Version != o.KindVersion {
			return nil, false
		}
		s := &all[i]
		*s = Step{Kind: o.Kind, Name: o.Name, Addr: o.Kind + "." + o.Name, Impl: k.impl, Schema: k.schema, Executor: o.Executor}
		if o.Declared {
			s.Schema.Outputs = o.Outputs
		}
		p.Steps = append(p.Steps, s)
		p.byAddr[s.Addr] = s
	}
	return p, true
}

// reportNoop reports every step of a holding stamp cached and returns the
// summary.
func reportNoop(st *stamp, opts Options, start time.Time) *Summary {
	if !opts.Start.IsZero() {
		start = opts.Start
	}
	sum := &Summary{Cached: len(st.Steps), Stamp: st.Token, Steps: make([]*StepResult, len(st.Steps))}
	for i := range st.Steps {
		r := &st.Steps[i].Result
		r.Seconds, r.Status = 0, StatusCached
		sum.Steps[i] = r
	}
	if opts.OnEvent != nil {
		for _, r := range sum.Steps {
			opts.OnEvent(Event{Type: EventStep, Step: r.Step, Result: r})
		}
	}
	sum.Seconds = time.Since(start).Seconds()
	if opts.OnEvent != nil {
		opts.OnEvent(Event{Type: EventSummary, Summary: sum})
	}
	return sum
}

// dropStamp forgets the no-op stamp before a run that may change things.
func (e *Engine) dropStamp() error {
	if err := os.Remove(e.stampPath()); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove the no-op stamp: %w", err)
	}
	return nil
}

// writeStamp records a successful full run for FastNoop and QuickNoop and
// returns the stamp's token ("" when it wrote none). It writes nothing
// when a source changed too recently to be trusted or is a directory (its
// content can change without its own identity changing).
func (e *Engine) writeStamp(sum *Summary) (string, error) {
	now := stampNow()
	tok := make([]byte, 16)
	if _, err := rand.Read(tok); err != nil {
		return "", err
	}
	st := stamp{Token: hex.EncodeToString(tok), Fingerprint: fingerprint(e.p), Load: e.p.loadRecord()}
	seen := map[string]bool{}
	for _, s := range e.p.Steps {
		for _, ins := range s.Inputs {
			for _, in := range ins {
				if in.From != nil || seen[in.Path] {
					continue
				}
				seen[in.Path] = true
				fi, err := os.Stat(in.Path)
				if err != nil || fi.IsDir() {
					return "", nil
				}
				id := cache.IdentityOf(fi)
				if !id.Settled(now) {
					return "", nil
				}
				st.Sources = append(st.Sources, stampFile{Path: in.Path, ID: id})
			}
		}
	}
	prefix := e.workspace + string(filepath.Separator)
	for _, r := range sum.Steps {
		ss := stampStep{Result: StepResult{Step: r.Step, Key: r.Key, Outputs: r.Outputs}}
		root := filepath.Join(e.buildDir, r.Step)
		for _, o := range r.Outputs {
			p := filepath.Join(e.workspace, filepath.FromSlash(o.Path))
			err := filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				fi, err := os.Stat(path)
				if err != nil {
					return err
				}
				if !strings.HasPrefix(path, prefix) {
					return errors.New("outside the workspace")
				}
				ss.Files = append(ss.Files, stampFile{Path: filepath.ToSlash(path[len(prefix):]), ID: cache.IdentityOf(fi)})
				return nil
			})
			if err != nil || !strings.HasPrefix(p, root) {
				return "", nil
			}
		}
		st.Steps = append(st.Steps, ss)
	}
	if err := writeStampFile(e.stampPath(), &st); err != nil {
		return "", err
	}
	return st.Token, nil
}

// writeStampFile replaces the stamp at path atomically (a temporary file
// renamed into place, so that concurrent no-ops never read half of one).
func writeStampFile(path string, st *stamp) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	_, err = f.Write(encodeStamp(st))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name()) // best effort: the error is reported
	}
	return err
}
