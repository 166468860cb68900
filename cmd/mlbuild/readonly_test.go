package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mlbuild/mlbuild/cache"
)

// While a run holds the cache, the commands that only read it fail at once
// with a message that names the holder once, instead of waiting for it.
func TestReadOnlyCommandsDoNotWaitForAWriter(t *testing.T) {
	w := newWorkspace(t)
	holder, err := cache.Open(context.Background(), filepath.Join(w.dir, ".mlbuild", "cache"), cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore(t, holder)
	for _, args := range [][]string{
		{"plan", "twainbot.hcl"},
		{"explain", "twainbot.hcl", "split.persona"},
		{"show", "twainbot.hcl", "split.persona"},
		{"cache", "stats"},
	} {
		_, _, err := w.mlbuild(args...)
		if !errors.Is(err, cache.ErrLocked) {
			t.Errorf("%s while the cache is held: %v", strings.Join(args, " "), err)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, "pid "+strconv.Itoa(os.Getpid())) || strings.Count(msg, "another") != 1 || !strings.Contains(msg, "do not wait") {
			t.Errorf("%s: message %q should name the holder once and say it does not wait", strings.Join(args, " "), msg)
		}
	}
}

func closeStore(t *testing.T, s *cache.Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Error(err)
	}
}
