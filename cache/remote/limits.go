package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of the limits on every request to a remote (see Options).
const (
	DefaultTimeout         = 30 * time.Second
	DefaultIdleTimeout     = 60 * time.Second
	DefaultTransferTimeout = time.Hour
	DefaultMaxBlobSize     = int64(64) << 30
)

// Environment variables that set the limits (when Options leaves them 0).
const (
	EnvTimeout         = "MLBUILD_REMOTE_TIMEOUT"
	EnvIdleTimeout     = "MLBUILD_REMOTE_IDLE_TIMEOUT"
	EnvTransferTimeout = "MLBUILD_REMOTE_TRANSFER_TIMEOUT"
	EnvMaxBlobSize     = "MLBUILD_REMOTE_MAX_BLOB_SIZE"
)

// limits are the bounds a store puts on each request.
type limits struct {
	timeout  time.Duration // connect, headers; whole small requests
	idle     time.Duration // longest wait for the next byte of a transfer
	transfer time.Duration // one blob transfer as a whole
	maxBlob  int64         // largest blob accepted from the remote
}

// resolveLimits fills the limits Options leaves 0 from the environment,
// then from the defaults. A malformed variable is an error naming it.
func (o *Options) resolveLimits() error {
	durs := []struct {
		v   *time.Duration
		env string
		def time.Duration
	}{
		{&o.Timeout, EnvTimeout, DefaultTimeout},
		{&o.IdleTimeout, EnvIdleTimeout, DefaultIdleTimeout},
		{&o.TransferTimeout, EnvTransferTimeout, DefaultTransferTimeout},
	}
	for _, d := range durs {
		if *d.v > 0 {
			continue
		}
		*d.v = d.def
		if s := o.Getenv(d.env); s != "" {
			v, err := time.ParseDuration(s)
			if err != nil || v <= 0 {
				return fmt.Errorf("%s=%q: not a positive duration (for example 30s, 5m, 2h)", d.env, s)
			}
			*d.v = v
		}
	}
	if o.MaxBlobSize <= 0 {
		o.MaxBlobSize = DefaultMaxBlobSize
		if s := o.Getenv(EnvMaxBlobSize); s != "" {
			v, err := parseSize(s)
			if err != nil || v <= 0 {
				return fmt.Errorf("%s=%q: not a positive size (for example 500MB, 64GiB)", EnvMaxBlobSize, s)
			}
			o.MaxBlobSize = v
		}
	}
	return nil
}

func (o *Options) limits() limits {
	return limits{timeout: o.Timeout, idle: o.IdleTimeout, transfer: o.TransferTimeout, maxBlob: o.MaxBlobSize}
}

// parseSize reads a byte count: a plain number, or one with a unit (kB,
// MB, GB, TB in powers of 1000; KiB, MiB, GiB, TiB in powers of 1024).
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := len(s)
	for i > 0 && (s[i-1] < '0' || s[i-1] > '9') {
		i--
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s[:i]), 10, 64)
	if err != nil {
		return 0, err
	}
	mult := map[string]int64{"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
		"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}[strings.ToLower(strings.TrimSpace(s[i:]))]
	if mult == 0 {
		return 0, fmt.Errorf("unknown unit in %q", s)
	}
	if n > (1<<63-1)/mult {
		return 0, errors.New("too large")
	}
	return n * mult, nil
}

// StallError is a request to a remote that took too long: no byte moved
// for the idle timeout, or the request as a whole outlasted its deadline.
// It reads as unavailability (errors.Is(err, context.DeadlineExceeded)).
type StallError struct {
	// What is "no data for" or "not complete within".
	What  string
	Limit time.Duration
	// Env names the variable that sets the limit.
	Env string
}

func (e *StallError) Error() string {
	return fmt.Sprintf("%s %s (%s sets the limit)", e.What, e.Limit, e.Env)
}

// Is makes errors.Is(err, context.DeadlineExceeded) true.
func (e *StallError) Is(target error) bool { return target == context.DeadlineExceeded }

// watch bounds one request: its context ends when the request outlasts
// total, or when kick is not called for idle.
type watch struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	stopT  context.CancelFunc
	idle   time.Duration
	mu     sync.Mutex
	timer  *time.Timer
}

// newWatch starts the clocks of a request bounded by total (whose limit
// env names) and by l.idle between two pieces of progress.
func newWatch(ctx context.Context, l limits, total time.Duration, env string) *watch {
	c, cancel := context.WithCancelCause(ctx)
	tc, stopT := context.WithTimeoutCause(c, total, &StallError{What: "not complete within", Limit: total, Env: env})
	w := &watch{ctx: tc, cancel: cancel, stopT: stopT, idle: l.idle}
	w.timer = time.AfterFunc(l.idle, func() {
		cancel(&StallError{What: "no data for", Limit: l.idle, Env: EnvIdleTimeout})
	})
	return w
}

// kick records progress: the idle clock starts again.
func (w *watch) kick() {
	w.mu.Lock()
	w.timer.Reset(w.idle)
	w.mu.Unlock()
}

// stop releases the request's clocks and context.
func (w *watch) stop() {
	w.mu.Lock()
	w.timer.Stop()
	w.mu.Unlock()
	w.stopT()
	w.cancel(context.Canceled)
}

// stalled returns the StallError that ended the request, if one did.
func (w *watch) stalled() *StallError {
	var se *StallError
	if errors.As(context.Cause(w.ctx), &se) {
		return se
	}
	return nil
}

// watchedReader kicks its watch on every read that moves bytes.
type watchedReader struct {
	r io.Reader
	w *watch
}

func (r watchedReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.w.kick()
	}
	return n, err
}
