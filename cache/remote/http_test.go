package remote

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fakeBazelCache is a minimal in-memory Bazel HTTP cache for unit tests.
type fakeBazelCache struct {
	mu      sync.Mutex
	objects map[string][]byte
	token   string // required bearer token, if set
	// hook, when set, may answer a request itself (returning true).
	hook func(w http.ResponseWriter, r *http.Request) bool
}

func (f *fakeBazelCache) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.hook != nil && f.hook(w, r) {
		return
	}
	if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
		http.Error(w, "no", http.StatusUnauthorized)
		return
	}
	key := strings.TrimPrefix(r.URL.Path, "/")
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		b, ok := f.objects[key]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		if r.Method == http.MethodGet {
			_, _ = w.Write(b)
		}
	case http.MethodPut:
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		f.objects[key] = b
		w.WriteHeader(http.StatusCreated)
	default:
		http.Error(w, "method", http.StatusMethodNotAllowed)
	}
}

func newFake() *fakeBazelCache { return &fakeBazelCache{objects: map[string][]byte{}} }

func TestOpenRefusesCredentialsInURL(t *testing.T) {
	ctx := context.Background()
	for _, u := range []string{"http://bob:hunter22@cache.example:8080/", "https://bob:hunter22@cache.example/", "s3://bob:hunter22@bucket"} {
		_, err := Open(ctx, u, Options{Getenv: envMap(nil)})
		if err == nil {
			t.Fatalf("Open(%s) accepted credentials in the URL", u)
		}
		if strings.Contains(err.Error(), "hunter22") {
			t.Errorf("error reveals the password: %v", err)
		}
		want := EnvPassword
		if strings.HasPrefix(u, "s3:") {
			want = "AWS_SECRET_ACCESS_KEY"
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say to use %s: %v", want, err)
		}
	}
	// Credentials elsewhere in a URL: in a parameter that is a URL (S3's
	// endpoint=, plain or encoded), as a credential parameter, in a
	// fragment. Each is refused, redacted, with where they go instead.
	for u, want := range map[string]string{
		"s3://b?endpoint=http://bob:hunter22@minio:9000&use_path_style=true": "AWS_SECRET_ACCESS_KEY",
		"s3://b?endpoint=http%3A%2F%2Fbob%3Ahunter22%40minio%3A9000":         "AWS_SECRET_ACCESS_KEY",
		"s3://b?X-Amz-Credential=AKIA%2Fx&X-Amz-Signature=hunter22":          "AWS_SECRET_ACCESS_KEY",
		"azblob://c?sig=hunter22&sv=2020-01-01":                              "AZURE_STORAGE_SAS_TOKEN",
		"s3://b/prefix#hunter22":                                             "AWS_SECRET_ACCESS_KEY",
		"https://cache.example/x#token=hunter22":                             EnvToken,
		"gs://b?access_token=hunter22":                                       "GOOGLE_APPLICATION_CREDENTIALS",
	} {
		_, err := Open(ctx, u, Options{Getenv: envMap(nil)})
		if err == nil {
			t.Errorf("Open(%s) accepted a credential", u)
			continue
		}
		if strings.Contains(err.Error(), "hunter22") {
			t.Errorf("Open(%s): the error reveals the secret: %v", u, err)
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open(%s): the error does not say to use %s: %v", u, want, err)
		}
	}
	for _, u := range []string{"ftp://host/x", "cache.example:8080", "http://host/x?token=abc", "file://", "s3:///prefix"} {
		if _, err := Open(ctx, u, Options{Getenv: envMap(nil)}); err == nil {
			t.Errorf("Open(%s) succeeded", u)
		} else if strings.Contains(err.Error(), "token=abc") {
			t.Errorf("error quotes a secret: %v", err)
		}
	}
	if _, err := Open(ctx, "http://h/", Options{Getenv: envMap(map[string]string{EnvToken: "t", EnvUser: "u", EnvPassword: "p"})}); err == nil {
		t.Error("Open accepted both a token and basic auth")
	}
	if _, err := Open(ctx, "http://h/", Options{Getenv: envMap(map[string]string{EnvUser: "u"})}); err == nil {
		t.Error("Open accepted a user without a password")
	}
}

