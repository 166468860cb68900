package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/mlbuild/mlbuild/cache"
)

const onePipeline = `
step "concat" "a" {
  sources = ["data/a.txt"]
}

step "tree" "model" {
  input = concat.a.output
}
`

// runWarn runs the pipeline, returning the result and the warnings.
func (env *testEnv) runWarn(opts Options) (runResult, []string) {
	env.t.Helper()
	var warnings []string
	opts.OnEvent = func(ev Event) {
		if ev.Type == EventWarning {
			warnings = append(warnings, ev.Message)
		}
	}
	return env.run(opts), warnings
}

// withStore opens the workspace's cache (no engine may be open).
func (env *testEnv) withStore(f func(s *cache.Store)) {
	env.t.Helper()
	s, err := cache.Open(context.Background(), CacheDir(env.dir, ""), cache.Options{NoWait: true})
	if err != nil {
		env.t.Fatal(err)
	}
	defer closeOK(env.t, s)
	f(s)
}

func stepKey(t *testing.T, r runResult, step string) string {
	t.Helper()
	for _, s := range r.sum.Steps {
		if s.Step == step {
			return s.Key
		}
	}
	t.Fatalf("no step %s", step)
	return ""
}

// moveOutput gives the "output" output of ar another path.
func moveOutput(ar *cache.ActionResult, path string) {
	o := ar.Outputs["output"]
	o.Path = path
	ar.Outputs["output"] = o
}

// TestInvalidLocalResultIsRebuilt: a local action result whose outputs are
// not the kind's (renamed, moved, doubled, of the wrong type) is discarded
// with a warning and the step rebuilt, instead of being installed.
func TestInvalidLocalResultIsRebuilt(t *testing.T) {
	for name, tamper := range map[string]func(ar *cache.ActionResult){
		"renamed": func(ar *cache.ActionResult) {
			ar.Outputs["renamed"] = ar.Outputs["output"]
			delete(ar.Outputs, "output")
		},
		"moved":          func(ar *cache.ActionResult) { moveOutput(ar, "other.txt") },
		"nested":         func(ar *cache.ActionResult) { moveOutput(ar, "sub/out.txt") },
		"dotdot":         func(ar *cache.ActionResult) { moveOutput(ar, "../concat.b/out.txt") },
		"absolute":       func(ar *cache.ActionResult) { moveOutput(ar, "/tmp/out.txt") },
		"duplicate path": func(ar *cache.ActionResult) { moveOutput(ar, ar.Outputs["report"].Path) },
		"extra output": func(ar *cache.ActionResult) {
			ar.Outputs["extra"] = ar.Outputs["report"]
		},
		"missing output": func(ar *cache.ActionResult) {
			delete(ar.Outputs, "report")
		},
		"dir for file": func(ar *cache.ActionResult) {
			o := ar.Outputs["output"]
			o.Dir = true
			ar.Outputs["output"] = o
		},
	} {
		t.Run(name, func(t *testing.T) {
			env := newEnv(t, onePipeline)
			env.write("data/a.txt", "alpha\n")
			first := env.run(Options{})
			wantStatus(t, first, map[string]Status{"concat.a": StatusRan, "tree.model": StatusRan})
			key := stepKey(t, first, "concat.a")
			env.withStore(func(s *cache.Store) {
				ar, ok, err := s.GetAction(key)
				if err != nil || !ok {
					t.Fatalf("GetAction: %v %v", ok, err)
				}
				tamper(ar)
				if err := s.PutAction(ar); err != nil {
					t.Fatal(err)
				}
			})
			if err := os.RemoveAll(filepath.Join(env.dir, BuildDirName)); err != nil {
				t.Fatal(err)
			}
			if pe := env.plan()["concat.a"]; pe.Action != ActionRun || len(pe.Reasons) != 1 || !strings.Contains(pe.Reasons[0], "cached result is invalid") {
				t.Errorf("plan shows an invalid result as %s: %q", pe.Action, pe.Reasons)
			}
			second, warnings := env.runWarn(Options{})
			wantStatus(t, second, map[string]Status{"concat.a": StatusRan, "tree.model": StatusCached})
			if len(warnings) != 1 || !strings.Contains(warnings[0], "concat.a") || !strings.Contains(warnings[0], "invalid result") {
				t.Errorf("warnings: %q", warnings)
			}
			if got := env.read("build/concat.a/out.txt"); got != "1:alpha\n" {
				t.Errorf("out.txt = %q", got)
			}
			// The rebuilt result replaced the bad one: the next run is clean.
			third, warnings := env.runWarn(Options{})
			wantStatus(t, third, map[string]Status{"concat.a": StatusCached, "tree.model": StatusCached})
			if len(warnings) != 0 {
				t.Errorf("warnings on the third run: %q", warnings)
			}
		})
	}
}

// fakeRemote serves one action result (already-downloaded blobs aside).
type fakeRemote struct {
	results map[string]*cache.ActionResult
	pulls   int
}

func (f *fakeRemote) Pull(ctx context.Context, key string) (*cache.ActionResult, TransferStats, error) {
	f.pulls++
	ar := f.results[key]
	if ar == nil {
		return nil, TransferStats{}, nil
	}
	c := *ar
	return &c, TransferStats{}, nil
}

func (f *fakeRemote) Push(ctx context.Context, ar *cache.ActionResult) (TransferStats, error) {
	return TransferStats{}, nil
}
func (f *fakeRemote) Unavailable(err error) bool { return false }
func (f *fakeRemote) String() string             { return "fake://remote" }

