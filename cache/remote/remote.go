// Package remote shares mlbuild's cache with a team through servers and
// object stores that already exist: the Bazel HTTP remote cache protocol
// (bazel-remote, or nginx with WebDAV PUT), object stores (S3 and
// S3-compatible stores, Google Cloud Storage, Azure Blob Storage) and a
// plain directory (a shared mount).
//
// Every protocol is spoken here with net/http: no cloud SDK is linked. Go
// runs the initialisers of every package a binary links at each start, and
// those of the AWS, Azure and Google SDKs (endpoint tables, protobuf and
// gRPC registrations) cost more than a whole no-op build; so each backend
// signs its own requests (SigV4 for S3, Shared Key or OAuth tokens for
// Azure, OAuth tokens for GCS) and finds credentials where the SDKs do.
//
// A remote holds two kinds of objects, each named by 64 lowercase hex
// digits: blobs of the content-addressed store under cas/<sha256 of the
// content>, and action results (mlbuild's JSON) under ac/<step key>. Pull
// and Push move one action and every blob its outputs need between a remote
// and the local store, verifying every download against its digest.
//
// Credentials are read from the environment only and never written to
// disk, logs or error messages.
package remote

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/mlbuild/mlbuild/internal/lazyre"
)

// Store is a remote cache speaking a protocol existing servers implement.
// Its methods are safe for concurrent use.
type Store interface {
	// GetAction returns the bytes stored under an action key; ok is false
	// when absent.
	GetAction(ctx context.Context, key string) (data []byte, ok bool, err error)
	// PutAction stores an action result's bytes (small JSON) under key.
	PutAction(ctx context.Context, key string, data []byte) error
	// HasBlob reports whether the CAS holds digest.
	HasBlob(ctx context.Context, digest string) (bool, error)
	// OpenBlob streams a blob; ErrNotFound when absent. The caller
	// verifies the digest.
	OpenBlob(ctx context.Context, digest string) (io.ReadCloser, error)
	// PutBlob uploads size bytes read from r under digest. When r fails
	// (or yields other than size bytes) the upload is aborted, and no
	// object that a reader could take for whole is left under digest.
	PutBlob(ctx context.Context, digest string, size int64, r io.Reader) error
	// String names the remote with any credentials redacted.
	String() string
	Close() error
}

// ErrNotFound is returned by OpenBlob for a blob the remote does not hold.
var ErrNotFound = errors.New("not found in the remote cache")

// ErrCorrupt marks an object of the remote that is not what its name says:
// a blob whose content does not hash to its digest, or an action result
// that is not valid. Such an object is never used.
var ErrCorrupt = errors.New("corrupt object in the remote cache")

// ErrAuth marks a remote that refused the credentials (or their absence):
// HTTP 401 or 403, or a bucket's permission error.
var ErrAuth = errors.New("remote cache refused access")

// Environment variables read by the HTTP backend.
const (
	EnvToken    = "MLBUILD_REMOTE_TOKEN"
	EnvUser     = "MLBUILD_REMOTE_USER"
	EnvPassword = "MLBUILD_REMOTE_PASSWORD"
	EnvCACert   = "MLBUILD_REMOTE_CA_CERT"
)

// Options tunes Open.
type Options struct {
	// Getenv reads credentials (os.Getenv when nil): MLBUILD_REMOTE_TOKEN
	// (bearer) or MLBUILD_REMOTE_USER + MLBUILD_REMOTE_PASSWORD (basic) for
	// HTTP; MLBUILD_REMOTE_CA_CERT (PEM file) to trust a private CA. Bucket
	// backends read the cloud SDKs' usual variables through it
	// (AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL, GOOGLE_APPLICATION_CREDENTIALS,
	// AZURE_STORAGE_ACCOUNT...; see docs/sharing.md).
	//
	// The limits below, when 0, come from MLBUILD_REMOTE_TIMEOUT,
	// MLBUILD_REMOTE_IDLE_TIMEOUT, MLBUILD_REMOTE_TRANSFER_TIMEOUT and
	// MLBUILD_REMOTE_MAX_BLOB_SIZE, else from the defaults.
	Getenv func(string) string
	// Timeout bounds connecting and waiting for a response's headers, and
	// small requests (an action result, a HEAD) as a whole (default 30s).
	Timeout time.Duration
	// IdleTimeout bounds the wait for the next byte of any transfer, in
	// either direction (default 60s).
	IdleTimeout time.Duration
	// TransferTimeout bounds one blob's download or upload as a whole
	// (default 1h).
	TransferTimeout time.Duration
	// MaxBlobSize is the largest blob Pull accepts from the remote
	// (default 64 GiB); an action result that claims a larger one is
	// refused before anything is downloaded.
	MaxBlobSize int64
	// Log receives warnings (nil discards).
	Log *slog.Logger
}

func (o *Options) defaults() error {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o.resolveLimits()
}

