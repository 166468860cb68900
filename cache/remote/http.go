package remote

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode"
)

// maxActionBytes bounds an action result read from a remote: they are
// small JSON documents, and a larger object is not one.
const maxActionBytes = 16 << 20

// httpParallel is how many connections per host the HTTP client keeps idle;
// at least the transfer parallelism of Pull and Push.
const httpParallel = 2 * Parallelism

// httpStore speaks the Bazel HTTP remote cache protocol.
type httpStore struct {
	base    string // scheme://host[/path] without a trailing slash
	client  *http.Client
	auth    func(*http.Request)
	authEnv string // which variables the credentials came from ("" if none)
	secrets []string
	lim     limits
}

func openHTTP(u *url.URL, opts Options) (*httpStore, error) {
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("remote cache URL %s: an HTTP remote takes no query or fragment (credentials come from %s or %s/%s)", redactURL(u), EnvToken, EnvUser, EnvPassword)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("remote cache URL %s: no host", redactURL(u))
	}
	s := &httpStore{base: strings.TrimRight(u.Scheme+"://"+u.Host+u.EscapedPath(), "/"), lim: opts.limits()}
	token := opts.Getenv(EnvToken)
	user, password := opts.Getenv(EnvUser), opts.Getenv(EnvPassword)
	switch {
	case token != "" && (user != "" || password != ""):
		return nil, fmt.Errorf("remote cache %s: both %s and %s/%s are set; set one kind of credentials", s.base, EnvToken, EnvUser, EnvPassword)
	case token != "":
		s.auth = func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
		s.authEnv = EnvToken
		s.secrets = []string{token}
	case user != "" || password != "":
		if user == "" || password == "" {
			return nil, fmt.Errorf("remote cache %s: basic auth needs both %s and %s", s.base, EnvUser, EnvPassword)
		}
		s.auth = func(r *http.Request) { r.SetBasicAuth(user, password) }
		s.authEnv = EnvUser + "/" + EnvPassword
		// A server may echo the header back in an error body: its
		// encoded form is a secret too.
		s.secrets = []string{password, user + ":" + password, base64.StdEncoding.EncodeToString([]byte(user + ":" + password))}
	}
	if s.auth != nil && strings.EqualFold(u.Scheme, "http") && !isLoopback(u.Hostname()) {
		opts.Log.Warn("sending remote cache credentials over unencrypted http; use https", "remote", s.base)
	}

	tr, err := newTransport(opts)
	if err != nil {
		return nil, err
	}
	s.client = &http.Client{
		Transport: tr,
		// Never follow a redirect to another host with our credentials.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			if req.URL.Host != via[0].URL.Host {
				return fmt.Errorf("refusing a redirect to another host (%s)", req.URL.Host)
			}
			return nil
		},
	}
	return s, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (s *httpStore) String() string { return s.base }

func (s *httpStore) Close() error {
	s.client.CloseIdleConnections()
	return nil
}

// bodyReader wraps an upload body to tell its own errors (the local side)
// from the transport's.
type bodyReader struct {
	r   io.Reader
	n   int64
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// do sends a request for object ("cas/<hex>" or "ac/<hex>") under the
// watch w, whose idle clock every piece of the upload body restarts. A
// response with any status is returned; a failure to get one is wrapped
// as unavailable (unless it came from body or the caller's ctx).
func (s *httpStore) do(ctx context.Context, w *watch, method, object string, body io.Reader, size int64) (*http.Response, error) {
	var br *bodyReader
	var rb io.Reader
	if body != nil {
		br = &bodyReader{r: watchedReader{r: body, w: w}}
		rb = br
	}
	req, err := http.NewRequestWithContext(w.ctx, method, s.base+"/"+object, rb)
	if err != nil {
		return nil, fmt.Errorf("remote %s %s: %w", method, object, err)
	}
	if body != nil {
		req.ContentLength = size
		if size == 0 {
			// A zero ContentLength with a non-nil body means "unknown"
			// to net/http; the empty blob has no bytes to send.
			req.Body = http.NoBody
		}
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	if s.auth != nil {
		s.auth(req)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		// *url.Error quotes the URL; the URL has no credentials (Open
		// refuses them), but the message is clearer without it.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		switch {
		case br != nil && br.err != nil && errors.Is(err, br.err):
			// The upload's own reader failed (the local side): report
			// that, without the transport's wrapping, which would make
			// it look like a network failure.
			return nil, fmt.Errorf("remote %s %s %s: upload aborted: %w", method, s.base, object, br.err)
		case w.stalled() != nil:
			return nil, &unavailableError{fmt.Errorf("remote %s %s %s: %w", method, s.base, object, w.stalled())}
		case ctx.Err() != nil:
			return nil, fmt.Errorf("remote %s %s %s: %w", method, s.base, object, ctx.Err())
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			err = errTruncated
		}
		return nil, scrub(&unavailableError{fmt.Errorf("remote %s %s %s: %w", method, s.base, object, err)}, s.secrets)
	}
	return resp, nil
}

// statusError turns an unexpected response into an error (and closes it).
func (s *httpStore) statusError(resp *http.Response, method, object string) error {
	defer drain(resp)
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	se := &StatusError{Method: method, Object: object, Code: resp.StatusCode, Status: resp.Status, Body: cleanSnippet(snippet)}
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		how := fmt.Sprintf("no credentials were sent: set %s (bearer token) or %s and %s (basic auth)", EnvToken, EnvUser, EnvPassword)
		if s.authEnv != "" {
			how = fmt.Sprintf("the credentials from %s were refused", s.authEnv)
		}
		return scrub(fmt.Errorf("remote cache %s: %w (%s; %s)", s.base, ErrAuth, se, how), s.secrets)
	case http.StatusBadRequest:
		if strings.HasPrefix(object, "ac/") && method == http.MethodPut {
			return scrub(fmt.Errorf("remote cache %s: %w (a bazel-remote server must run with --disable_http_ac_validation to store mlbuild's action results)", s.base, se), s.secrets)
		}
	}
	return scrub(fmt.Errorf("remote cache %s: %w", s.base, se), s.secrets)
}

