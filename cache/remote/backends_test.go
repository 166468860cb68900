package remote

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mlbuild/mlbuild/cache/remote/remotetest"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func writeObjectFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestNginx(t *testing.T) {
	n := remotetest.StartNginx(t)
	runScenario(t, backendCase{
		url:     n.URL,
		opts:    Options{Getenv: envMap(nil)},
		corrupt: func(t *testing.T, object string, data []byte) { writeObjectFile(t, n.ObjectPath(object), data) },
		stop:    func(t *testing.T) { n.Stop() },
	})
}

func TestNginxBasicAuth(t *testing.T) {
	const password = "s3cret-Passw0rd"
	n := remotetest.StartNginx(t, "alice:{PLAIN}"+password)
	ctx := context.Background()
	runScenario(t, backendCase{
		url:     n.URL + "/",
		opts:    Options{Getenv: envMap(map[string]string{EnvUser: "alice", EnvPassword: password})},
		corrupt: func(t *testing.T, object string, data []byte) { writeObjectFile(t, n.ObjectPath(object), data) },
		secrets: []string{password},
	})

	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"none", nil, EnvToken},
		{"wrong password", map[string]string{EnvUser: "alice", EnvPassword: "wrong-password"}, "credentials from " + EnvUser},
		{"bearer", map[string]string{EnvToken: "tok-123456"}, "credentials from " + EnvToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Open(ctx, n.URL, Options{Getenv: envMap(tc.env)})
			if err != nil {
				t.Fatal(err)
			}
			defer closeOK(t, r)
			_, err = r.HasBlob(ctx, hexOf([]byte("x")))
			if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("HasBlob with %s credentials: %v; want ErrAuth mentioning %s", tc.name, err, tc.want)
			}
			if IsUnavailable(err) {
				t.Errorf("IsUnavailable(auth error) = true")
			}
			for _, sec := range []string{"wrong-password", "tok-123456", password} {
				if strings.Contains(err.Error(), sec) {
					t.Errorf("error reveals a credential: %v", err)
				}
			}
		})
	}
}