// Open picks a backend by URL scheme: http:// and https:// speak the Bazel
// HTTP remote cache protocol (GET/PUT/HEAD <base>/cas/<sha256 hex> and
// <base>/ac/<key hex>), as served by bazel-remote or nginx with WebDAV PUT;
// s3://, gs://, azblob://, file:// are buckets (objects
// "cas/<hex>" and "ac/<hex>" under the bucket/prefix). Open does no network
// I/O: an unreachable remote shows on the first request.
func Open(ctx context.Context, rawURL string, opts Options) (Store, error) {
	if err := opts.defaults(); err != nil {
		return nil, fmt.Errorf("remote cache: %w", err)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Parse's error quotes the URL: leave it out.
		return nil, fmt.Errorf("remote cache URL %s: not a valid URL", redactRaw(rawURL))
	}
	if err := refuseCredentials(u); err != nil {
		return nil, err
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		return openHTTP(u, opts)
	case "s3", "gs", "azblob", "file":
		return openBucket(ctx, u, opts)
	case "":
		return nil, fmt.Errorf("remote cache URL %q has no scheme: use http://, https://, s3://, gs://, azblob:// or file://", redactURL(u))
	default:
		return nil, fmt.Errorf("remote cache URL %s: unsupported scheme %q (use http://, https://, s3://, gs://, azblob:// or file://)", redactURL(u), u.Scheme)
	}
}

// validHex reports whether s is 64 lowercase hex digits, the only form of
// digest and key that becomes part of a URL or object name.
func validHex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func checkHex(what, s string) error {
	if !validHex(s) {
		return fmt.Errorf("remote cache: %s %q is not 64 lowercase hex digits", what, s)
	}
	return nil
}

func short(d string) string {
	if len(d) > 12 {
		return d[:12]
	}
	return d
}

// secretParam matches the names of URL query parameters whose values are
// secrets (signatures, tokens, keys, SAS tokens).
var secretParam = lazyre.New(`(?i)(sig|signature|token|secret|password|passwd|key|credential|auth|sas|^se$|^sv$|^sp$|^st$|^skoid$|^sktid$|^ske$|^skv$|^sks$|^skt$)`)

// credentialParam matches the names of URL query parameters that carry a
// credential (as opposed to secretParam, which also redacts harmless
// names such as kmskeyid): Open refuses a URL with one.
var credentialParam = lazyre.New(`(?i)(^sig$|signature|token|secret|passw|credential|access_?key|^sas$|^auth)`)

// credentialHelp says where each kind of remote takes its credentials.
func credentialHelp(scheme string) string {
	switch strings.ToLower(scheme) {
	case "http", "https":
		return fmt.Sprintf("set %s for a bearer token, or %s and %s for basic auth", EnvToken, EnvUser, EnvPassword)
	case "s3":
		return "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"
	case "gs":
		return "set GOOGLE_APPLICATION_CREDENTIALS"
	case "azblob":
		return "set AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN"
	}
	return "credentials come from the environment (see docs/sharing.md)"
}

// refuseCredentials rejects a remote URL that carries a credential: a
// user:password, a query parameter that is a credential, a URL inside a
// parameter (such as S3's endpoint=) with a user:password, or a fragment
// (which servers never see, and which is where tokens are pasted). The
// message says where credentials go instead, and quotes the URL redacted.
func refuseCredentials(u *url.URL) error {
	refuse := func(what string) error {
		return fmt.Errorf("remote cache URL %s: %s (a URL ends up in pipeline files, shell history and logs); %s", redactURL(u), what, credentialHelp(u.Scheme))
	}
	if u.User != nil {
		return refuse("credentials in the URL are not accepted")
	}
	if u.Fragment != "" || strings.Contains(u.String(), "#") {
		return refuse("a remote cache URL takes no #fragment")
	}
	for k, vs := range u.Query() {
		if credentialParam.MatchString(k) {
			return refuse(fmt.Sprintf("credentials in the URL (%s=) are not accepted", k))
		}
		for _, v := range vs {
			if pu, err := url.Parse(v); err == nil && pu.User != nil {
				return refuse(fmt.Sprintf("credentials in the URL's %s= are not accepted", k))
			}
		}
	}
	return nil
}

// redactURL renders u without userinfo or fragment, with secret query
// values replaced and any URL inside a query value redacted likewise.
func redactURL(u *url.URL) string {
	c := *u
	if c.User != nil {
		c.User = url.User("REDACTED")
	}
	if c.Fragment != "" || c.RawFragment != "" {
		c.Fragment, c.RawFragment = "REDACTED", ""
	}
	if c.RawQuery != "" {
		q := c.Query()
		for k, vs := range q {
			for i := range vs {
				switch {
				case secretParam.MatchString(k):
					vs[i] = "REDACTED"
				case strings.Contains(vs[i], "@") || strings.Contains(vs[i], "#"):
					if pu, err := url.Parse(vs[i]); err == nil && pu.Scheme != "" {
						vs[i] = redactURL(pu)
					} else {
						vs[i] = scrubText(vs[i], nil)
					}
				}
			}
		}
		c.RawQuery = q.Encode()
	}
	return c.String()
}

