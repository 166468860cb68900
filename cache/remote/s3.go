package remote

// s3:// buckets, spoken to over S3's REST API with net/http and our own
// SigV4 signer (s3_auth.go), rather than through the AWS SDK, whose
// package initialisers (endpoint tables and the like) ran at every mlbuild
// start whether or not an s3:// remote was used.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// s3Params are the URL parameters an s3:// URL takes (prefix aside, which
// the caller handles).
var s3Params = []string{"region", "endpoint", "use_path_style", "s3ForcePathStyle", "disable_https", "anonymous", "profile",
	"dualstack", "fips", "ssetype", "kmskeyid", "request_checksum_calculation", "response_checksum_validation"}

// s3RetryWait is the wait before the first retry of a request S3 answered
// "try again" (429, 5xx); the next waits twice as long.
const s3RetryWait = 250 * time.Millisecond

// s3AbortTimeout bounds the request that aborts a failed multipart upload,
// sent even when the caller's context has ended.
const s3AbortTimeout = 10 * time.Second

// s3Objects is an S3 bucket (or an S3-compatible store's) as an
// objectStore.
type s3Objects struct {
	bucket    string
	scheme    string // https, or http
	host      string // the endpoint's host[:port], with the bucket in front when virtual-hosted
	basePath  string // the endpoint's path ("" or "/path"), with "/bucket" after it when path style
	region    string
	creds     *credCache // nil: unsigned requests
	env       *awsEnv
	client    *http.Client
	sse       string // x-amz-server-side-encryption, or ""
	kmsKey    string // x-amz-server-side-encryption-aws-kms-key-id, or ""
	log       *slog.Logger
	secrets   []string // static secrets known at open
	retryWait time.Duration
}

