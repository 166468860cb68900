package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mlbuild/mlbuild/cache"
)

// Checkpoint folders of keys that never run again used to stay for ever:
// CollectState removes those nothing wrote to for the given age and keeps
// the recent ones.
func TestCollectStaleState(t *testing.T) {
	ws := t.TempDir()
	state := filepath.Join(ws, BuildDirName, ".state")
	old, recent := filepath.Join(state, "oldkey"), filepath.Join(state, "recentkey")
	for _, d := range []string{old, recent} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "checkpoint.json"), []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	long := time.Now().Add(-10 * 24 * time.Hour)
	for _, p := range []string{filepath.Join(old, "checkpoint.json"), old} {
		if err := os.Chtimes(p, long, long); err != nil {
			t.Fatal(err)
		}
	}
	// The recent folder's own time is old, but a file in it was written
	// now: it is in use.
	if err := os.Chtimes(recent, long, long); err != nil {
		t.Fatal(err)
	}

	dry, err := CollectState(context.Background(), ws, StateGCOptions{OlderThan: 24 * time.Hour, DryRun: true})
	if err != nil || dry.Removed != 1 || dry.Kept != 1 || dry.Bytes != 2 {
		t.Fatalf("dry run: %+v %v", dry, err)
	}
	if _, err := os.Stat(old); err != nil {
		t.Fatalf("the dry run removed %s: %v", old, err)
	}
	res, err := CollectState(context.Background(), ws, StateGCOptions{OlderThan: 24 * time.Hour})
	if err != nil || res.Removed != 1 || res.Kept != 1 {
		t.Fatalf("gc: %+v %v", res, err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Fatalf("stale %s still there: %v", old, err)
	}
	if _, err := os.Stat(filepath.Join(recent, "checkpoint.json")); err != nil {
		t.Fatalf("recent checkpoints removed: %v", err)
	}
	// The default age (StateMaxAge) keeps what is younger.
	if res, err := CollectState(context.Background(), ws, StateGCOptions{}); err != nil || res.Removed != 0 || res.Kept != 1 {
		t.Fatalf("default age: %+v %v", res, err)
	}
}

// CollectState takes the workspace lock: it never removes the checkpoints
// of a run in progress.
func TestCollectStateWaitsForTheWorkspace(t *testing.T) {
	env := newEnv(t, "step \"concat\" \"a\" {\n  sources = [\"a.txt\"]\n}\n")
	env.write("a.txt", "x")
	if err := os.MkdirAll(filepath.Join(env.dir, BuildDirName, ".state", "k"), 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := env.load()
	if err != nil {
		t.Fatal(err)
	}
	e, err := Open(context.Background(), p, Options{Workspace: env.dir})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, e)
	if _, err := CollectState(context.Background(), env.dir, StateGCOptions{OlderThan: time.Nanosecond, NoWait: true}); !errors.Is(err, cache.ErrLocked) {
		t.Fatalf("CollectState while a run holds the workspace: %v", err)
	}
}