func TestRedaction(t *testing.T) {
	for in, bad := range map[string]string{
		"azblob://c?sig=abcdef1234&sv=2020-01-01&prefix=p/":              "abcdef1234",
		"s3://b?endpoint=http://minio:9000&X-Amz-Credential=AKIAXYZ1234": "AKIAXYZ1234",
		"https://u:pa55word@h/x":                                         "pa55word",
	} {
		got := redactRaw(in)
		if strings.Contains(got, bad) {
			t.Errorf("redactRaw(%s) = %s", in, got)
		}
	}
	if got := redactRaw("s3://b?endpoint=http%3A%2F%2Fminio%3A9000&region=eu-west-1"); !strings.Contains(got, "eu-west-1") || !strings.Contains(got, "minio") {
		t.Errorf("redaction dropped harmless parameters: %s", got)
	}
	if got := redactRaw("s3://b?endpoint=http%3A%2F%2Fbob%3Apa55word%40minio%3A9000&region=eu-west-1"); strings.Contains(got, "pa55word") || !strings.Contains(got, "minio") {
		t.Errorf("redactRaw kept an endpoint's password, or lost its host: %s", got)
	}
	if got := redactRaw("https://h/x#pa55word"); strings.Contains(got, "pa55word") {
		t.Errorf("redactRaw kept a fragment: %s", got)
	}
	msg := scrubText(`Get "https://acct.blob.core.windows.net/c/x?se=2030&sig=SECRETSIG&sp=r": dial tcp: refused; token hunter22xyz`, []string{"hunter22xyz"})
	for _, bad := range []string{"SECRETSIG", "hunter22xyz"} {
		if strings.Contains(msg, bad) {
			t.Errorf("scrubText left %s in: %s", bad, msg)
		}
	}
	for _, in := range []string{
		"you sent Authorization: Basic Ym9iOnNFY1JlVDk5 which is wrong",
		"header authorization=Bearer sEcReT99.tok",
		"bad auth Bearer sEcReT99",
		"AWS4-HMAC-SHA256 Credential=AKIAX/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=sEcReT99abcdef",
		"see http://bob:sEcReT99@minio:9000/b and endpoint=http%3A%2F%2Fbob%3AsEcReT99%40minio",
		"redirected to https://h/cb#access_token=sEcReT99",
		"cookie: session=sEcReT99",
	} {
		if got := scrubText(in, nil); strings.Contains(got, "sEcReT99") || strings.Contains(got, "Ym9iOnNFY1JlVDk5") {
			t.Errorf("scrubText(%q) = %q", in, got)
		}
	}
}

func TestHTTPBearerAndCACert(t *testing.T) {
	fake := newFake()
	fake.token = "tok-abcdef"
	srv := httptest.NewTLSServer(fake)
	defer srv.Close()
	ctx := context.Background()

	// Without the CA: a TLS failure, which degrades like an outage.
	r, err := Open(ctx, srv.URL, Options{Getenv: envMap(map[string]string{EnvToken: fake.token})})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.HasBlob(ctx, hexOf([]byte("x")))
	if err == nil || !IsUnavailable(err) {
		t.Errorf("HasBlob against an untrusted certificate: %v; want an unavailable error", err)
	}
	closeOK(t, r)

	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err = Open(ctx, srv.URL+"/", Options{Getenv: envMap(map[string]string{EnvToken: fake.token, EnvCACert: caFile})})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, r)
	if r.String() != srv.URL {
		t.Errorf("String() = %q, want %q", r.String(), srv.URL)
	}
	local := openLocal(t)
	fx := makeFixture(t, local, 3)
	if _, err := Push(ctx, local, r, fx.ar); err != nil {
		t.Fatal(err)
	}
	ar, st, err := Pull(ctx, openLocal(t), r, fx.ar.Key)
	if err != nil || ar == nil || st.Downloaded != fx.blobs {
		t.Fatalf("Pull over TLS with a bearer token: %v %+v %v", ar, st, err)
	}

	if _, err := Open(ctx, srv.URL, Options{Getenv: envMap(map[string]string{EnvCACert: filepath.Join(t.TempDir(), "missing.pem")})}); err == nil {
		t.Error("Open accepted a missing CA file")
	}
}

