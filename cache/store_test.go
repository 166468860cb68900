package cache

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// signalHandler is a slog handler that reports each record's message on a
// channel.
type signalHandler struct{ ch chan string }

func (h signalHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h signalHandler) Handle(_ context.Context, r slog.Record) error {
	h.ch <- r.Message
	return nil
}
func (h signalHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h signalHandler) WithGroup(string) slog.Handler      { return h }

func TestLockNoWait(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	_, err := Open(context.Background(), dir, Options{NoWait: true})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v", err)
	}
	if !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Errorf("error does not name the holder's pid: %v", err)
	}
	// Said once: not "another mlbuild process …: another mlbuild process (pid N) holds the lock".
	if msg := err.Error(); strings.Count(msg, "another") != 1 || strings.Count(msg, "pid") != 1 || !strings.Contains(msg, dir) {
		t.Errorf("error %q should name the holder and the cache once", msg)
	}
	var le *LockedError
	if !errors.As(err, &le) || le.PID != os.Getpid() {
		t.Errorf("error %v is not a *LockedError naming pid %d", err, os.Getpid())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	s2, err := Open(context.Background(), dir, Options{NoWait: true})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestLockWaitsForClose(t *testing.T) {
	dir := t.TempDir()
	s1 := openTest(t, dir)
	d := mustPut(t, s1, []byte("written by the first holder"))

	notices := make(chan string, 1)
	type result struct {
		s   *Store
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := Open(context.Background(), dir, Options{Log: slog.New(signalHandler{notices})})
		done <- result{s, err}
	}()
	msg := <-notices // the second Open is now waiting
	if !strings.Contains(msg, "pid "+strconv.Itoa(os.Getpid())) || !strings.Contains(msg, dir) {
		t.Errorf("waiting notice %q does not name the holder and the cache", msg)
	}
	select {
	case r := <-done:
		t.Fatalf("second Open returned while the first holds the lock: %v", r.err)
	default:
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("second Open after Close: %v", r.err)
	}
	defer closeOK(t, r.s)
	if ok, err := r.s.HasBlob(d); err != nil || !ok {
		t.Fatalf("second holder does not see the first one's blob: %v %v", ok, err)
	}
}

func TestLockWaitCancelled(t *testing.T) {
	dir := t.TempDir()
	s1 := openTest(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	notices := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		s, err := Open(ctx, dir, Options{Log: slog.New(signalHandler{notices})})
		if s != nil {
			_ = s.Close() // Open should have failed: err == nil fails the test below
		}
		done <- err
	}()
	<-notices
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Open: %v", err)
	}
	// The first holder is unaffected.
	mustPut(t, s1, []byte("still mine"))
}

// Goroutines of one process share a Store.
func TestStoreConcurrentUse(t *testing.T) {
	s := openTest(t, t.TempDir())
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := randBytes(uint64(100+i%4), ChunkSize/2+i%4)
			d, err := s.PutBytes(b)
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := s.ReadBlob(d); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if st, _ := s.Stats(); st.Blobs != 4 {
		t.Errorf("%d blobs, want 4", st.Blobs)
	}
}

func TestOpenCreatesDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b", "cache")
	s := openTest(t, dir)
	if s.Dir() != dir {
		t.Errorf("Dir() = %s", s.Dir())
	}
	if _, err := os.Stat(filepath.Join(dir, "lock")); err != nil {
		t.Error(err)
	}
}
