package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mlbuild/mlbuild/cache"
)

// Limits small enough that a misbehaving server is given up on at once.
var fastLimits = Options{Getenv: envMap(nil), Timeout: 300 * time.Millisecond, IdleTimeout: 150 * time.Millisecond, TransferTimeout: 400 * time.Millisecond}

// misbehaving serves an action result for key naming one blob (data,
// claimed at claimed bytes) and answers blob GETs with serve.
type misbehaving struct {
	key     string
	digest  string
	claimed int64
	// action, when set, answers GET ac/<key> instead of the JSON.
	action   func(w http.ResponseWriter, r *http.Request)
	blob     func(w http.ResponseWriter, r *http.Request)
	blobGets atomic.Int64
}

func (m *misbehaving) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/ac/" + m.key:
		if m.action != nil {
			m.action(w, r)
			return
		}
		fmt.Fprintf(w, `{"key":%q,"outputs":{"m":{"path":"m.bin","digest":%q,"size":%d}}}`, m.key, m.digest, m.claimed)
	case "/cas/" + m.digest:
		m.blobGets.Add(1)
		m.blob(w, r)
	default:
		http.NotFound(w, r)
	}
}

// drip writes b one byte at a time, a pause between bytes, until the
// client goes away (at most len(b) bytes).
func drip(w http.ResponseWriter, r *http.Request, b []byte, pause time.Duration) {
	for i := range b {
		if _, err := w.Write(b[i : i+1]); err != nil {
			return
		}
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			return
		case <-time.After(pause):
		}
	}
}

// pullFrom runs Pull against m and returns its error and the local store.
func pullFrom(t *testing.T, m *misbehaving, opts Options) (*cache.Store, error) {
	t.Helper()
	srv := httptest.NewServer(m)
	t.Cleanup(srv.Close)
	r, err := Open(context.Background(), srv.URL, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeOK(t, r) })
	local := openLocal(t)
	ar, _, err := Pull(context.Background(), local, r, m.key)
	if err == nil {
		t.Fatalf("Pull from a misbehaving server succeeded: %+v", ar)
	}
	return local, err
}

// nothingLeft checks that a failed download left no trace in the store.
func nothingLeft(t *testing.T, local *cache.Store, digest string) {
	t.Helper()
	if ok, _ := local.HasBlob(digest); ok {
		t.Error("the blob was committed")
	}
	st, err := local.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Blobs != 0 || st.OrphanChunks != 0 {
		t.Errorf("the failed download left %d blobs and %d chunks in the local cache", st.Blobs, st.OrphanChunks)
	}
}

func wantStall(t *testing.T, err error, what string) {
	t.Helper()
	var se *StallError
	if !errors.As(err, &se) || !strings.Contains(se.What, what) {
		t.Fatalf("error %v; want a StallError %q", err, what)
	}
	if !IsUnavailable(err) {
		t.Errorf("a stalled remote does not read as unavailable: %v", err)
	}
}

// TestDrippedActionResult: an action result dripped a byte at a time,
// never idle for long, is cut off by the request's total deadline.
func TestDrippedActionResult(t *testing.T) {
	data := randBytes(1, 100)
	m := &misbehaving{key: hexOf([]byte("drip")), digest: hexOf(data), claimed: 100}
	m.action = func(w http.ResponseWriter, r *http.Request) {
		body := fmt.Sprintf(`{"key":%q,"outputs":{}}`, m.key)
		drip(w, r, []byte(body), 20*time.Millisecond)
	}
	opts := fastLimits
	opts.Timeout = 100 * time.Millisecond
	opts.IdleTimeout = time.Minute
	_, err := pullFrom(t, m, opts)
	wantStall(t, err, "not complete within")
	if !strings.Contains(err.Error(), EnvTimeout) {
		t.Errorf("the error does not name the variable that sets the limit: %v", err)
	}
}

// TestStalledBlob: a blob that stops arriving midway is given up on after
// the idle timeout, and nothing of it stays in the local cache.
func TestStalledBlob(t *testing.T) {
	data := randBytes(2, 3<<20)
	m := &misbehaving{key: hexOf([]byte("stall")), digest: hexOf(data), claimed: int64(len(data))}
	m.blob = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		_, _ = w.Write(data[:len(data)/2])
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(time.Minute):
		}
	}
	opts := fastLimits
	opts.TransferTimeout = time.Minute
	local, err := pullFrom(t, m, opts)
	wantStall(t, err, "no data for")
	nothingLeft(t, local, m.digest)
}

// TestDrippedBlob: a blob dripped slowly enough to never be idle is cut
// off by the transfer deadline.
func TestDrippedBlob(t *testing.T) {
	data := randBytes(3, 1000)
	m := &misbehaving{key: hexOf([]byte("dripblob")), digest: hexOf(data), claimed: int64(len(data))}
	m.blob = func(w http.ResponseWriter, r *http.Request) { drip(w, r, data, 10*time.Millisecond) }
	opts := fastLimits
	opts.IdleTimeout = time.Minute
	local, err := pullFrom(t, m, opts)
	wantStall(t, err, "not complete within")
	nothingLeft(t, local, m.digest)
}

