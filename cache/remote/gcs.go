package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// gs:// buckets are spoken to here, over the Cloud Storage JSON API with
// net/http, and credentials come from gcs_auth.go (Application Default
// Credentials without Google's client libraries).
//
// Why not a client library: cloud.google.com/go/storage links gRPC, xDS
// (envoy's protobuf types), CEL and OpenTelemetry, and even
// golang.org/x/oauth2/google links Google's auth library; their package
// initialisers (hundreds of protobuf registrations) ran at every mlbuild
// start, whether or not a gs:// remote was used. Go runs the init of every
// linked package, so the only lazy initialisation is not linking them.

// envGCSEmulator names a Cloud Storage emulator (host:port or a URL) to use
// instead of storage.googleapis.com, without credentials: the variable the
// Google SDKs and emulators share.
const envGCSEmulator = "STORAGE_EMULATOR_HOST"

// gcsObjects is one bucket: the API's base URL and an HTTP client that
// adds credentials.
type gcsObjects struct {
	bucket string
	base   string // https://storage.googleapis.com, or an emulator's URL
	client *http.Client
	// secrets are the credentials' secret values, for scrubbing.
	secrets []string
}

// openGCS opens the gs:// bucket (whose query may say anonymous=true:
// unauthenticated requests, for public buckets).
func openGCS(ctx context.Context, bucket string, q url.Values, opts Options) (*gcsObjects, error) {
	if err := queryParams("gs", q, "anonymous"); err != nil {
		return nil, err
	}
	anonymous := false
	if v := q.Get("anonymous"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("anonymous=%q: want true or false", v)
		}
		anonymous = b
	}
	tr, err := newTransport(opts)
	if err != nil {
		return nil, err
	}
	b := &gcsObjects{bucket: bucket, base: "https://storage.googleapis.com", client: &http.Client{Transport: tr}}
	if emu := opts.Getenv(envGCSEmulator); emu != "" {
		if !strings.Contains(emu, "://") {
			emu = "http://" + emu
		}
		b.base = strings.TrimRight(emu, "/")
	} else if !anonymous {
		ts, secrets, err := googleCredentials(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrAuth, err)
		}
		b.secrets = secrets
		b.client = &http.Client{Transport: &oauth2.Transport{Source: ts, Base: tr}}
	}
	return b, nil
}

// Secrets returns the credentials' secret values.
func (b *gcsObjects) Secrets() []string { return b.secrets }

// objectURL is the URL of an object's metadata (with ?alt=media, its
// content). The object's name is escaped whole, slashes included, as the
// API wants.
func (b *gcsObjects) objectURL(key string) string {
	return b.base + "/storage/v1/b/" + url.PathEscape(b.bucket) + "/o/" + url.PathEscape(key)
}

