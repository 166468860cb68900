package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/mlbuild/mlbuild/engine"
	"github.com/mlbuild/mlbuild/engine/lockfile"
)

// pipelineLock is one pipeline's view of the lockfile beside it.
type pipelineLock struct {
	path     string // as messages name it: relative to the working directory when inside it
	pipeline string // the pipeline file's base name
	file     *lockfile.File
}

// openLock reads the lockfile beside the pipeline. A damaged lockfile
// fails a strict (--locked) run; otherwise it is reported and the run
// regenerates it.
func openLock(p *engine.Pipeline, strict bool, stderr io.Writer) (*pipelineLock, error) {
	// Beside the pipeline file, or inside the pipeline folder.
	path := displayPath(filepath.Join(p.Dir, lockfile.Name))
	f, err := lockfile.Read(path)
	if err != nil {
		if strict || f == nil {
			return nil, err
		}
		fmt.Fprintf(stderr, "mlbuild: warning: %v\nmlbuild: this run rewrites %s\n", err, path)
	}
	return &pipelineLock{path: path, pipeline: lockName(p), file: f}, nil
}

// lockName is the pipeline's name in its lockfile: the file's base name,
// or for a folder pipeline its own name with a slash ("stages/"), which
// no pipeline file's name has.
func lockName(p *engine.Pipeline) string {
	if p.Dir == p.File {
		return filepath.Base(p.File) + "/"
	}
	return filepath.Base(p.File)
}

// locked converts the pipeline's entries for the engine (never nil, so
// that a step missing from the lockfile is reported).
func (l *pipelineLock) locked() map[string]engine.LockedStep {
	out := map[string]engine.LockedStep{}
	for addr, st := range l.file.Pipeline(l.pipeline) {
		ls := engine.LockedStep{Key: st.Key, Outputs: map[string]string{}}
		for name, o := range st.Outputs {
			ls.Outputs[name] = o.Digest
		}
		out[addr] = ls
	}
	return out
}

// actual is what a run built, as lockfile entries.
func actual(sum *engine.Summary) map[string]lockfile.Step {
	out := map[string]lockfile.Step{}
	for _, r := range sum.Steps {
		if r.Status != engine.StatusRan && r.Status != engine.StatusCached {
			continue
		}
		st := lockfile.Step{Key: r.Key, Outputs: map[string]lockfile.Output{}}
		for name, o := range r.Outputs {
			st.Outputs[name] = lockfile.Output{Digest: o.Digest, Size: o.Size}
		}
		out[r.Step] = st
	}
	return out
}

// merged is the pipeline's entries updated with a run's; a run of some
// targets only keeps the other steps' entries.
func (l *pipelineLock) merged(sum *engine.Summary, partial bool) map[string]lockfile.Step {
	now := actual(sum)
	if !partial {
		return now
	}
	out := map[string]lockfile.Step{}
	for addr, st := range l.file.Pipeline(l.pipeline) {
		out[addr] = st
	}
	for addr, st := range now {
		out[addr] = st
	}
	return out
}

// update records a successful run in the lockfile.
func (l *pipelineLock) update(sum *engine.Summary, partial bool) error {
	l.file.SetPipeline(l.pipeline, l.merged(sum, partial))
	if err := l.file.Write(l.path); err != nil {
		return fmt.Errorf("cannot write the lockfile %s: %w (the build itself succeeded and is cached: a rerun once it can be written records it)", l.path, unwrapPathError(err))
	}
	return nil
}

// displayPath is path relative to the working directory when it is inside
// it, else path.
func displayPath(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	rel, err := filepath.Rel(wd, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return path
	}
	return rel
}

// check lists how a --locked run differs from the lockfile, one sentence
// per problem.
func (l *pipelineLock) check(sum *engine.Summary, partial bool) []string {
	var out []string
	for _, r := range sum.Steps {
		if r.Status == engine.StatusFailed {
			out = append(out, r.Step+": "+r.Error)
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, m := range lockfile.Diff(l.file.Pipeline(l.pipeline), l.merged(sum, partial)) {
		out = append(out, m.String())
	}
	return out
}

// The lock memo lets a no-op skip the lockfile: after a run records its
// results in the lockfile (or checks them against it), a small file in the
// cache's noop/ folder keeps the engine's stamp token for those results
// and the SHA-256 of the lockfile's bytes. A later run answered from the
// same stamp (the same results) that finds the lockfile with the same
// digest knows that updating it would write the same bytes and that
// --locked's check would pass, so it neither parses nor writes the file.

// lockMemoPath is where the memo of the lockfile beside pipeline (absolute)
// lives for a run in workspace ws.
func lockMemoPath(ws, cacheDir, pipeline string) string {
	lock := filepath.Join(filepath.Dir(pipeline), lockfile.Name)
	sum := sha256.Sum256([]byte(lock + "\x00" + filepath.Base(pipeline)))
	return filepath.Join(engine.CacheDir(ws, cacheDir), "noop", "lock-"+hex.EncodeToString(sum[:16]))
}

// lockMemo is a run's view of the memo.
type lockMemo struct {
	path string // "" when the workspace cannot be found
	lock string // the lockfile's path
}

func newLockMemo(workspace, pipeline string) lockMemo {
	ws := workspace
	if ws == "" {
		ws = "."
	}
	ws, err := filepath.Abs(ws)
	abs, err2 := filepath.Abs(pipeline)
	if err != nil || err2 != nil {
		return lockMemo{}
	}
	return lockMemo{path: lockMemoPath(ws, "", abs), lock: filepath.Join(filepath.Dir(abs), lockfile.Name)}
}

// line is the memo's content for a stamp token and the lockfile as it is
// now ("" when it cannot be read).
func (m lockMemo) line(token string) string {
	f, err := os.Open(m.lock)
	if err != nil {
		return ""
	}
	defer func() { _ = f.Close() }() // read only: nothing to lose
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	return token + " " + hex.EncodeToString(h.Sum(nil)) + "\n"
}

// holds reports whether the lockfile records exactly the results of the
// stamp token names (sum.Stamp).
func (m lockMemo) holds(token string) bool {
	if m.path == "" || token == "" {
		return false
	}
	memo, err := os.ReadFile(m.path)
	if err != nil {
		return false
	}
	line := m.line(token)
	return line != "" && string(memo) == line
}

// record notes that the lockfile now records the results of token; a
// memo that cannot be written only costs the next no-op a parse.
func (m lockMemo) record(token string) {
	if m.path == "" || token == "" {
		return
	}
	line := m.line(token)
	if line == "" || os.MkdirAll(filepath.Dir(m.path), 0o755) != nil {
		return
	}
	tmp := m.path + ".tmp"
	if os.WriteFile(tmp, []byte(line), 0o644) == nil {
		_ = os.Rename(tmp, m.path) // as above: the next no-op parses the lockfile
	}
}