// TestOversizeClaim: an action result claiming a terabyte blob is refused
// before any blob is requested.
func TestOversizeClaim(t *testing.T) {
	m := &misbehaving{key: hexOf([]byte("huge")), digest: hexOf([]byte("huge blob")), claimed: 1 << 40}
	m.blob = func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(w, io.LimitReader(zeros{}, 64<<20))
	}
	local, err := pullFrom(t, m, Options{Getenv: envMap(nil), MaxBlobSize: 1 << 30})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), EnvMaxBlobSize) {
		t.Fatalf("Pull of a 1 TiB claim: %v; want a corrupt error naming %s", err, EnvMaxBlobSize)
	}
	if n := m.blobGets.Load(); n != 0 {
		t.Errorf("the blob was requested %d times", n)
	}
	nothingLeft(t, local, m.digest)
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestBodyNotAsClaimed: a blob whose announced length, or whose body,
// differs from the size the action result claims is refused, and nothing
// of it is kept.
func TestBodyNotAsClaimed(t *testing.T) {
	data := randBytes(4, 2<<20+7)
	for name, serve := range map[string]func(w http.ResponseWriter, r *http.Request){
		"announced longer": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(data)+1000))
			_, _ = w.Write(data)
			_, _ = w.Write(make([]byte, 1000))
		},
		"announced shorter": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(data)-1))
			_, _ = w.Write(data[:len(data)-1])
		},
		// Chunked: no length up front, the body itself differs.
		"body longer": func(w http.ResponseWriter, r *http.Request) {
			w.(http.Flusher).Flush()
			_, _ = w.Write(data)
			_, _ = io.Copy(w, io.LimitReader(zeros{}, 8<<20))
		},
		"body shorter": func(w http.ResponseWriter, r *http.Request) {
			w.(http.Flusher).Flush()
			_, _ = w.Write(data[:len(data)/2])
		},
	} {
		t.Run(name, func(t *testing.T) {
			m := &misbehaving{key: hexOf([]byte(name)), digest: hexOf(data), claimed: int64(len(data)), blob: serve}
			local, err := pullFrom(t, m, Options{Getenv: envMap(nil)})
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Pull: %v; want ErrCorrupt", err)
			}
			if d, ok := CorruptBlob(err); !ok || d != m.digest {
				t.Errorf("CorruptBlob = %q, %v", d, ok)
			}
			nothingLeft(t, local, m.digest)
		})
	}
}

// TestStalledUpload: a server that stops reading an upload is given up on
// after the idle timeout.
func TestStalledUpload(t *testing.T) {
	// The server does not notice the client leaving while it reads no
	// body, so the test releases it.
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer srv.Close()
	defer close(release)
	opts := fastLimits
	opts.Timeout = time.Minute
	opts.TransferTimeout = time.Minute
	r, err := Open(context.Background(), srv.URL, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, r)
	// More than the socket buffers hold, so the client's writes block.
	const size = 1 << 30
	err = r.PutBlob(context.Background(), hexOf([]byte("upload")), size, io.LimitReader(zeros{}, size))
	wantStall(t, err, "no data for")
}

func TestLimitsFromEnvironment(t *testing.T) {
	env := map[string]string{EnvTimeout: "5s", EnvIdleTimeout: "7s", EnvTransferTimeout: "2h", EnvMaxBlobSize: "3GiB"}
	r, err := Open(context.Background(), "http://127.0.0.1:1", Options{Getenv: envMap(env)})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, r)
	want := limits{timeout: 5 * time.Second, idle: 7 * time.Second, transfer: 2 * time.Hour, maxBlob: 3 << 30}
	if got := r.(*httpStore).lim; got != want {
		t.Errorf("limits = %+v, want %+v", got, want)
	}
	r, err = Open(context.Background(), "http://127.0.0.1:1", Options{Getenv: envMap(nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, r)
	want = limits{timeout: DefaultTimeout, idle: DefaultIdleTimeout, transfer: DefaultTransferTimeout, maxBlob: DefaultMaxBlobSize}
	if got := r.(*httpStore).lim; got != want {
		t.Errorf("default limits = %+v, want %+v", got, want)
	}
	for k, v := range map[string]string{EnvIdleTimeout: "soon", EnvTimeout: "-1s", EnvMaxBlobSize: "lots", EnvTransferTimeout: "0"} {
		_, err := Open(context.Background(), "http://127.0.0.1:1", Options{Getenv: envMap(map[string]string{k: v})})
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: %v; want an error naming the variable", k, v, err)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "512": 512, "10kB": 10e3, "64GiB": 64 << 30, "2 TB": 2e12, "1mib": 1 << 20} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GiB", "12 parsecs", "99999999999TiB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) succeeded", in)
		}
	}
}

// TestTreeSizeNotAsClaimed: an action result whose tree output claims
// another size than its (verified) manifest lists is refused.
func TestTreeSizeNotAsClaimed(t *testing.T) {
	ctx := context.Background()
	fake := newFake()
	srv := httptest.NewServer(fake)
	defer srv.Close()
	r, err := Open(ctx, srv.URL, Options{Getenv: envMap(nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, r)
	local := openLocal(t)
	fx := makeFixture(t, local, 5)
	if _, err := Push(ctx, local, r, fx.ar); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Pull(ctx, openLocal(t), r, fx.ar.Key); err != nil {
		t.Fatalf("Pull of the true result: %v", err)
	}
	lie := *fx.ar
	lie.Outputs = maps.Clone(fx.ar.Outputs)
	o := lie.Outputs["tree"]
	o.Size += 1 << 30
	lie.Outputs["tree"] = o
	data, err := json.Marshal(&lie)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.PutAction(ctx, lie.Key, data); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Pull(ctx, openLocal(t), r, lie.Key); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Pull of a tree claiming the wrong size: %v; want ErrCorrupt", err)
	}
}
