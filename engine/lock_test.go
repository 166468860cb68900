package engine

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mlbuild/mlbuild/cache"
)

// cancelOnLog is a slog handler that cancels a context on the first record
// (the "waiting: ..." notice) and keeps its message.
type cancelOnLog struct {
	cancel context.CancelFunc
	msgs   chan string
}

func (h cancelOnLog) Enabled(context.Context, slog.Level) bool { return true }
func (h cancelOnLog) Handle(_ context.Context, r slog.Record) error {
	select {
	case h.msgs <- r.Message:
	default:
	}
	h.cancel()
	return nil
}
func (h cancelOnLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h cancelOnLog) WithGroup(string) slog.Handler      { return h }

// Two runs in one workspace with different caches used to share (and
// delete each other's) build/.tmp: the workspace has a lock of its own.
func TestWorkspaceIsLockedWhateverTheCache(t *testing.T) {
	env := newEnv(t, "step \"concat\" \"a\" {\n  sources = [\"a.txt\"]\n}\n")
	env.write("a.txt", "x")
	p, err := env.load()
	if err != nil {
		t.Fatal(err)
	}
	e, err := Open(context.Background(), p, Options{Workspace: env.dir, CacheDir: filepath.Join(t.TempDir(), "cache1")})
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "cache2")
	_, err = Open(context.Background(), p, Options{Workspace: env.dir, CacheDir: other, NoWait: true})
	if !errors.Is(err, cache.ErrLocked) {
		t.Fatalf("second open of the workspace with another cache: %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "the workspace "+env.dir) || !strings.Contains(msg, "pid "+strconv.Itoa(os.Getpid())) || strings.Count(msg, "another") != 1 {
		t.Errorf("refusal %q should name the workspace and the holder, once", msg)
	}
	// Without NoWait it waits, with a notice naming the workspace.
	ctx, cancel := context.WithCancel(context.Background())
	h := cancelOnLog{cancel: cancel, msgs: make(chan string, 1)}
	_, err = Open(ctx, p, Options{Workspace: env.dir, CacheDir: other, Log: slog.New(h)})
	if err == nil || !strings.Contains(err.Error(), "gave up waiting") {
		t.Fatalf("waiting open: %v", err)
	}
	if msg := <-h.msgs; !strings.HasPrefix(msg, "waiting: ") || !strings.Contains(msg, "the workspace "+env.dir) {
		t.Errorf("waiting notice %q", msg)
	}
	// The refused opens took nothing: the first engine still runs, and
	// once it is closed the workspace is free.
	sum, err := e.Run(context.Background())
	if err != nil || sum.Ran != 1 {
		t.Fatalf("run of the holder: %v %+v", err, sum)
	}
	closeOK(t, e)
	e2, err := Open(context.Background(), p, Options{Workspace: env.dir, CacheDir: other, NoWait: true})
	if err != nil {
		t.Fatalf("open after the holder closed: %v", err)
	}
	closeOK(t, e2)
}

// Read-only commands (plan, explain, show) neither wait for the cache's
// writer nor take the workspace lock.
func TestReadOnlyOpenDoesNotWait(t *testing.T) {
	env := newEnv(t, "step \"concat\" \"a\" {\n  sources = [\"a.txt\"]\n}\n")
	env.write("a.txt", "x")
	wantStatus(t, env.run(Options{}), map[string]Status{"concat.a": StatusRan})
	p, err := env.load()
	if err != nil {
		t.Fatal(err)
	}
	writer, err := Open(context.Background(), p, Options{Workspace: env.dir})
	if err != nil {
		t.Fatal(err)
	}
	// Should the read-only open wait after all, its notice cancels it and
	// the error says "gave up waiting" instead of failing the test by hanging.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err = Open(ctx, p, Options{Workspace: env.dir, ReadOnly: true, Log: slog.New(cancelOnLog{cancel: cancel, msgs: make(chan string, 1)})})
	if !errors.Is(err, cache.ErrLocked) || strings.Contains(err.Error(), "gave up") {
		t.Fatalf("read-only open while a writer holds the cache: %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "pid "+strconv.Itoa(os.Getpid())) || !strings.Contains(msg, "do not wait") || strings.Count(msg, "another") != 1 {
		t.Errorf("message %q should name the holder once and say that the command does not wait", msg)
	}
	closeOK(t, writer)

	// With the workspace busy but its cache free (the writer uses another
	// cache), a read-only open works: it takes no workspace lock.
	busy, err := Open(context.Background(), p, Options{Workspace: env.dir, CacheDir: filepath.Join(t.TempDir(), "other")})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, busy)
	ro, err := Open(context.Background(), p, Options{Workspace: env.dir, ReadOnly: true, NoWait: true})
	if err != nil {
		t.Fatalf("read-only open while the workspace is busy: %v", err)
	}
	defer closeOK(t, ro)
	plan, err := ro.Plan()
	if err != nil || len(plan) != 1 || plan[0].Action != ActionCached {
		t.Fatalf("plan: %v %+v", err, plan)
	}
	if _, err := ro.Run(context.Background()); err == nil {
		t.Fatal("a read-only engine ran steps")
	}
}