// openS3 opens bucket with the URL parameters q (prefix removed). It reads
// the AWS config files but does no network I/O: credentials that come
// from a process or a service are fetched at the first request.
func openS3(ctx context.Context, bucket string, q url.Values, opts Options) (*s3Objects, error) {
	_ = ctx // nothing to wait for: credentials are fetched lazily
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	name := "s3://" + bucket
	if bucket == "" {
		return nil, errors.New("s3: no bucket name")
	}
	if err := queryParams("s3", q, s3Params...); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	flags, err := s3Flags(q)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := s3Checksums(q); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	s := &s3Objects{bucket: bucket, log: opts.Log, retryWait: s3RetryWait}
	if s.sse, s.kmsKey, err = s3Encryption(q); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	endpoint, err := s3Endpoint(q, opts.Getenv, name)
	if err != nil {
		return nil, err
	}
	env, err := loadAWSEnv(opts.Getenv, q.Get("profile"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	s.env = env
	s.region = s3Region(q, env)
	env.region = s.region
	if err := s.address(endpoint, flags); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if s.client, err = s3Client(opts, 0, true); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if env.client, err = s3Client(opts, 0, true); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	env.local, _ = s3Client(Options{Getenv: func(string) string { return "" }}, time.Second, false)
	s.secrets = staticSecrets(env)
	if flags["anonymous"] {
		return s, nil
	}
	custom := endpoint != "" && !awsHost(endpoint)
	src, _, err := env.credentialChain(!custom)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	switch {
	case src != nil:
		s.creds = newCredCache(src)
	case custom:
		// An S3-compatible server off AWS never takes an instance role's
		// credentials, and probing IMDS would stall off EC2: unsigned
		// requests, which a server needing credentials refuses.
		opts.Log.Warn("no AWS credentials in the environment for a custom S3 endpoint: sending unsigned requests (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)", "remote", name)
	default:
		s.creds = newCredCache(func(context.Context) (awsCreds, error) {
			return awsCreds{}, fmt.Errorf("%w: no AWS credentials found (%s; AWS_EC2_METADATA_DISABLED turns off the instance role)", ErrAuth, credentialHelp("s3"))
		})
	}
	return s, nil
}

// s3Flags parses the boolean parameters.
func s3Flags(q url.Values) (map[string]bool, error) {
	flags := map[string]bool{}
	for _, k := range []string{"use_path_style", "s3ForcePathStyle", "disable_https", "anonymous", "dualstack", "fips"} {
		v := q.Get(k)
		if v == "" {
			continue
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("%s=%q: want true or false", k, v)
		}
		flags[k] = b
	}
	if flags["s3ForcePathStyle"] {
		flags["use_path_style"] = true
	}
	return flags, nil
}

// s3Checksums accepts the checksum parameters at the one behaviour there
// is: no CRCs sent or checked, since mlbuild verifies every blob's SHA-256.
func s3Checksums(q url.Values) error {
	for _, k := range []string{"request_checksum_calculation", "response_checksum_validation"} {
		switch v := q.Get(k); strings.ToLower(v) {
		case "", "when_required":
		case "when_supported":
			return fmt.Errorf("%s=when_supported is not supported: mlbuild sends and checks no CRC checksums (it verifies every blob's SHA-256 itself); remove the parameter or set it to when_required", k)
		default:
			return fmt.Errorf("%s=%q: want when_required", k, v)
		}
	}
	return nil
}

// s3Encryption reads ssetype and kmskeyid: the server-side encryption
// headers of uploads. A KMS key implies ssetype=aws:kms.
func s3Encryption(q url.Values) (sse, kmsKey string, err error) {
	sse, kmsKey = q.Get("ssetype"), q.Get("kmskeyid")
	switch sse {
	case "", "AES256", "aws:kms", "aws:kms:dsse":
	default:
		return "", "", fmt.Errorf("ssetype=%q: want AES256, aws:kms or aws:kms:dsse", sse)
	}
	if kmsKey != "" {
		if sse == "AES256" {
			return "", "", errors.New("kmskeyid needs ssetype=aws:kms, not AES256")
		}
		if sse == "" {
			sse = "aws:kms"
		}
	}
	return sse, kmsKey, nil
}

// s3Endpoint is endpoint=, else AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL
// ("" for AWS's own). Credentials inside those variables are refused.
func s3Endpoint(q url.Values, getenv func(string) string, name string) (string, error) {
	endpoint := q.Get("endpoint")
	if eu, err := url.Parse(endpoint); endpoint != "" && err == nil && eu.User != nil {
		return "", fmt.Errorf("remote cache %s: credentials in endpoint= are not accepted; %s", name, credentialHelp("s3"))
	}
	for _, env := range []string{"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"} {
		v := getenv(env)
		if v == "" {
			continue
		}
		if eu, err := url.Parse(v); err == nil && eu.User != nil {
			return "", fmt.Errorf("remote cache %s: credentials in %s are not accepted; %s", name, env, credentialHelp("s3"))
		}
		if endpoint == "" {
			endpoint = v
		}
	}
	return endpoint, nil
}

// s3Region is region=, else AWS_REGION, else AWS_DEFAULT_REGION, else the
// profile's region, else us-east-1.
func s3Region(q url.Values, env *awsEnv) string {
	for _, r := range []string{q.Get("region"), env.getenv("AWS_REGION"), env.getenv("AWS_DEFAULT_REGION"), env.config[env.profile]["region"]} {
		if r != "" {
			return r
		}
	}
	return "us-east-1"
}

// address sets the scheme, host and path requests go to: the endpoint
// given, or AWS's for the region; virtual-hosted style (the bucket in the
// host name) unless use_path_style, a bucket name that cannot be a host
// name label (dots break TLS's wildcard certificates), or an endpoint that
// is an IP address or localhost.
func (s *s3Objects) address(endpoint string, flags map[string]bool) error {
	pathStyle := flags["use_path_style"] || !virtualHostable(s.bucket)
	if endpoint != "" {
		eu, err := url.Parse(endpoint)
		if err != nil || (eu.Scheme != "http" && eu.Scheme != "https") || eu.Host == "" {
			return fmt.Errorf("endpoint %s: want an http:// or https:// URL", redactRaw(endpoint))
		}
		s.scheme, s.host, s.basePath = eu.Scheme, eu.Host, strings.TrimRight(eu.Path, "/")
		// An address or localhost has no subdomains to put the bucket in.
		if h := eu.Hostname(); h == "localhost" || net.ParseIP(h) != nil {
			pathStyle = true
		}
	} else {
		s.scheme = "https"
		if flags["disable_https"] {
			s.scheme = "http"
		}
		svc := "s3"
		if flags["fips"] {
			svc = "s3-fips"
		}
		if flags["dualstack"] {
			svc += ".dualstack"
		}
		suffix := "amazonaws.com"
		if strings.HasPrefix(s.region, "cn-") {
			suffix = "amazonaws.com.cn"
		}
		s.host = svc + "." + s.region + "." + suffix
	}
	if pathStyle {
		s.basePath += "/" + s.bucket
	} else {
		s.host = s.bucket + "." + s.host
	}
	return nil
}

// virtualHostable reports whether a bucket name can be a DNS label of
// the virtual-hosted address: lower case letters, digits and hyphens.
func virtualHostable(b string) bool {
	if len(b) < 3 || len(b) > 63 || b[0] == '-' || b[len(b)-1] == '-' {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// s3Client is an HTTP client on newTransport (AWS_CA_BUNDLE names extra
// CA certificates to trust, as for the AWS tools) that follows no
// redirects (a redirected S3 request would need signing again; S3's
// redirects say the bucket is in another region). dial bounds connecting
// when not 0; proxy says whether the environment's proxy is used.
func s3Client(opts Options, dial time.Duration, proxy bool) (*http.Client, error) {
	tr, err := newTransport(opts, "AWS_CA_BUNDLE")
	if err != nil {
		return nil, err
	}
	if dial > 0 {
		d := &net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second}
		tr.DialContext = d.DialContext
	}
	if !proxy {
		tr.Proxy = nil
	}
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}

// staticSecrets lists the secrets the environment and the shared files
// hold, known before any request.
func staticSecrets(env *awsEnv) []string {
	list := appendSecrets(nil, env.getenv("AWS_SECRET_ACCESS_KEY"), env.getenv("AWS_SESSION_TOKEN"), env.getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN"))
	for _, p := range env.config {
		list = appendSecrets(list, p["aws_secret_access_key"], p["aws_session_token"])
	}
	return list
}

// Secrets returns every secret this store has used or may use (secret
// keys, session tokens, identity tokens), for the caller to scrub from
// messages.
func (s *s3Objects) Secrets() []string {
	list := append([]string(nil), s.secrets...)
	if s.creds != nil {
		list = appendSecrets(list, s.creds.knownSecrets()...)
	}
	return appendSecrets(list, s.env.knownSecrets()...)
}

// Close releases idle connections.
func (s *s3Objects) Close() error {
	s.client.CloseIdleConnections()
	s.env.client.CloseIdleConnections()
	s.env.local.CloseIdleConnections()
	return nil
}

// objectURL is the URL of key, with a raw (escaped) query: each byte of
// the key but unreserved characters and '/' percent-encoded, as S3 and
// its signature want.
func (s *s3Objects) objectURL(key, query string) *url.URL {
	p := s.basePath + "/" + key
	return &url.URL{Scheme: s.scheme, Host: s.host, Path: p, RawPath: awsEscape(p, true), RawQuery: query}
}

// s3Request is one request of an object.
type s3Request struct {
	method  string
	key     string
	query   string // escaped
	header  http.Header
	body    []byte // nil: none
	retries int    // how many times a "try again" answer is retried
	// retryErrors: a transport error is retried too (the request is
	// idempotent and its body held).
	retryErrors bool
}

// do sends r, signed, retrying it up to r.retries times (after 250 ms,
// 500 ms...) when S3 answers 429 or 5xx. It returns the response whatever
// its status.
func (s *s3Objects) do(ctx context.Context, r s3Request) (*http.Response, error) {
	return retrying(ctx, r.retries, s.retryWait, func() (*http.Response, error) { return s.send(ctx, r) },
		func(resp *http.Response, err error) bool {
			return (err == nil && retryable(resp.StatusCode)) || (err != nil && r.retryErrors && !errors.Is(err, ErrAuth))
		})
}

// send sends r once.
func (s *s3Objects) send(ctx context.Context, r s3Request) (*http.Response, error) {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	u := s.objectURL(r.key, r.query)
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", r.method, r.key, err)
	}
	req.URL = u // as built, escaping and all
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	if r.body != nil {
		req.ContentLength = int64(len(r.body))
		if len(r.body) == 0 {
			req.Body = http.NoBody
		}
	}
	if s.creds != nil {
		c, err := s.creds.get(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s %s: AWS credentials: %w", r.method, r.key, err)
		}
		hash := emptySHA256
		if r.body != nil {
			sum := sha256.Sum256(r.body)
			hash = hex.EncodeToString(sum[:])
		}
		req.Header.Set("X-Amz-Content-Sha256", hash)
		signV4(req, c, s.region, "s3", hash, time.Now())
	}
	return s.client.Do(req)
}

// refused turns a response that is not a success into errNoObject (404
// of an object, not of the bucket) or a *StatusError carrying S3's
// <Code>: <Message>, and closes it.
func (s *s3Objects) refused(resp *http.Response, key string) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	code, msg, ok := parseS3Error(data)
	m := resp.Request.Method
	if resp.StatusCode == http.StatusNotFound && (m == http.MethodHead || m == http.MethodGet) && code != "NoSuchBucket" {
		drain(resp)
		return errNoObject
	}
	message := ""
	switch {
	case ok && msg != "":
		message = code + ": " + msg
	case ok:
		message = code
	case len(data) > 0:
		message = cleanSnippet(data)
	}
	if code == "NoSuchBucket" {
		message += fmt.Sprintf(" (no bucket %q at %s)", s.bucket, s.scheme+"://"+s.host)
	}
	if r := resp.Header.Get("X-Amz-Bucket-Region"); r != "" && r != s.region {
		message = strings.TrimSpace(message + fmt.Sprintf(" (the bucket is in region %s, not %s: add ?region=%s to the URL)", r, s.region, r))
	}
	return responseError(resp, key, message)
}

// Stat returns the size of the object under key (HEAD).
func (s *s3Objects) Stat(ctx context.Context, key string) (int64, error) {
	resp, err := s.do(ctx, s3Request{method: http.MethodHead, key: key, retries: 2})
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, s.refused(resp, key)
	}
	drain(resp)
	return contentLength(resp, key)
}

// contentLength is the size a response says its object has.
func contentLength(resp *http.Response, key string) (int64, error) {
	if resp.ContentLength >= 0 {
		return resp.ContentLength, nil
	}
	n, err := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s %s: the answer gives no Content-Length", resp.Request.Method, key)
	}
	return n, nil
}