// do sends req and returns its response when the status is 2xx (or 308,
// which a resumable upload answers to every chunk but the last);
// errNoObject for 404; else a *StatusError with the API's message.
func (b *gcsObjects) do(req *http.Request, key string) (*http.Response, error) {
	resp, err := retryRead(b.client, req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 == 2 || resp.StatusCode == http.StatusPermanentRedirect {
		return resp, nil
	}
	if resp.StatusCode == http.StatusNotFound && (req.Method == http.MethodGet || req.Method == http.MethodHead) {
		drain(resp)
		return nil, errNoObject
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	var parsed struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	msg := ""
	if json.Unmarshal(body, &parsed) == nil && parsed.Error.Message != "" {
		msg = cleanSnippet([]byte(parsed.Error.Message))
	} else {
		msg = cleanSnippet(body)
	}
	return nil, responseError(resp, key, msg)
}

// retryRead sends req; a read (a request without a body) that the service
// answers "try again" (429, 5xx) is retried twice, after 250 and 500 ms,
// as the cloud SDKs do. An upload is not retried here: its body is spent.
func retryRead(c *http.Client, req *http.Request) (*http.Response, error) {
	retries := 0
	if req.Body == nil {
		retries = 2
	}
	return retrying(req.Context(), retries, retryWait, func() (*http.Response, error) { return c.Do(req) },
		func(resp *http.Response, err error) bool { return err == nil && retryable(resp.StatusCode) })
}

// retryWait is the wait before the first retry of a read.
const retryWait = 250 * time.Millisecond

// retryable reports whether a status says to try again later.
func retryable(code int) bool {
	return code == http.StatusTooManyRequests || code == http.StatusInternalServerError ||
		code == http.StatusBadGateway || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout
}

func (b *gcsObjects) Stat(ctx context.Context, key string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.objectURL(key), nil)
	if err != nil {
		return 0, err
	}
	resp, err := b.do(req, key)
	if err != nil {
		return 0, err
	}
	defer drain(resp)
	var o struct {
		Size string `json:"size"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&o); err != nil {
		return 0, fmt.Errorf("object %s: metadata: %w", key, err)
	}
	size, err := strconv.ParseInt(o.Size, 10, 64)
	if err != nil || size < 0 {
		return 0, fmt.Errorf("object %s: size %q is not a byte count", key, o.Size)
	}
	return size, nil
}

func (b *gcsObjects) Open(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.objectURL(key)+"?alt=media", nil)
	if err != nil {
		return nil, 0, err
	}
	// Content as stored: no decompressive transcoding.
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := b.do(req, key)
	if err != nil {
		return nil, 0, err
	}
	size := resp.ContentLength
	if s := resp.Header.Get("X-Goog-Stored-Content-Length"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			size = n
		}
	}
	return resp.Body, size, nil
}

// Put uploads in one request if the object fits in one part (action
// results, small blobs), else as a resumable upload of partSize chunks (a
// multiple of the 256 KiB the API requires). The object appears only when
// the last request completes; a failed upload's session is cancelled.
func (b *gcsObjects) Put(ctx context.Context, key, contentType string, size int64, r io.Reader) error {
	if size <= int64(partSize) {
		buf, err := readWhole(r, size)
		if err != nil {
			return err
		}
		return b.simple(ctx, key, contentType, buf)
	}
	session, err := b.startResumable(ctx, key, contentType)
	if err != nil {
		return err
	}
	buf := make([]byte, partSize)
	var sent int64
	for {
		n, eof, err := readPart(r, buf)
		if err == nil {
			err = ctx.Err()
		}
		if err == nil {
			err = b.sendChunk(ctx, session, key, buf[:n], sent, eof)
		}
		if err != nil {
			b.cancelSession(ctx, session)
			return err
		}
		sent += int64(n)
		if eof {
			return nil
		}
	}
}

// simple uploads a whole object in one request.
func (b *gcsObjects) simple(ctx context.Context, key, contentType string, data []byte) error {
	u := b.base + "/upload/storage/v1/b/" + url.PathEscape(b.bucket) + "/o?uploadType=media&name=" + url.QueryEscape(key)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := b.do(req, key)
	if err != nil {
		return err
	}
	drain(resp)
	return nil
}

// startResumable starts a resumable upload and returns its session URL.
func (b *gcsObjects) startResumable(ctx context.Context, key, contentType string) (string, error) {
	u := b.base + "/upload/storage/v1/b/" + url.PathEscape(b.bucket) + "/o?uploadType=resumable&name=" + url.QueryEscape(key)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader("{}"))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	req.Header.Set("X-Upload-Content-Type", contentType)
	resp, err := b.do(req, key)
	if err != nil {
		return "", err
	}
	drain(resp) // nothing in it but the session's URL in a header
	session := resp.Header.Get("Location")
	if session == "" {
		return "", fmt.Errorf("object %s: resumable upload: the server gave no session URL", key)
	}
	return session, nil
}

// sendChunk sends data as the chunk at offset sent of the resumable
// upload; last says it ends the object.
func (b *gcsObjects) sendChunk(ctx context.Context, session, key string, data []byte, sent int64, last bool) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, session, bytes.NewReader(data))
	if err != nil {
		return err
	}
	end := sent + int64(len(data))
	total := "*"
	if last {
		total = strconv.FormatInt(end, 10)
	}
	if len(data) == 0 {
		req.Header.Set("Content-Range", "bytes */"+total)
	} else {
		req.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%s", sent, end-1, total))
	}
	resp, err := b.do(req, key)
	if err != nil {
		return err
	}
	drain(resp) // the object's metadata, not needed
	if last != (resp.StatusCode != http.StatusPermanentRedirect) {
		return fmt.Errorf("object %s: resumable upload: status %d for bytes up to %d (last chunk: %v)", key, resp.StatusCode, end, last)
	}
	return nil
}

// cancelSession ends an aborted resumable upload at once (the server
// would drop it after a week), best effort, even when ctx has ended.
func (b *gcsObjects) cancelSession(ctx context.Context, session string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, session, nil)
	if err != nil {
		return
	}
	if resp, err := b.client.Do(req); err == nil {
		drain(resp) // 499: cancelled, as asked
	}
}

func (b *gcsObjects) Close() error {
	b.client.CloseIdleConnections()
	return nil
}