// cleanSnippet renders the start of a response body printable: HTML tags
// and control characters dropped, white space collapsed.
func cleanSnippet(b []byte) string {
	var sb strings.Builder
	inTag := false
	for _, r := range string(bytes.ToValidUTF8(b, []byte("?"))) {
		switch {
		case r == '<':
			inTag = true
			sb.WriteByte(' ')
		case r == '>':
			inTag = false
		case inTag:
		case unicode.IsSpace(r) || unicode.IsControl(r):
			sb.WriteByte(' ')
		default:
			sb.WriteRune(r)
		}
	}
	s := strings.Join(strings.Fields(sb.String()), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// newTransport is the HTTP transport of every backend: connecting, the TLS
// handshake and waiting for a response's headers bounded by opts.Timeout
// (when set), idle connections kept for httpParallel transfers, bodies as
// stored (no transparent decompression), and the private CAs of the PEM
// files that MLBUILD_REMOTE_CA_CERT and the variables caEnv name (such as
// AWS_CA_BUNDLE) trusted besides the system's.
func newTransport(opts Options, caEnv ...string) (*http.Transport, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if opts.Timeout > 0 {
		dialer := &net.Dialer{Timeout: opts.Timeout, KeepAlive: 30 * opts.Timeout}
		tr.DialContext = dialer.DialContext
		tr.TLSHandshakeTimeout = opts.Timeout
		tr.ResponseHeaderTimeout = opts.Timeout
	}
	tr.MaxIdleConns = 4 * httpParallel
	tr.MaxIdleConnsPerHost = httpParallel
	// Blobs are mostly incompressible, and bazel-remote would otherwise
	// offer its own encodings; ask for the bytes as stored.
	tr.DisableCompression = true
	var pool *x509.CertPool
	for _, env := range append([]string{EnvCACert}, caEnv...) {
		ca := opts.Getenv(env)
		if ca == "" {
			continue
		}
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("remote cache: read %s (%s): %w", env, ca, err)
		}
		if pool == nil {
			if pool, err = x509.SystemCertPool(); err != nil || pool == nil {
				pool = x509.NewCertPool()
			}
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("remote cache: %s (%s) holds no PEM certificate", env, ca)
		}
	}
	if pool != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		tr.ForceAttemptHTTP2 = true
	}
	return tr, nil
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

func (s *httpStore) GetAction(ctx context.Context, key string) ([]byte, bool, error) {
	if err := checkHex("action key", key); err != nil {
		return nil, false, err
	}
	object := "ac/" + key
	w := newWatch(ctx, s.lim, s.lim.timeout, EnvTimeout)
	defer w.stop()
	resp, err := s.do(ctx, w, http.MethodGet, object, nil, 0)
	if err != nil {
		return nil, false, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		drain(resp)
		return nil, false, nil
	default:
		return nil, false, s.statusError(resp, http.MethodGet, object)
	}
	defer resp.Body.Close()
	if resp.ContentLength > maxActionBytes {
		return nil, false, fmt.Errorf("%w: action %s is %d bytes, over the %d an action result may have", ErrCorrupt, key, resp.ContentLength, maxActionBytes)
	}
	b, err := io.ReadAll(io.LimitReader(watchedReader{r: resp.Body, w: w}, maxActionBytes+1))
	if err != nil {
		return nil, false, s.readError(ctx, w, object, err)
	}
	if len(b) > maxActionBytes {
		return nil, false, fmt.Errorf("%w: action %s is over %d bytes", ErrCorrupt, key, maxActionBytes)
	}
	return b, true, nil
}

// readError wraps an error reading a response body.
func (s *httpStore) readError(ctx context.Context, w *watch, object string, err error) error {
	if se := w.stalled(); se != nil {
		return &unavailableError{fmt.Errorf("remote GET %s %s: %w", s.base, object, se)}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("remote GET %s %s: %w", s.base, object, ctx.Err())
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = errTruncated
	}
	return scrub(&unavailableError{fmt.Errorf("remote GET %s %s: %w", s.base, object, err)}, s.secrets)
}

func (s *httpStore) PutAction(ctx context.Context, key string, data []byte) error {
	if err := checkHex("action key", key); err != nil {
		return err
	}
	return s.put(ctx, s.lim.timeout, EnvTimeout, "ac/"+key, int64(len(data)), bytes.NewReader(data))
}

func (s *httpStore) put(ctx context.Context, total time.Duration, env, object string, size int64, r io.Reader) error {
	w := newWatch(ctx, s.lim, total, env)
	defer w.stop()
	resp, err := s.do(ctx, w, http.MethodPut, object, r, size)
	if err != nil {
		return err
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusCreated, http.StatusNoContent, http.StatusAccepted:
		drain(resp)
		return nil
	default:
		return s.statusError(resp, http.MethodPut, object)
	}
}

func (s *httpStore) HasBlob(ctx context.Context, digest string) (bool, error) {
	if err := checkHex("digest", digest); err != nil {
		return false, err
	}
	object := "cas/" + digest
	w := newWatch(ctx, s.lim, s.lim.timeout, EnvTimeout)
	defer w.stop()
	resp, err := s.do(ctx, w, http.MethodHead, object, nil, 0)
	if err != nil {
		return false, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		drain(resp)
		return true, nil
	case http.StatusNotFound:
		drain(resp)
		return false, nil
	default:
		return false, s.statusError(resp, http.MethodHead, object)
	}
}

func (s *httpStore) OpenBlob(ctx context.Context, digest string) (io.ReadCloser, error) {
	if err := checkHex("digest", digest); err != nil {
		return nil, err
	}
	object := "cas/" + digest
	// The watch lives as long as the body: httpBody.Close stops it.
	w := newWatch(ctx, s.lim, s.lim.transfer, EnvTransferTimeout)
	resp, err := s.do(ctx, w, http.MethodGet, object, nil, 0)
	if err != nil {
		w.stop()
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return &httpBody{s: s, ctx: ctx, w: w, object: object, rc: resp.Body, size: resp.ContentLength}, nil
	case http.StatusNotFound:
		drain(resp)
		w.stop()
		return nil, fmt.Errorf("remote cache %s: blob %s: %w", s.base, digest, ErrNotFound)
	default:
		err := s.statusError(resp, http.MethodGet, object)
		w.stop()
		return nil, err
	}
}

// httpBody is a blob download; a connection cut midway reads as an
// unavailable-remote error, never as a clean end.
type httpBody struct {
	s      *httpStore
	ctx    context.Context
	w      *watch
	object string
	rc     io.ReadCloser
	size   int64 // Content-Length; -1 if not sent
}

func (b *httpBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.w.kick()
	}
	if err != nil && err != io.EOF {
		err = b.s.readError(b.ctx, b.w, b.object, err)
	}
	return n, err
}

// Size is the length the server announced (-1 when it did not), which
// Pull compares with the size the action result claims before reading.
func (b *httpBody) Size() int64 { return b.size }

func (b *httpBody) Close() error {
	err := b.rc.Close()
	b.w.stop()
	return err
}

func (s *httpStore) PutBlob(ctx context.Context, digest string, size int64, r io.Reader) error {
	if err := checkHex("digest", digest); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("remote cache: blob %s: negative size %d", short(digest), size)
	}
	// With ContentLength set, net/http sends exactly size bytes and fails
	// the request if r ends early or has more; the server (nginx writes a
	// temporary file and renames it; bazel-remote verifies the digest)
	// never stores a partial body.
	return s.put(ctx, s.lim.transfer, EnvTransferTimeout, "cas/"+digest, size, r)
}