// Open streams the object under key (GET) and returns its size.
func (s *s3Objects) Open(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	resp, err := s.do(ctx, s3Request{method: http.MethodGet, key: key, retries: 2})
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, 0, s.refused(resp, key)
	}
	n, err := contentLength(resp, key)
	if err != nil {
		drain(resp)
		return nil, 0, err
	}
	return resp.Body, n, nil
}

// uploadHeader is the header of a PUT or CreateMultipartUpload: the
// content type and the server-side encryption asked for.
func (s *s3Objects) uploadHeader(contentType string) http.Header {
	h := http.Header{}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	if s.sse != "" {
		h.Set("X-Amz-Server-Side-Encryption", s.sse)
	}
	if s.kmsKey != "" {
		h.Set("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id", s.kmsKey)
	}
	return h
}

// Put stores size bytes from r under key: in one PUT up to partSize, else
// as a multipart upload, aborted on any failure.
func (s *s3Objects) Put(ctx context.Context, key, contentType string, size int64, r io.Reader) error {
	if size < 0 {
		return fmt.Errorf("PUT %s: negative size %d", key, size)
	}
	r = exactly(r, size)
	if size <= int64(partSize) {
		return s.putSingle(ctx, key, contentType, size, r)
	}
	return s.putMultipart(ctx, key, contentType, size, r)
}

