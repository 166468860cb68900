package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeGCS is the part of the Cloud Storage JSON API that the gs:// driver
// uses (object metadata, media download, simple and resumable upload), for
// one bucket, in memory.
type fakeGCS struct {
	bucket string
	mu     sync.Mutex
	objs   map[string][]byte
	// sessions holds resumable uploads under way: name and bytes so far.
	sessions map[string]*fakeSession
	nextID   int
	// deny answers every request 403 when set.
	deny bool
	// busy answers that many reads 503 before serving them.
	busy int
}

type fakeSession struct {
	name string
	data []byte
}

func newFakeGCS(bucket string) *fakeGCS {
	return &fakeGCS{bucket: bucket, objs: map[string][]byte{}, sessions: map[string]*fakeSession{}}
}

func (f *fakeGCS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := func(code int, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": msg}})
	}
	if f.deny {
		fail(http.StatusForbidden, "caller does not have storage.objects.get access")
		return
	}
	if f.busy > 0 && r.Method == http.MethodGet {
		f.busy--
		fail(http.StatusServiceUnavailable, "backend busy")
		return
	}
	path := r.URL.EscapedPath()
	objPrefix := "/storage/v1/b/" + f.bucket + "/o/"
	upPath := "/upload/storage/v1/b/" + f.bucket + "/o"
	switch {
	case strings.HasPrefix(path, "/session/") && r.Method == http.MethodDelete:
		delete(f.sessions, strings.TrimPrefix(path, "/session/"))
		w.WriteHeader(499)
	case strings.HasPrefix(path, "/session/") && r.Method == http.MethodPut:
		s := f.sessions[strings.TrimPrefix(path, "/session/")]
		if s == nil {
			fail(http.StatusNotFound, "no such upload")
			return
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			fail(http.StatusBadRequest, err.Error())
			return
		}
		// bytes a-b/total or bytes */total, total "*" while unknown.
		cr := strings.TrimPrefix(r.Header.Get("Content-Range"), "bytes ")
		rng, total, _ := strings.Cut(cr, "/")
		if rng != "*" {
			first, _, _ := strings.Cut(rng, "-")
			if a, err := strconv.Atoi(first); err != nil || a != len(s.data) {
				fail(http.StatusBadRequest, "chunk out of order: "+cr)
				return
			}
		}
		s.data = append(s.data, b...)
		if total == "*" {
			if len(s.data)%(256<<10) != 0 {
				fail(http.StatusBadRequest, "a chunk must be a multiple of 256 KiB")
				return
			}
			w.WriteHeader(http.StatusPermanentRedirect)
			return
		}
		if n, err := strconv.Atoi(total); err != nil || n != len(s.data) {
			fail(http.StatusBadRequest, "size mismatch: "+cr)
			return
		}
		f.objs[s.name] = s.data
		delete(f.sessions, strings.TrimPrefix(path, "/session/"))
		w.WriteHeader(http.StatusOK)
	case path == upPath && r.Method == http.MethodPost:
		name := r.URL.Query().Get("name")
		switch r.URL.Query().Get("uploadType") {
		case "media":
			b, err := io.ReadAll(r.Body)
			if err != nil {
				fail(http.StatusBadRequest, err.Error())
				return
			}
			f.objs[name] = b
			w.WriteHeader(http.StatusOK)
		case "resumable":
			f.nextID++
			id := strconv.Itoa(f.nextID)
			f.sessions[id] = &fakeSession{name: name}
			w.Header().Set("Location", "http://"+r.Host+"/session/"+id)
			w.WriteHeader(http.StatusOK)
		default:
			fail(http.StatusBadRequest, "uploadType")
		}
	case strings.HasPrefix(path, objPrefix) && r.URL.Query().Get("alt") == "media" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		name, _ := url.PathUnescape(strings.TrimPrefix(path, objPrefix))
		b, ok := f.objs[name]
		if !ok {
			fail(http.StatusNotFound, "No such object: "+f.bucket+"/"+name)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		_, _ = w.Write(b)
	case strings.HasPrefix(path, objPrefix) && r.Method == http.MethodGet:
		name, _ := url.PathUnescape(strings.TrimPrefix(path, objPrefix))
		b, ok := f.objs[name]
		if !ok {
			fail(http.StatusNotFound, "No such object: "+f.bucket+"/"+name)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"name": name, "size": strconv.Itoa(len(b)), "contentType": "application/octet-stream", "updated": "2026-12-01T00:00:00Z"})
	default:
		fail(http.StatusNotImplemented, r.Method+" "+path)
	}
}