// redactRaw is redactURL for a string that may not parse.
func redactRaw(s string) string {
	if u, err := url.Parse(s); err == nil {
		return redactURL(u)
	}
	return scrubText(s, nil)
}

var (
	urlUserinfo = lazyre.New(`([A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s@"']+@`)
	// The same, URL-encoded (inside a query value).
	urlUserinfoEnc = lazyre.New(`(?i)([A-Za-z][A-Za-z0-9+.-]*%3A%2F%2F)[^/?#&\s@"']+?%40`)
	queryValue     = lazyre.New(`([?&;])([A-Za-z0-9_.-]+)=([^&\s"'#]*)`)
	urlFragment    = lazyre.New(`([A-Za-z][A-Za-z0-9+.-]*://[^\s"'#]*)#[^\s"']*`)
	// Authorization header values, as a server may echo them back.
	authScheme = lazyre.New(`(?i)\b(basic|bearer|digest|negotiate|token|aws4-hmac-sha256)(\s+)[A-Za-z0-9+/=._~:,-]{4,}`)
	authHeader = lazyre.New(`(?i)\b(authorization|proxy-authorization|x-amz-security-token|x-api-key|cookie|set-cookie)(\s*[:=]\s*)[^\r\n"']+`)
	// key=value pairs of signatures and credentials outside a query.
	credPair = lazyre.New(`(?i)\b(signature|credential|x-amz-signature|x-amz-credential|sig|password|passwd|secret|token|access_?key)(\s*=\s*)[^\s&,;"']+`)
)

// scrubText removes what looks like a credential from a message: userinfo
// of URLs (also URL-encoded), URL fragments, Authorization header values
// and credential key=value pairs (a server may echo a request back),
// secret query parameter values, and the literal secrets given.
func scrubText(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "REDACTED")
		}
	}
	s = urlUserinfo.ReplaceAllString(s, "${1}REDACTED@")
	s = urlUserinfoEnc.ReplaceAllString(s, "${1}REDACTED%40")
	s = urlFragment.ReplaceAllString(s, "${1}#REDACTED")
	s = authHeader.ReplaceAllString(s, "${1}${2}REDACTED")
	s = authScheme.ReplaceAllString(s, "${1}${2}REDACTED")
	s = credPair.ReplaceAllString(s, "${1}${2}REDACTED")
	s = queryValue.ReplaceAllStringFunc(s, func(m string) string {
		sm := queryValue.FindStringSubmatch(m)
		if secretParam.MatchString(sm[2]) {
			return sm[1] + sm[2] + "=REDACTED"
		}
		return m
	})
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "REDACTED")
		}
	}
	return s
}

// scrubbedError is an error whose message has had credentials removed; it
// still unwraps to the original so that errors.Is/As see through it.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

func scrub(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := scrubText(msg, secrets)
	if clean == msg {
		return err
	}
	return &scrubbedError{msg: clean, err: err}
}

// errTruncated replaces io.EOF and io.ErrUnexpectedEOF when a connection
// ends before a transfer is complete: the cache's PutBlob takes those for a
// clean end of input, which a cut connection is not.
var errTruncated = errors.New("connection closed before the transfer was complete")

// unavailableError marks a failure to talk to the remote at all.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string { return e.err.Error() }
func (e *unavailableError) Unwrap() error { return e.err }

// StatusError is an HTTP response with an unexpected status.
type StatusError struct {
	Method string
	// Object is "cas/<digest>" or "ac/<key>".
	Object string
	Code   int
	Status string
	// Body is the start of the response body, cleaned for printing.
	Body string
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("%s %s: %s", e.Method, e.Object, e.Status)
	if e.Body != "" {
		s += ": " + e.Body
	}
	return s
}

// IsUnavailable reports whether err means the remote can't be reached
// (connection refused/reset, DNS, timeout, TLS handshake, a connection cut
// mid-transfer, HTTP 5xx or 429): callers degrade to local-only on it. A
// cancellation of the caller's context is not unavailability.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	var ue *unavailableError
	if errors.As(err, &ue) {
		return true
	}
	if errors.Is(err, errTruncated) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code >= 500 || se.Code == 429 || se.Code == 408
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	for _, errno := range []syscall.Errno{syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE, syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ENETDOWN, syscall.ETIMEDOUT} {
		if errors.Is(err, errno) {
			return true
		}
	}
	var (
		cve *tls.CertificateVerificationError
		rhe tls.RecordHeaderError
		ae  tls.AlertError
		uae x509.UnknownAuthorityError
		he  x509.HostnameError
		cie x509.CertificateInvalidError
	)
	return errors.As(err, &cve) || errors.As(err, &rhe) || errors.As(err, &ae) ||
		errors.As(err, &uae) || errors.As(err, &he) || errors.As(err, &cie)
}