// TestInvalidRemoteResultIsDiscarded: a remote result with outputs the kind
// does not produce is neither installed nor recorded locally; the step is
// rebuilt with a warning naming the remote and the step. A valid one is
// used.
func TestInvalidRemoteResultIsDiscarded(t *testing.T) {
	env := newEnv(t, onePipeline)
	env.write("data/a.txt", "alpha\n")
	first := env.run(Options{})
	key := stepKey(t, first, "concat.a")
	var good *cache.ActionResult
	blobs := []string{env.read("build/concat.a/out.txt"), env.read("build/concat.a/report.json")}
	env.withStore(func(s *cache.Store) {
		ar, _, err := s.GetAction(key)
		if err != nil {
			t.Fatal(err)
		}
		good = ar
	})

	runWith := func(r Remote) (runResult, []string) {
		t.Helper()
		// A fresh cache each time: everything comes from the remote or is
		// rebuilt. The blobs the good result names are put back first.
		cacheDir := filepath.Join(t.TempDir(), "cache")
		if err := os.RemoveAll(filepath.Join(env.dir, BuildDirName)); err != nil {
			t.Fatal(err)
		}
		p, err := env.load()
		if err != nil {
			t.Fatal(err)
		}
		var warnings []string
		e, err := Open(context.Background(), p, Options{Workspace: env.dir, CacheDir: cacheDir, OnEvent: func(ev Event) {
			if ev.Type == EventWarning {
				warnings = append(warnings, ev.Message)
			}
		}})
		if err != nil {
			t.Fatal(err)
		}
		defer closeOK(t, e)
		for _, b := range blobs {
			// What a real Pull would have downloaded.
			if _, err := e.Store().PutBytes([]byte(b)); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.UseRemote(r, RemoteReadOnly); err != nil {
			t.Fatal(err)
		}
		sum, err := e.Run(context.Background())
		res := runResult{sum: sum, err: err, status: map[string]Status{}}
		for _, r := range sum.Steps {
			res.status[r.Step] = r.Status
		}
		if ar, ok, _ := e.Store().GetAction(key); ok && validateResult(p.Steps[0], key, ar) != nil {
			t.Error("an invalid remote result was recorded locally")
		}
		return res, warnings
	}

	bad := *good
	bad.Outputs = map[string]cache.OutputRef{"output": good.Outputs["output"], "report": good.Outputs["report"]}
	o := bad.Outputs["output"]
	o.Path = "../../escape.txt"
	bad.Outputs["output"] = o
	res, warnings := runWith(&fakeRemote{results: map[string]*cache.ActionResult{key: &bad}})
	wantStatus(t, res, map[string]Status{"concat.a": StatusRan})
	if len(warnings) != 1 || !strings.Contains(warnings[0], "fake://remote") || !strings.Contains(warnings[0], "concat.a") {
		t.Errorf("warnings: %q", warnings)
	}
	if _, err := os.Stat(filepath.Join(env.dir, "escape.txt")); err == nil {
		t.Error("the invalid result was installed")
	}

	res, warnings = runWith(&fakeRemote{results: map[string]*cache.ActionResult{key: good}})
	wantStatus(t, res, map[string]Status{"concat.a": StatusCached})
	if len(warnings) != 0 {
		t.Errorf("a valid remote result drew warnings: %q", warnings)
	}
}

// TestDamagedBlobIsRebuilt: a blob of the local store whose content no
// longer matches its digest (a disk fault) is discarded with a warning and
// the step rebuilt; the run succeeds, as docs/cache.md says.
func TestDamagedBlobIsRebuilt(t *testing.T) {
	for _, output := range []string{"concat.a", "tree.model"} {
		t.Run(output, func(t *testing.T) {
			env := newEnv(t, onePipeline)
			env.write("data/a.txt", "alpha\n")
			first := env.run(Options{})
			var digest string
			for _, s := range first.sum.Steps {
				if s.Step != output {
					continue
				}
				for _, o := range s.Outputs {
					digest = o.Digest
					if o.Dir {
						// Damage a file inside the tree, not its manifest.
						env.withStore(func(st *cache.Store) {
							m, err := st.Manifest(o.Digest)
							if err != nil {
								t.Fatal(err)
							}
							for _, ent := range m.Entries {
								if !ent.Dir {
									digest = ent.Digest
								}
							}
						})
					}
					break
				}
			}
			// Damage the blob's first chunk in the database itself.
			db, err := badger.Open(badger.DefaultOptions(filepath.Join(CacheDir(env.dir, ""), "db")).WithLogger(nil))
			if err != nil {
				t.Fatal(err)
			}
			err = db.Update(func(txn *badger.Txn) error {
				return txn.Set([]byte(fmt.Sprintf("c/%s/%08x", digest, 0)), []byte("bit rot"))
			})
			if cerr := db.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := os.RemoveAll(filepath.Join(env.dir, BuildDirName)); err != nil {
				t.Fatal(err)
			}
			second, warnings := env.runWarn(Options{})
			wantStatus(t, second, map[string]Status{output: StatusRan})
			if len(warnings) != 1 || !strings.Contains(warnings[0], "damaged") || !strings.Contains(warnings[0], output) {
				t.Errorf("warnings: %q", warnings)
			}
			third := env.run(Options{})
			wantStatus(t, third, map[string]Status{"concat.a": StatusCached, "tree.model": StatusCached})
		})
	}
}