// gs:// through the JSON API passes the whole remote scenario (push, pull,
// misses, a corrupted object, a stopped server), with the big blob going
// up as a resumable upload of several chunks; objects sit under the URL's
// prefix.
func TestGCS(t *testing.T) {
	f := newFakeGCS("team-cache")
	srv := httptest.NewServer(f)
	defer srv.Close()
	runScenario(t, backendCase{
		url:  "gs://team-cache/mlbuild",
		opts: Options{Getenv: envMap(map[string]string{envGCSEmulator: srv.Listener.Addr().String()})},
		corrupt: func(t *testing.T, object string, data []byte) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.objs["mlbuild/"+object] = append([]byte(nil), data...)
		},
		stop: func(t *testing.T) { srv.CloseClientConnections(); srv.Close() },
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	for name := range f.objs {
		if !strings.HasPrefix(name, "mlbuild/cas/") && !strings.HasPrefix(name, "mlbuild/ac/") {
			t.Errorf("unexpected object %s", name)
		}
	}
	if len(f.sessions) != 0 {
		t.Errorf("%d resumable uploads left unfinished", len(f.sessions))
	}
}

// A gs:// upload whose reader fails leaves no object and no resumable
// session; a read the service answers 503 is retried; a bucket that
// refuses access is ErrAuth, naming where credentials come from.
func TestGCSRefusedAndPartial(t *testing.T) {
	f := newFakeGCS("b")
	srv := httptest.NewServer(f)
	defer srv.Close()
	ctx := context.Background()
	r, err := Open(ctx, "gs://b", Options{Getenv: envMap(map[string]string{envGCSEmulator: srv.URL})})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, r)
	digest := strings.Repeat("ab", 32)
	size := int64(partSize + 1000)
	data := bytes.Repeat([]byte("x"), partSize+10)
	err = r.PutBlob(ctx, digest, size, &errAfterReader{r: bytes.NewReader(data), err: errors.New("read error")})
	if err == nil {
		t.Fatal("PutBlob of a failing reader succeeded")
	}
	if ok, err := r.HasBlob(ctx, digest); ok || err != nil {
		t.Errorf("after a failed upload: HasBlob = %v, %v; want false, nil", ok, err)
	}
	f.mu.Lock()
	if len(f.sessions) != 0 {
		t.Errorf("the failed upload's resumable session was not cancelled")
	}
	f.mu.Unlock()

	// A read answered "busy" is retried (twice at most).
	if err := r.PutAction(ctx, digest, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.busy = 2
	f.mu.Unlock()
	if b, ok, err := r.GetAction(ctx, digest); err != nil || !ok || string(b) != "{}" {
		t.Errorf("GetAction after two 503s: %q, %v, %v; want it retried", b, ok, err)
	}
	f.mu.Lock()
	f.busy = 3
	f.mu.Unlock()
	if _, _, err := r.GetAction(ctx, digest); err == nil || !IsUnavailable(err) && !strings.Contains(err.Error(), "503") {
		t.Errorf("GetAction after three 503s: %v; want the 503", err)
	}

	f.mu.Lock()
	f.busy = 0
	f.deny = true
	f.mu.Unlock()
	_, _, err = r.GetAction(ctx, digest)
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "GOOGLE_APPLICATION_CREDENTIALS") {
		t.Errorf("GetAction refused: %v; want ErrAuth naming GOOGLE_APPLICATION_CREDENTIALS", err)
	}
	if IsUnavailable(err) {
		t.Errorf("IsUnavailable(%v) = true for a refusal", err)
	}
}

// Unknown gs:// parameters are refused rather than ignored.
func TestGCSUnknownParameter(t *testing.T) {
	_, err := Open(context.Background(), "gs://b?universe=x", Options{Getenv: envMap(map[string]string{envGCSEmulator: "localhost:1"})})
	if err == nil || !strings.Contains(err.Error(), `unknown parameter "universe"`) {
		t.Errorf("Open with an unknown parameter: %v", err)
	}
}

// The gs:// client passes the objectStore suite against the fake service,
// resumable uploads included, and leaves no upload session open.
func TestGCSObjectStore(t *testing.T) {
	f := newFakeGCS("b")
	srv := httptest.NewServer(f)
	defer srv.Close()
	g, err := openGCS(context.Background(), "b", url.Values{}, Options{Getenv: envMap(map[string]string{envGCSEmulator: srv.URL})})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, g)
	testObjectStore(t, g, "p/", func() []string {
		f.mu.Lock()
		defer f.mu.Unlock()
		var keys []string
		for k := range f.objs {
			keys = append(keys, k)
		}
		return keys
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sessions) != 0 {
		t.Errorf("%d resumable uploads left open", len(f.sessions))
	}
}
