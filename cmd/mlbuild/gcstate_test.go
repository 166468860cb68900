package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cache gc removes the workspace's checkpoint folders that nothing wrote
// to for --older-than, and keeps the others.
func TestCacheGCRemovesStaleCheckpoints(t *testing.T) {
	w := newWorkspace(t)
	state := filepath.Join(w.dir, "build", ".state")
	old, recent := filepath.Join(state, "oldkey"), filepath.Join(state, "recentkey")
	for _, d := range []string{old, recent} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	long := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(old, long, long); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := w.mlbuild("cache", "gc", "--older-than", "1d")
	if err != nil {
		t.Fatalf("cache gc: %v\n%s", err, stderr)
	}
	if !strings.Contains(out, "removed 1 stale checkpoint folders") {
		t.Errorf("gc output:\n%s", out)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("stale %s still there: %v", old, err)
	}
	if _, err := os.Stat(recent); err != nil {
		t.Errorf("recent %s removed: %v", recent, err)
	}
}