// putSingle reads the whole object (at most partSize) before sending it,
// so that a reader failing or yielding other than size bytes never leaves
// a truncated object; the buffer held, a "try again" answer is retried
// once.
func (s *s3Objects) putSingle(ctx context.Context, key, contentType string, size int64, r io.Reader) error {
	buf, err := readWhole(r, size)
	if err != nil {
		return fmt.Errorf("PUT %s: reading the data: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("PUT %s: %w", key, err)
	}
	resp, err := s.do(ctx, s3Request{method: http.MethodPut, key: key, header: s.uploadHeader(contentType), body: buf, retries: 1})
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return s.refused(resp, key)
	}
	drain(resp)
	return nil
}

// putMultipart uploads r in partSize parts, partConcurrency at once, and
// completes the upload only when all size bytes were read and sent; on any
// failure it aborts the upload, so that nothing appears under key.
func (s *s3Objects) putMultipart(ctx context.Context, key, contentType string, size int64, r io.Reader) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("multipart upload of %s: %w", key, err)
	}
	id, err := s.createUpload(ctx, key, contentType)
	if err != nil {
		return err
	}
	etags, err := s.uploadParts(ctx, key, id, size, r)
	if err == nil {
		if err = atEnd(r); err != nil {
			err = fmt.Errorf("multipart upload of %s: reading the data: %w", key, err)
		}
	}
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = s.completeUpload(ctx, key, id, etags)
	}
	if err != nil {
		s.abortUpload(ctx, key, id)
		return err
	}
	return nil
}

