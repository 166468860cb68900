package engine

import (
	"bytes"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/mlbuild/mlbuild/cache"
	"github.com/mlbuild/mlbuild/internal/version"
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

// stampNow is the clock writeStamp judges settled sources by (tests move
// it forward instead of waiting out the racy window).
var stampNow = time.Now

// stamp is what a no-op check compares against.
type stamp struct {
	Fingerprint string
	Sources     []stampFile
	Steps       []stampStep
}

type stampFile struct {
	Path string
	ID   cache.FileID
}

type stampStep struct {
	Result StepResult
	Files  []stampFile
}

// fingerprint hashes everything about the evaluated pipeline that enters
// keys, except input content (which the stamp's file identities cover).
func fingerprint(p *Pipeline) string {
	h := sha256.New()
	fmt.Fprintf(h, "mlbuild %s\n", version.String())
	for _, s := range p.Steps {
		fmt.Fprintf(h, "step %s %s %s\n", s.Addr, s.Kind, s.Schema.Version)
		names := make([]string, 0, len(s.KeyConfig))
		for n := range s.KeyConfig {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(h, "config %s %s\n", n, s.KeyConfig[n])
		}
		roles := make([]string, 0, len(s.Inputs))
		for r := range s.Inputs {
			roles = append(roles, r)
		}
		sort.Strings(roles)
		for _, r := range roles {
			for _, in := range s.Inputs[r] {
				from := ""
				if in.From != nil {
					from = in.From.Addr + "." + in.Output
				}
				fmt.Fprintf(h, "input %s %q %q %q\n", r, in.Name, in.Path, from)
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

// unchanged reports whether every recorded file still has its identity.
func unchanged(files []stampFile) bool {
	for _, f := range files {
		fi, err := os.Stat(f.Path)
		if err != nil || cache.IdentityOf(fi) != f.ID {
			return false
		}
	}
	return true
}

// FastNoop reports, without opening the cache, whether a full run of the
// pipeline would run nothing, restore nothing and read no input. When it
// would, FastNoop reports each step as cached through opts.OnEvent, ends
// with the summary, and returns it; otherwise it returns nil and the caller
// runs as usual. It applies only to plain runs of every step (no targets,
// no --rebuild).
func FastNoop(p *Pipeline, opts Options) *Summary {
	start := time.Now()
	if len(opts.Targets) > 0 || len(opts.Rebuild) > 0 {
		return nil
	}
	ws := opts.Workspace
	if ws == "" {
		ws, _ = os.Getwd()
	}
	ws, err := filepath.Abs(ws)
	if err != nil {
		return nil
	}
	id := pipelineID(ws, p.File)
	b, err := os.ReadFile(stampPath(CacheDir(ws, opts.CacheDir), ws, id))
	if err != nil {
		return nil
	}
	var st stamp
	if gob.NewDecoder(bytes.NewReader(b)).Decode(&st) != nil || st.Fingerprint != fingerprint(p) || len(st.Steps) != len(p.Steps) {
		return nil
	}
	if !unchanged(st.Sources) {
		return nil
	}
	for _, s := range st.Steps {
		if !unchanged(s.Files) {
			return nil
		}
	}
	sum := &Summary{Cached: len(st.Steps)}
	emit := func(ev Event) {
		if opts.OnEvent != nil {
			opts.OnEvent(ev)
		}
	}
	for i := range st.Steps {
		r := &st.Steps[i].Result
		r.Seconds, r.Status = 0, StatusCached
		sum.Steps = append(sum.Steps, r)
		emit(Event{Type: EventStep, Step: r.Step, Result: r})
	}
	sum.Seconds = time.Since(start).Seconds()
	emit(Event{Type: EventSummary, Summary: sum})
	return sum
}

// dropStamp forgets the no-op stamp before a run that may change things.
func (e *Engine) dropStamp() error {
	if err := os.Remove(e.stampPath()); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove the no-op stamp: %w", err)
	}
	return nil
}

// writeStamp records a successful full run for FastNoop. It writes nothing
// when a source changed too recently to be trusted or is a directory (its
// content can change without its own identity changing).
func (e *Engine) writeStamp(sum *Summary) error {
	now := stampNow()
	st := stamp{Fingerprint: fingerprint(e.p)}
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
					return nil
				}
				id := cache.IdentityOf(fi)
				if !id.Settled(now) {
					return nil
				}
				st.Sources = append(st.Sources, stampFile{Path: in.Path, ID: id})
			}
		}
	}
	for _, r := range sum.Steps {
		ss := stampStep{Result: *r}
		ss.Result.Restored, ss.Result.Source, ss.Result.Reason = false, "", ""
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
				ss.Files = append(ss.Files, stampFile{Path: path, ID: cache.IdentityOf(fi)})
				return nil
			})
			if err != nil || !strings.HasPrefix(p, root) {
				return nil
			}
		}
		st.Steps = append(st.Steps, ss)
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&st); err != nil {
		return err
	}
	path := e.stampPath()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