// TestNginxPartialUpload checks that an upload cut midway leaves nothing
// under the blob's name on the server.
func TestNginxPartialUpload(t *testing.T) {
	n := remotetest.StartNginx(t)
	ctx := context.Background()
	r, err := Open(ctx, n.URL, Options{Getenv: envMap(nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, r)
	data := randBytes(9, 3<<20)
	d := hexOf(data)
	boom := errors.New("local read failed")
	err = r.PutBlob(ctx, d, int64(len(data)), &errAfterReader{r: bytes.NewReader(data[:2<<20]), err: boom})
	if err == nil {
		t.Fatal("PutBlob of a failing reader succeeded")
	}
	if !errors.Is(err, boom) {
		t.Errorf("PutBlob error %v does not carry the reader's", err)
	}
	if IsUnavailable(err) {
		t.Errorf("a local read failure counts as an unavailable remote: %v", err)
	}
	if ok, err := r.HasBlob(ctx, d); err != nil || ok {
		t.Errorf("after a cut upload HasBlob = %v, %v; want false", ok, err)
	}
	if _, err := os.Stat(n.ObjectPath("cas/" + d)); !os.IsNotExist(err) {
		t.Errorf("a partial object is on the server: %v", err)
	}
}

type errAfterReader struct {
	r   *bytes.Reader
	err error
}

func (e *errAfterReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		return n, e.err
	}
	return n, nil
}

func TestFileBucket(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "team cache")
	u := (&url.URL{Scheme: "file", Path: dir}).String()
	// A missing directory (an unmounted share) is an error, unless the
	// URL asks for it to be created.
	if _, err := Open(context.Background(), u, Options{Getenv: envMap(nil)}); err == nil || !strings.Contains(err.Error(), "create_dir=true") {
		t.Errorf("Open of a missing directory: %v; want an error suggesting create_dir=true", err)
	}
	r, err := Open(context.Background(), u+"?create_dir=true", Options{Getenv: envMap(nil)})
	if err != nil {
		t.Fatal(err)
	}
	closeOK(t, r)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("create_dir=true did not create the directory: %v", err)
	}
	runScenario(t, backendCase{
		url:  u,
		opts: Options{Getenv: envMap(nil)},
		corrupt: func(t *testing.T, object string, data []byte) {
			writeObjectFile(t, filepath.Join(dir, filepath.FromSlash(object)), data)
		},
	})
	// Nothing but the objects: no metadata sidecars, no temporary files.
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		parts := strings.Split(rel, string(filepath.Separator))
		if len(parts) != 2 || (parts[0] != "cas" && parts[0] != "ac") || !validHex(parts[1]) {
			t.Errorf("unexpected file in the bucket directory: %s", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestFileBucketPartialUpload(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	r, err := Open(ctx, "file://"+dir, Options{Getenv: envMap(nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, r)
	data := randBytes(10, 3<<20)
	d := hexOf(data)
	err = r.PutBlob(ctx, d, int64(len(data)), &errAfterReader{r: bytes.NewReader(data[:1<<20]), err: errors.New("boom")})
	if err == nil {
		t.Fatal("PutBlob of a failing reader succeeded")
	}
	// A short reader (no error, too few bytes) is refused too.
	if err := r.PutBlob(ctx, d, int64(len(data)), bytes.NewReader(data[:10])); err == nil {
		t.Fatal("PutBlob of a short reader succeeded")
	}
	if ok, err := r.HasBlob(ctx, d); err != nil || ok {
		t.Errorf("after cut uploads HasBlob = %v, %v; want false", ok, err)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "cas"))
	for _, e := range ents {
		t.Errorf("leftover in the bucket: cas/%s", e.Name())
	}
}

// s3Env points the AWS SDK at test credentials only.
func s3Env(t *testing.T, secret string) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAMLBUILDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// TestS3 runs the scenario against gofakes3, an in-process S3
// implementation, served over loopback HTTP (Debian ships no S3-compatible
// server: no MinIO, and radosgw needs a whole Ceph cluster).
func TestS3(t *testing.T) {
	const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYTESTKEY"
	s3Env(t, secret)
	mem := s3mem.New()
	srv := httptest.NewServer(gofakes3.New(mem).Server())
	defer srv.Close()
	if err := mem.CreateBucket("team-cache"); err != nil {
		t.Fatal(err)
	}
	q := url.Values{"endpoint": {srv.URL}, "use_path_style": {"true"}, "region": {"us-east-1"}}
	runScenario(t, backendCase{
		url:  "s3://team-cache/mlbuild?" + q.Encode(),
		opts: Options{Getenv: os.Getenv},
		corrupt: func(t *testing.T, object string, data []byte) {
			if _, err := mem.PutObject("team-cache", "mlbuild/"+object, map[string]string{}, bytes.NewReader(data), int64(len(data)), nil); err != nil {
				t.Fatal(err)
			}
		},
		stop:    func(t *testing.T) { srv.CloseClientConnections(); srv.Close() },
		secrets: []string{secret},
	})
	// The objects sit under the prefix the URL's path gave.
	objs, err := mem.ListBucket("team-cache", &gofakes3.Prefix{}, gofakes3.ListBucketPage{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs.Contents {
		if !strings.HasPrefix(o.Key, "mlbuild/cas/") && !strings.HasPrefix(o.Key, "mlbuild/ac/") {
			t.Errorf("unexpected object %s", o.Key)
		}
	}
}

// TestS3CustomEndpointNoIMDS: with a custom (non-AWS) endpoint and no
// credentials anywhere, the AWS SDK does not probe the instance metadata
// service: requests go unsigned, with a warning.
func TestS3CustomEndpointNoIMDS(t *testing.T) {
	s3Env(t, "")
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("HOME", t.TempDir())
	t.Setenv("AWS_EC2_METADATA_DISABLED", "false")
	var probes atomic.Int64
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		probes.Add(1)
		http.NotFound(w, r)
	}))
	defer imds.Close()
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.URL)
	mem := s3mem.New()
	srv := httptest.NewServer(gofakes3.New(mem).Server())
	defer srv.Close()
	if err := mem.CreateBucket("team-cache"); err != nil {
		t.Fatal(err)
	}
	q := url.Values{"endpoint": {srv.URL}, "use_path_style": {"true"}, "region": {"us-east-1"}}
	var logs bytes.Buffer
	r, err := Open(context.Background(), "s3://team-cache/mlbuild?"+q.Encode(), Options{Getenv: os.Getenv, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, r)
	if _, err := r.HasBlob(context.Background(), hexOf([]byte("x"))); err != nil {
		t.Fatalf("HasBlob: %v", err)
	}
	if n := probes.Load(); n != 0 {
		t.Errorf("the instance metadata service was probed %d times", n)
	}
	if !strings.Contains(logs.String(), "AWS_ACCESS_KEY_ID") {
		t.Errorf("no warning about the missing credentials: %s", logs.String())
	}
	// Credentials inside AWS_ENDPOINT_URL are refused like those in the URL.
	t.Setenv("AWS_ENDPOINT_URL", "http://bob:hunter22@minio:9000")
	if _, err := Open(context.Background(), "s3://team-cache", Options{Getenv: os.Getenv}); err == nil || strings.Contains(err.Error(), "hunter22") {
		t.Errorf("Open with credentials in AWS_ENDPOINT_URL: %v", err)
	}
}
