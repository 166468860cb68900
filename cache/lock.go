package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ErrLocked is what every "another process holds the lock" error is (test
// with errors.Is); the error itself is a *LockedError naming the holder.
var ErrLocked = errors.New("another mlbuild process holds the lock")

// LockedError says who holds a lock that Open (or AcquireLock) could not
// take without waiting.
type LockedError struct {
	// Holder is "another mlbuild process (pid N)", or "another mlbuild
	// process" when the lock file names no pid.
	Holder string
	PID    int // 0 when unknown
	// What is what the lock guards: "the cache in DIR", "the workspace DIR".
	What string
}

func (e *LockedError) Error() string { return e.Holder + " is using " + e.What }

// Is makes errors.Is(err, ErrLocked) hold.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// Lock is an exclusive flock on a file, held until Release (or until the
// process ends: the operating system releases the lock of a dead process,
// so a crash never leaves a stale lock).
type Lock struct {
	f    *os.File
	once sync.Once
}

// AcquireLock takes the exclusive lock on the file at path, creating it.
// what names what the lock guards, for the messages ("the cache in DIR").
// While another process holds the lock, AcquireLock fails at once with a
// *LockedError when noWait is set; otherwise it says so once through log
// and waits until the holder ends or ctx is cancelled. The lock file
// records the holder's pid so that the messages can name it.
func AcquireLock(ctx context.Context, path, what string, noWait bool, log *slog.Logger) (*Lock, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open the lock of %s: %w", what, err)
	}
	try := func() (bool, error) {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			writePid(f)
			return true, nil
		case errors.Is(err, unix.EWOULDBLOCK):
			return false, nil
		default:
			_ = f.Close() // not locked: nothing to release
			return false, fmt.Errorf("lock %s (%s): %w", what, path, err)
		}
	}
	if ok, err := try(); err != nil {
		return nil, err
	} else if ok {
		return &Lock{f: f}, nil
	}
	locked := lockHolder(path, what)
	if noWait {
		_ = f.Close() // not locked: nothing to release
		return nil, locked
	}
	log.Warn(fmt.Sprintf("waiting: %s (Ctrl-C to stop waiting)", locked.Error()))
	for {
		select {
		case <-ctx.Done():
			_ = f.Close() // not locked: nothing to release
			return nil, fmt.Errorf("gave up waiting for %s: %w", locked.Holder, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
		if ok, err := try(); err != nil {
			return nil, err
		} else if ok {
			return &Lock{f: f}, nil
		}
	}
}

// lockHolder reads the holder's pid from the lock file.
func lockHolder(path, what string) *LockedError {
	e := &LockedError{Holder: "another mlbuild process", What: what}
	if b, err := os.ReadFile(path); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			e.PID = pid
			e.Holder = fmt.Sprintf("another mlbuild process (pid %d)", pid)
			if pid == os.Getpid() {
				e.Holder = fmt.Sprintf("another handle of this process (pid %d)", pid)
			}
		}
	}
	return e
}

func writePid(f *os.File) {
	// The pid is only a hint for other processes' messages.
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
}

// Release releases the lock; calling it again does nothing.
func (l *Lock) Release() {
	if l == nil {
		return
	}
	l.once.Do(func() {
		_ = unix.Flock(int(l.f.Fd()), unix.LOCK_UN) // closing releases it too
		// The file only holds the pid, a hint for the waiting notice.
		_ = l.f.Close()
	})
}
