package engine

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/mlbuild/mlbuild/cache"
)

// OutputCheck compares one output of a re-executed step with the cached one.
type OutputCheck struct {
	Output  string `json:"output"`
	Cached  string `json:"cached"`
	Rebuilt string `json:"rebuilt"`
	Same    bool   `json:"same"`
	// FirstDiff locates the first difference: a file of a directory
	// output, or a byte offset and line of a file.
	FirstDiff string `json:"first_diff,omitempty"`
}

// VerifyResult says whether a step reproduced its cached outputs.
type VerifyResult struct {
	Step         string        `json:"step"`
	Key          string        `json:"key"`
	Reproducible bool          `json:"reproducible"`
	Outputs      []OutputCheck `json:"outputs"`
	Seconds      float64       `json:"seconds"`
}

// Verify builds the selected steps (from the cache where it can), then
// re-executes each of the given steps (default: the selected ones) ignoring
// the cache and compares the new outputs' digests with the cached ones.
// Nothing it re-executes is stored or installed.
func (e *Engine) Verify(ctx context.Context, addrs []string) ([]VerifyResult, error) {
	for _, a := range addrs {
		if _, ok := e.p.byAddr[a]; !ok {
			return nil, fmt.Errorf("no step %s in %s%s", a, displayName(e.p.File), suggest(a, e.p.addrs()))
		}
	}
	if len(addrs) > 0 && len(e.opts.Targets) == 0 {
		e.opts.Targets = addrs
	}
	sum, err := e.Run(ctx)
	if err != nil {
		return nil, fmt.Errorf("build before verifying: %w", err)
	}
	results := map[string]*StepResult{}
	for _, r := range sum.Steps {
		results[r.Step] = r
	}
	want := addrs
	if len(want) == 0 {
		for _, s := range e.selected() {
			want = append(want, s.Addr)
		}
	}
	if err := os.MkdirAll(e.tmpDir(), 0o755); err != nil {
		return nil, err
	}
	defer os.RemoveAll(e.tmpDir())
	var out []VerifyResult
	for _, addr := range want {
		s := e.p.byAddr[addr]
		r, err := e.verifyStep(ctx, s, results[addr].Key)
		if err != nil {
			return out, fmt.Errorf("verify %s: %w", addr, err)
		}
		out = append(out, *r)
	}
	return out, nil
}

func (e *Engine) verifyStep(ctx context.Context, s *Step, key string) (*VerifyResult, error) {
	ar, ok, err := e.store.GetAction(key)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("its result (key %s) is not in the cache", shortDigest(key))
	}
	res := &VerifyResult{Step: s.Addr, Key: key, Reproducible: true}
	outDir, err := os.MkdirTemp(e.tmpDir(), s.Addr+"-verify-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(outDir)
	e.emit(Event{Type: EventStarted, Step: s.Addr})
	start := time.Now()
	// An empty state folder: verify always runs from scratch.
	if _, _, err := e.invoke(ctx, s, ar.Components, outDir, ""); err != nil {
		return nil, err
	}
	outs, err := e.collectOutputs(s, outDir, false)
	if err != nil {
		return nil, err
	}
	res.Seconds = time.Since(start).Seconds()
	names := make([]string, 0, len(ar.Outputs))
	for n := range ar.Outputs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		old, cur := ar.Outputs[n], outs[n]
		c := OutputCheck{Output: n, Cached: old.Digest, Rebuilt: cur.Digest, Same: old.Digest == cur.Digest}
		if !c.Same {
			res.Reproducible = false
			p := filepath.Join(outDir, filepath.FromSlash(cur.Path))
			c.FirstDiff = e.firstDifference(old, p)
		}
		res.Outputs = append(res.Outputs, c)
	}
	return res, nil
}

// firstDifference locates where a rebuilt output (at path) first differs
// from the cached one.
func (e *Engine) firstDifference(old cache.OutputRef, path string) string {
	if !old.Dir {
		return e.firstDifferentByte(old.Digest, path)
	}
	m, err := e.store.Manifest(old.Digest)
	if err != nil {
		return "cached manifest unreadable: " + err.Error()
	}
	cur, err := e.plain.Digest(path)
	if err != nil || cur.Manifest == nil {
		return fmt.Sprintf("rebuilt tree unreadable: %v", err)
	}
	oldFiles := map[string]string{}
	for _, ent := range m.Entries {
		oldFiles[ent.Path] = ent.Digest
	}
	newFiles := map[string]string{}
	for _, ent := range cur.Manifest.Entries {
		newFiles[ent.Path] = ent.Digest
	}
	var paths []string
	for p := range oldFiles {
		paths = append(paths, p)
	}
	for p := range newFiles {
		if _, ok := oldFiles[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	for _, p := range paths {
		o, inOld := oldFiles[p]
		n, inNew := newFiles[p]
		switch {
		case !inNew:
			return p + ": missing from the rebuilt output"
		case !inOld:
			return p + ": only in the rebuilt output"
		case o != n:
			if o == "" || n == "" {
				return p + ": a file in one, a folder in the other"
			}
			return p + ": " + e.firstDifferentByte(o, filepath.Join(path, filepath.FromSlash(p)))
		}
	}
	return "the manifests differ in file modes"
}

// firstDifferentByte compares a cached blob with a file, streaming both.
func (e *Engine) firstDifferentByte(digest, path string) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer func() { _ = f.Close() }() // read-only
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(e.store.WriteBlob(digest, pw)) }()
	defer pr.Close()
	a, b := bufio.NewReader(pr), bufio.NewReader(f)
	var off int64
	line := 1
	for {
		x, errA := a.ReadByte()
		y, errB := b.ReadByte()
		switch {
		case errA != nil && errB != nil:
			return "contents equal (only metadata differs)"
		case errA != nil:
			return fmt.Sprintf("byte %d (line %d): the rebuilt file is longer", off, line)
		case errB != nil:
			return fmt.Sprintf("byte %d (line %d): the rebuilt file is shorter", off, line)
		case x != y:
			return fmt.Sprintf("byte %d (line %d)", off, line)
		}
		if x == '\n' {
			line++
		}
		off++
	}
}
