package engine

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mlbuild/mlbuild/cache"
	"github.com/mlbuild/mlbuild/cache/remote"
)

// backendRemote adapts a cache/remote backend, as the CLI does.
type backendRemote struct {
	local *cache.Store
	r     remote.Store
}

func (b *backendRemote) Pull(ctx context.Context, key string) (*cache.ActionResult, TransferStats, error) {
	ar, st, err := remote.Pull(ctx, b.local, b.r, key)
	return ar, TransferStats{Downloaded: st.Downloaded, BytesDown: st.BytesDown}, err
}

func (b *backendRemote) Push(ctx context.Context, ar *cache.ActionResult) (TransferStats, error) {
	st, err := remote.Push(ctx, b.local, b.r, ar)
	return TransferStats{Uploaded: st.Uploaded, BytesUp: st.BytesUp}, err
}
func (b *backendRemote) Unavailable(err error) bool { return remote.IsUnavailable(err) }
func (b *backendRemote) String() string             { return b.r.String() }

// TestSlowOrLyingRemote: a remote that drips its action results, serves
// one with outputs the kind does not produce, or claims a blob larger than
// the cap, does not hang or flood the run: nothing is downloaded, the step
// is built locally, with a warning naming the remote and the step.
func TestSlowOrLyingRemote(t *testing.T) {
	for name, serve := range map[string]func(w http.ResponseWriter, r *http.Request, key string){
		"drip": func(w http.ResponseWriter, r *http.Request, key string) {
			body := fmt.Sprintf(`{"key":%q,"outputs":{}}`, key)
			for i := 0; i < len(body); i++ {
				if _, err := w.Write([]byte{body[i]}); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		},
		"renamed output": func(w http.ResponseWriter, r *http.Request, key string) {
			d := strings.Repeat("cd", 32)
			fmt.Fprintf(w, `{"key":%q,"outputs":{"renamed":{"path":"out.txt","digest":%q,"size":5},"report":{"path":"report.json","digest":%q,"size":2}}}`, key, d, d)
		},
		"huge claim": func(w http.ResponseWriter, r *http.Request, key string) {
			d := strings.Repeat("ab", 32)
			fmt.Fprintf(w, `{"key":%q,"outputs":{"output":{"path":"out.txt","digest":%q,"size":%d},"report":{"path":"report.json","digest":%q,"size":2}}}`, key, d, int64(1)<<40, d)
		},
	} {
		t.Run(name, func(t *testing.T) {
			var blobGets atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				key, ok := strings.CutPrefix(r.URL.Path, "/ac/")
				if !ok || r.Method != http.MethodGet {
					if r.Method == http.MethodGet {
						blobGets.Add(1)
					}
					http.NotFound(w, r)
					return
				}
				serve(w, r, key)
			}))
			defer srv.Close()
			env := newEnv(t, `
step "concat" "a" {
  sources = ["data/a.txt"]
}
`)
			env.write("data/a.txt", "alpha\n")
			p, err := env.load()
			if err != nil {
				t.Fatal(err)
			}
			var warnings []string
			e, err := Open(context.Background(), p, Options{Workspace: env.dir, OnEvent: func(ev Event) {
				if ev.Type == EventWarning {
					warnings = append(warnings, ev.Message)
				}
			}})
			if err != nil {
				t.Fatal(err)
			}
			defer closeOK(t, e)
			r, err := remote.Open(context.Background(), srv.URL, remote.Options{
				Getenv: func(string) string { return "" }, Timeout: 100 * time.Millisecond,
				IdleTimeout: 100 * time.Millisecond, TransferTimeout: time.Second, MaxBlobSize: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			defer closeOK(t, r)
			if err := e.UseRemote(&backendRemote{local: e.Store(), r: r}, RemoteReadOnly); err != nil {
				t.Fatal(err)
			}
			sum, err := e.Run(context.Background())
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if st := sum.Steps[0].Status; st != StatusRan {
				t.Errorf("concat.a: %s, want ran", st)
			}
			if len(warnings) != 1 || !strings.Contains(warnings[0], srv.URL) || !strings.Contains(warnings[0], "concat.a") {
				t.Errorf("warnings: %q", warnings)
			}
			if n := blobGets.Load(); n != 0 {
				t.Errorf("%d blobs were requested for a result that was refused", n)
			}
		})
	}
}
