// Package remotetest starts real remote-cache servers for tests (and, with
// StartNginxServer, for the benchmark): Debian's nginx serving WebDAV PUT on
// loopback (the Bazel HTTP cache protocol) and an in-process S3
// implementation (gofakes3) on loopback.
package remotetest

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// Nginx is an nginx started by a test or a benchmark: WebDAV PUT on
// loopback, files under Root (objects at Root/cas/<digest> and Root/ac/<key>).
type Nginx struct {
	URL  string
	Root string
	proc *process
	dir  string
}

// NginxBinary is the path of Debian's nginx, or "" when it is not
// installed.
func NginxBinary() string {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// ErrNoNginx is returned by StartNginxServer when nginx is not installed.
var ErrNoNginx = errors.New("nginx not found: install Debian's nginx (apt-get install nginx-light; .ci/run does)")

// StartNginx starts an nginx with its own config, port and temp paths in a
// temporary directory, and stops it when the test ends. With htpasswd
// lines ("user:{PLAIN}password") it requires basic auth. It skips the
// test when nginx is not installed.
func StartNginx(t testing.TB, htpasswd ...string) *Nginx {
	t.Helper()
	if NginxBinary() == "" {
		t.Skip("nginx not found: install Debian's nginx (apt-get install nginx-light; .ci/run does) to run the HTTP remote cache tests")
	}
	s, err := StartNginxServer(t.TempDir(), htpasswd...)
	if err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// StartNginxServer starts an nginx serving WebDAV PUT on a free loopback
// port, with its config, logs, temp paths and objects (dir/root) in dir,
// which must exist; with htpasswd lines it requires basic auth. The caller
// calls Stop (nginx is also killed when the calling process dies). It
// returns ErrNoNginx when nginx is not installed.
func StartNginxServer(dir string, htpasswd ...string) (*Nginx, error) {
	bin := NginxBinary()
	if bin == "" {
		return nil, ErrNoNginx
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		// The free port may be taken by the time nginx binds it: retry.
		s, err := tryStartNginx(dir, bin, htpasswd)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	// The port must be free again for the server about to take it.
	if err := l.Close(); err != nil {
		return 0, err
	}
	return port, nil
}

func tryStartNginx(dir, bin string, htpasswd []string) (*Nginx, error) {
	root := filepath.Join(dir, "root")
	for _, d := range []string{root, filepath.Join(dir, "tmp"), filepath.Join(dir, "logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	auth := ""
	if len(htpasswd) > 0 {
		pw := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(pw, []byte(strings.Join(htpasswd, "\n")+"\n"), 0o600); err != nil {
			return nil, err
		}
		auth = fmt.Sprintf("auth_basic \"mlbuild cache\";\n            auth_basic_user_file %s;", pw)
	}
	tmp := filepath.Join(dir, "tmp")
	// master_process off: one process, which the tests can kill to make
	// the server vanish at once.
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/logs/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %[2]s/body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    server {
        listen 127.0.0.1:%[3]d;
        root %[4]s;
        location / {
            dav_methods PUT DELETE;
            create_full_put_path on;
            client_max_body_size 0;
            dav_access user:rw;
            %[5]s
        }
    }
}
`, dir, tmp, port, root, auth)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-p", dir, "-e", filepath.Join(dir, "logs", "error.log"), "-c", confPath)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	proc, err := startProcess(cmd)
	if err != nil {
		return nil, err
	}
	s := &Nginx{URL: fmt.Sprintf("http://127.0.0.1:%d", port), Root: root, proc: proc, dir: dir}
	client := &http.Client{Timeout: time.Second}
	err = proc.waitReady(10*time.Second, 20*time.Millisecond, func() error {
		resp, err := client.Get(s.URL + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}, s.kill)
	if errors.Is(err, errExited) {
		log, _ := os.ReadFile(filepath.Join(dir, "logs", "error.log"))
		return nil, fmt.Errorf("nginx exited: %s %s", out.String(), log)
	}
	if err != nil {
		return nil, fmt.Errorf("nginx on %s: %w", s.URL, err)
	}
	return s, nil
}

// Stop kills nginx (as a crash would) and waits for it to end.
func (s *Nginx) Stop() { s.proc.stop(s.kill) }

func (s *Nginx) kill() { _ = s.proc.cmd.Process.Kill() }

// ObjectPath is where nginx keeps an object ("cas/<digest>").
func (s *Nginx) ObjectPath(object string) string {
	return filepath.Join(s.Root, filepath.FromSlash(object))
}

// S3 is an in-process S3 server (gofakes3, in memory) on loopback.
type S3 struct {
	// URL is an mlbuild remote URL for Bucket under the prefix "mlbuild".
	URL    string
	Bucket string
	Mem    *s3mem.Backend
	srv    *httptest.Server
}

// StartS3 serves a fresh bucket on loopback and points the AWS SDK's
// environment at test credentials (never a real account) for the test.
func StartS3(t testing.TB) *S3 {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAMLBUILDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "mlbuild-test-secret")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ENDPOINT_URL", "")
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	mem := s3mem.New()
	srv := httptest.NewServer(gofakes3.New(mem).Server())
	t.Cleanup(srv.Close)
	const bucket = "team-cache"
	if err := mem.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	q := url.Values{"endpoint": {srv.URL}, "use_path_style": {"true"}, "region": {"us-east-1"}}
	return &S3{URL: "s3://" + bucket + "/mlbuild?" + q.Encode(), Bucket: bucket, Mem: mem, srv: srv}
}

// Stop makes the server vanish.
func (s *S3) Stop() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}