// createUpload starts a multipart upload and returns its id.
func (s *s3Objects) createUpload(ctx context.Context, key, contentType string) (string, error) {
	resp, err := s.do(ctx, s3Request{method: http.MethodPost, key: key, query: "uploads", header: s.uploadHeader(contentType), body: []byte{}})
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", s.refused(resp, key)
	}
	defer drain(resp)
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("CreateMultipartUpload %s: %w", key, err)
	}
	var r struct {
		UploadID string `xml:"UploadId"`
	}
	if !decodeElement(data, "InitiateMultipartUploadResult", &r) || strings.TrimSpace(r.UploadID) == "" {
		return "", fmt.Errorf("CreateMultipartUpload %s: no UploadId in the answer (%s)", key, cleanSnippet(data))
	}
	return strings.TrimSpace(r.UploadID), nil
}

// uploadParts reads and sends the parts of an upload, at most
// partConcurrency buffers of partSize in memory (and in flight), and
// returns their ETags. The first failure (of the reader, of a part, of
// ctx) stops the rest and is returned.
func (s *s3Objects) uploadParts(ctx context.Context, key, id string, size int64, r io.Reader) ([]string, error) {
	ps := int64(partSize)
	n := int((size + ps - 1) / ps)
	etags := make([]string, n)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	free := make(chan []byte, partConcurrency)
	for range partConcurrency {
		free <- nil
	}
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	fail := func(err error) { once.Do(func() { first = err; cancel(err) }) }
parts:
	for i := range n {
		var buf []byte
		select {
		case buf = <-free:
		case <-ctx.Done():
			break parts
		}
		if buf == nil {
			buf = make([]byte, min(ps, size))
		}
		buf = buf[:min(ps, size-int64(i)*ps)]
		if _, err := io.ReadFull(r, buf); err != nil {
			fail(fmt.Errorf("multipart upload of %s: reading the data: %w", key, err))
			break
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(part int, buf []byte) {
			defer wg.Done()
			etag, err := s.uploadPart(ctx, key, id, part, buf)
			if err != nil {
				fail(err)
			}
			etags[part-1] = etag
			free <- buf[:cap(buf)]
		}(i+1, buf)
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = fmt.Errorf("multipart upload of %s: %w", key, context.Cause(ctx))
	}
	return etags, first
}

// uploadPart sends one part and returns its ETag; the buffer held, a
// failure or a "try again" answer is retried once.
func (s *s3Objects) uploadPart(ctx context.Context, key, id string, part int, buf []byte) (string, error) {
	q := "partNumber=" + strconv.Itoa(part) + "&uploadId=" + awsEscape(id, false)
	resp, err := s.do(ctx, s3Request{method: http.MethodPut, key: key, query: q, body: buf, retries: 1, retryErrors: true})
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", s.refused(resp, key)
	}
	drain(resp)
	etag := resp.Header.Get("ETag")
	if etag == "" {
		return "", fmt.Errorf("UploadPart %s part %d: the answer has no ETag", key, part)
	}
	return etag, nil
}