func TestHTTPStatuses(t *testing.T) {
	ctx := context.Background()
	var status int
	fake := newFake()
	fake.hook = func(w http.ResponseWriter, r *http.Request) bool {
		if status == 0 {
			return false
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, "<html><body><h1>%d oops</h1>\n\x00 detail</body></html>", status)
		return true
	}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	r, err := Open(ctx, srv.URL, Options{Getenv: envMap(nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, r)
	d := hexOf([]byte("x"))
	for _, tc := range []struct {
		code        int
		unavailable bool
	}{{500, true}, {502, true}, {503, true}, {429, true}, {418, false}, {405, false}} {
		status = tc.code
		_, err := r.HasBlob(ctx, d)
		var se *StatusError
		if !errors.As(err, &se) || se.Code != tc.code {
			t.Errorf("status %d: error %v", tc.code, err)
			continue
		}
		if IsUnavailable(err) != tc.unavailable {
			t.Errorf("status %d: IsUnavailable = %v", tc.code, !tc.unavailable)
		}
		_, err = r.OpenBlob(ctx, d)
		if !strings.Contains(err.Error(), "oops detail") {
			t.Errorf("status %d: error lacks the cleaned body: %v", tc.code, err)
		}
	}
	status = 400
	err = r.PutAction(ctx, d, []byte("{}"))
	if err == nil || !strings.Contains(err.Error(), "--disable_http_ac_validation") {
		t.Errorf("400 on an action PUT: %v; want a hint about bazel-remote's AC validation", err)
	}
	status = 0
	// 404 on GET ac is a miss, not an error.
	if _, ok, err := r.GetAction(ctx, d); ok || err != nil {
		t.Errorf("GetAction(absent) = %v, %v", ok, err)
	}
}

// TestHTTPCutDownload: a connection that breaks midway through a blob
// leaves nothing in the local cache and reads as an unavailable remote.
func TestHTTPCutDownload(t *testing.T) {
	ctx := context.Background()
	fake := newFake()
	data := randBytes(4, 3<<20)
	d := hexOf(data)
	fake.hook = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || r.URL.Path != "/cas/"+d {
			return false
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(data[:len(data)/2])
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close() // cutting the connection is the point; the client sees it
		}
		return true
	}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	r, err := Open(ctx, srv.URL, Options{Getenv: envMap(nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, r)
	key := hexOf([]byte("cut"))
	ar := fmt.Sprintf(`{"key":%q,"outputs":{"m":{"path":"m.bin","digest":%q,"size":%d}}}`, key, d, len(data))
	if err := r.PutAction(ctx, key, []byte(ar)); err != nil {
		t.Fatal(err)
	}
	local := openLocal(t)
	_, _, err = Pull(ctx, local, r, key)
	if err == nil || !IsUnavailable(err) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("Pull over a cut connection: %v; want an unavailable (not corrupt) error", err)
	}
	if ok, _ := local.HasBlob(d); ok {
		t.Error("a half-downloaded blob was committed")
	}
}

func TestHTTPHeaderTimeout(t *testing.T) {
	ctx := context.Background()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	r, err := Open(ctx, srv.URL, Options{Getenv: envMap(nil), Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, r)
	start := time.Now()
	_, err = r.HasBlob(ctx, hexOf([]byte("x")))
	if err == nil || !IsUnavailable(err) {
		t.Errorf("HasBlob against a silent server: %v; want an unavailable error", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("the timeout took %s", time.Since(start))
	}
}

func TestConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r, err := Open(ctx, "http://"+addr, Options{Getenv: envMap(map[string]string{EnvToken: "tok-zzzzzz"})})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, r)
	_, _, err = r.GetAction(ctx, hexOf([]byte("x")))
	if !IsUnavailable(err) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("GetAction from a closed port: %v", err)
	}
	if strings.Contains(err.Error(), "tok-zzzzzz") {
		t.Errorf("error reveals the token: %v", err)
	}
}

func TestIsUnavailable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{context.Canceled, false},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), true},
		{&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true},
		{fmt.Errorf("x: %w", syscall.ECONNRESET), true},
		{&net.DNSError{Err: "no such host", Name: "cache.invalid", IsNotFound: true}, true},
		{&StatusError{Code: 503}, true},
		{&StatusError{Code: 404}, false},
		{fmt.Errorf("%w: bad", ErrCorrupt), false},
		{fmt.Errorf("%w: x", ErrAuth), false},
		{errors.New("disk full"), false},
	} {
		if got := IsUnavailable(tc.err); got != tc.want {
			t.Errorf("IsUnavailable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestHoldback(t *testing.T) {
	var out bytes.Buffer
	h := &holdback{w: &out}
	for _, b := range []string{"aa", "bb"} {
		if _, err := h.Write([]byte(b)); err != nil {
			t.Fatal(err)
		}
	}
	if out.String() != "aa" {
		t.Fatalf("holdback passed %q before the end", out.String())
	}
	if err := h.flush(); err != nil || out.String() != "aabb" {
		t.Fatalf("after flush: %q, %v", out.String(), err)
	}
}

func TestParseAction(t *testing.T) {
	k := hexOf([]byte("k"))
	d := hexOf([]byte("d"))
	good := fmt.Sprintf(`{"key":%q,"step":"a.b","outputs":{"o":{"path":"sub/o.bin","digest":%q,"size":3},"t":{"path":"t","digest":%q,"size":9,"dir":true}}}`, k, d, d)
	if _, err := ParseAction(k, []byte(good)); err != nil {
		t.Fatalf("ParseAction(good) = %v", err)
	}
	for _, bad := range []string{
		`[]`,
		fmt.Sprintf(`{"key":%q,"outputs":{"o":{"path":"/etc/passwd","digest":%q}}}`, k, d),
		fmt.Sprintf(`{"key":%q,"outputs":{"o":{"path":"a\\b","digest":%q}}}`, k, d),
		fmt.Sprintf(`{"key":%q,"outputs":{"o":{"path":".","digest":%q}}}`, k, d),
		fmt.Sprintf(`{"key":%q,"outputs":{"o":{"path":"o","digest":%q}}}`, k, strings.ToUpper(d)),
		fmt.Sprintf(`{"key":%q,"outputs":{"o":{"path":"o","digest":%q,"size":-1}}}`, k, d),
		fmt.Sprintf(`{"key":%q,"outputs":{"":{"path":"o","digest":%q}}}`, k, d),
		fmt.Sprintf(`{"key":%q,"outputs":{}}`, d),
	} {
		if _, err := ParseAction(k, []byte(bad)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("ParseAction(%s) = %v; want ErrCorrupt", bad, err)
		}
	}
}

// TestEchoedCredentialsAreRedacted: a server that echoes the request's
// Authorization header in an error body does not get it printed.
func TestEchoedCredentialsAreRedacted(t *testing.T) {
	ctx := context.Background()
	for _, code := range []int{http.StatusForbidden, http.StatusInternalServerError, http.StatusTeapot} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(code)
			fmt.Fprintf(w, "denied: you sent Authorization: %s", r.Header.Get("Authorization"))
		}))
		for _, env := range []map[string]string{
			{EnvUser: "bob", EnvPassword: "hunter22pw"},
			{EnvToken: "tok-hunter22"},
		} {
			r, err := Open(ctx, srv.URL, Options{Getenv: envMap(env)})
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = r.GetAction(ctx, hexOf([]byte("x")))
			if err == nil {
				t.Fatalf("status %d: no error", code)
			}
			for _, bad := range []string{"hunter22", "Ym9iOmh1bnRlcjIycHc"} {
				if strings.Contains(err.Error(), bad) {
					t.Errorf("status %d: the error reveals %s: %v", code, bad, err)
				}
			}
			closeOK(t, r)
		}
		srv.Close()
	}
}