// completeXML is the body of CompleteMultipartUpload.
type completeXML struct {
	XMLName xml.Name `xml:"CompleteMultipartUpload"`
	Parts   []struct {
		PartNumber int
		ETag       string
	} `xml:"Part"`
}

// completeUpload completes the upload from its parts' ETags. S3 may
// answer 200 and still fail, with an <Error> in the body.
func (s *s3Objects) completeUpload(ctx context.Context, key, id string, etags []string) error {
	var c completeXML
	for i, e := range etags {
		c.Parts = append(c.Parts, struct {
			PartNumber int
			ETag       string
		}{i + 1, e})
	}
	body, err := xml.Marshal(c)
	if err != nil {
		return fmt.Errorf("CompleteMultipartUpload %s: %w", key, err)
	}
	h := http.Header{"Content-Type": {"application/xml"}}
	resp, err := s.do(ctx, s3Request{method: http.MethodPost, key: key, query: "uploadId=" + awsEscape(id, false), header: h, body: body})
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return s.refused(resp, key)
	}
	defer drain(resp)
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("CompleteMultipartUpload %s: %w", key, err)
	}
	return completeResult(resp, key, data)
}

// completeResult checks the body of CompleteMultipartUpload's 200 answer:
// an <Error> in it is a failure, reported as the status the error code
// stands for.
func completeResult(resp *http.Response, key string, data []byte) error {
	code, msg, isErr := parseS3Error(data)
	if !isErr {
		if !decodeElement(data, "CompleteMultipartUploadResult", &struct{}{}) {
			return fmt.Errorf("CompleteMultipartUpload %s: unexpected answer (%s)", key, cleanSnippet(data))
		}
		return nil
	}
	status := http.StatusInternalServerError
	switch code {
	case "SlowDown", "ServiceUnavailable":
		status = http.StatusServiceUnavailable
	case "AccessDenied":
		status = http.StatusForbidden
	case "InvalidPart", "InvalidPartOrder", "EntityTooSmall", "NoSuchUpload", "MalformedXML":
		status = http.StatusBadRequest
	}
	return &StatusError{Method: resp.Request.Method, Object: key, Code: status,
		Status: fmt.Sprintf("%d %s (an error inside a 200 answer)", status, http.StatusText(status)), Body: strings.TrimSpace(code + ": " + msg)}
}

// abortUpload aborts a failed multipart upload, with a context of its own
// so that an upload whose ctx ended is aborted too. On failure it warns:
// the parts stay (and are billed) until a lifecycle rule removes them.
func (s *s3Objects) abortUpload(ctx context.Context, key, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s3AbortTimeout)
	defer cancel()
	resp, err := s.do(ctx, s3Request{method: http.MethodDelete, key: key, query: "uploadId=" + awsEscape(id, false), retries: 1, retryErrors: true})
	if err == nil && resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusNotFound {
		err = s.refused(resp, key)
	} else if err == nil {
		drain(resp)
	}
	if err != nil {
		s.log.Warn("could not abort an S3 multipart upload: its parts stay until a lifecycle rule aborts incomplete uploads", "bucket", s.bucket, "object", key, "error", scrubText(err.Error(), s.Secrets()))
	}
}

// awsHost reports whether an endpoint URL names a host of AWS itself (a
// VPC endpoint, a regional endpoint), where an instance role applies.
func awsHost(endpoint string) bool {
	eu, err := url.Parse(endpoint)
	if err != nil {
		return false
	}
	h := strings.ToLower(eu.Hostname())
	return strings.HasSuffix(h, ".amazonaws.com") || strings.HasSuffix(h, ".amazonaws.com.cn")
}
