package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/driver"
	"gocloud.dev/gcerrors"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/googleapi"
)

// gs:// buckets are spoken to here, over the Cloud Storage JSON API with
// net/http and golang.org/x/oauth2, as a gocloud.dev/blob driver of the
// four calls bucketStore makes (read, stat, write, error codes).
//
// Why not gocloud's gcsblob: it is built on cloud.google.com/go/storage,
// which links gRPC, xDS (envoy's protobuf types), CEL and OpenTelemetry;
// their package initialisers (hundreds of protobuf registrations) ran at
// every mlbuild start, whether or not a gs:// remote was used, and made up
// most of a no-op run's time. Go runs the init of every linked package, so
// the only lazy initialisation is not linking them.

// gcsScope is the OAuth scope for reading and writing objects.
const gcsScope = "https://www.googleapis.com/auth/devstorage.read_write"

// envGCSEmulator names a Cloud Storage emulator (host:port or a URL) to use
// instead of storage.googleapis.com, without credentials: the variable the
// Google SDKs and emulators share.
const envGCSEmulator = "STORAGE_EMULATOR_HOST"

// gcsBucket is the driver: one bucket, the API's base URL, an HTTP client
// that adds credentials.
type gcsBucket struct {
	name   string
	base   string // https://storage.googleapis.com, or an emulator's URL
	client *http.Client
}

// openGCS opens the gs:// bucket of u (whose query, prefix aside, may say
// anonymous=true: unauthenticated requests, for public buckets).
func openGCS(ctx context.Context, u *url.URL, opts Options) (*blob.Bucket, error) {
	q := u.Query()
	prefix := q.Get("prefix")
	anonymous := false
	for k, v := range q {
		switch k {
		case "prefix":
		case "anonymous":
			b, err := strconv.ParseBool(v[0])
			if err != nil {
				return nil, fmt.Errorf("anonymous=%q: want true or false", v[0])
			}
			anonymous = b
		default:
			return nil, fmt.Errorf("unknown parameter %q for gs:// (known: prefix, anonymous)", k)
		}
	}
	b := &gcsBucket{name: u.Host, base: "https://storage.googleapis.com", client: &http.Client{}}
	if emu := opts.Getenv(envGCSEmulator); emu != "" {
		if !strings.Contains(emu, "://") {
			emu = "http://" + emu
		}
		b.base = strings.TrimRight(emu, "/")
	} else if !anonymous {
		creds, err := google.FindDefaultCredentials(ctx, gcsScope)
		if err != nil {
			return nil, fmt.Errorf("%w: no Google credentials: %v (set GOOGLE_APPLICATION_CREDENTIALS to a key file, run `gcloud auth application-default login`, or add ?anonymous=true for a public bucket)", ErrAuth, err)
		}
		b.client = oauth2.NewClient(context.WithoutCancel(ctx), creds.TokenSource)
	}
	bucket := blob.NewBucket(b)
	if prefix != "" {
		bucket = blob.PrefixedBucket(bucket, prefix)
	}
	return bucket, nil
}

// objectURL is the URL of an object's metadata (with ?alt=media, its
// content). The object's name is escaped whole, slashes included, as the
// API wants.
func (b *gcsBucket) objectURL(key string) string {
	return b.base + "/storage/v1/b/" + url.PathEscape(b.name) + "/o/" + url.PathEscape(key)
}

// do sends req and returns its response when the status is 2xx (or 308,
// which a resumable upload answers to every chunk but the last), else an
// error carrying the status and the start of the body.
func (b *gcsBucket) do(req *http.Request) (*http.Response, error) {
	resp, err := b.client.Do(req)
	// A read the service answers "try again" (429, 5xx) is retried twice,
	// as Google's clients do; an upload is not (its body is spent).
	for wait := gcsRetryWait; err == nil && retryable(resp.StatusCode) && req.Body == nil && wait <= 2*gcsRetryWait; wait *= 2 {
		_ = resp.Body.Close() // a retried answer's body is not read
		t := time.NewTimer(wait)
		select {
		case <-req.Context().Done():
			t.Stop()
			return nil, req.Context().Err()
		case <-t.C:
		}
		resp, err = b.client.Do(req)
	}
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 == 2 || resp.StatusCode == http.StatusPermanentRedirect {
		return resp, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	e := &googleapi.Error{Code: resp.StatusCode, Body: string(body)}
	var parsed struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &parsed) == nil && parsed.Error.Message != "" {
		e.Message = parsed.Error.Message
	} else {
		e.Message = strings.TrimSpace(http.StatusText(resp.StatusCode))
	}
	return nil, e
}

// gcsRetryWait is the wait before the first retry of a read.
const gcsRetryWait = 250 * time.Millisecond

// retryable reports whether a status says to try again later.
func retryable(code int) bool {
	return code == http.StatusTooManyRequests || code == http.StatusInternalServerError ||
		code == http.StatusBadGateway || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout
}

// ErrorCode maps the API's statuses to gocloud's codes.
func (b *gcsBucket) ErrorCode(err error) gcerrors.ErrorCode {
	var ge *googleapi.Error
	if !errors.As(err, &ge) {
		return gcerrors.Unknown
	}
	switch ge.Code {
	case http.StatusNotFound:
		return gcerrors.NotFound
	case http.StatusUnauthorized, http.StatusForbidden:
		return gcerrors.PermissionDenied
	case http.StatusPreconditionFailed:
		return gcerrors.FailedPrecondition
	case http.StatusTooManyRequests:
		return gcerrors.ResourceExhausted
	}
	return gcerrors.Unknown
}

func (b *gcsBucket) As(any) bool { return false }

// ErrorAs lets errors.As find the *googleapi.Error under the driver's
// error through gocloud's.
func (b *gcsBucket) ErrorAs(err error, target any) bool { return errors.As(err, target) }

func (b *gcsBucket) Attributes(ctx context.Context, key string) (*driver.Attributes, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.objectURL(key), nil)
	if err != nil {
		return nil, err
	}
	resp, err := b.do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var o struct {
		Size        string    `json:"size"`
		ContentType string    `json:"contentType"`
		Updated     time.Time `json:"updated"`
		Etag        string    `json:"etag"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&o); err != nil {
		return nil, fmt.Errorf("object %s: metadata: %w", key, err)
	}
	size, err := strconv.ParseInt(o.Size, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("object %s: size %q: %w", key, o.Size, err)
	}
	return &driver.Attributes{Size: size, ContentType: o.ContentType, ModTime: o.Updated, ETag: o.Etag}, nil
}

func (b *gcsBucket) NewRangeReader(ctx context.Context, key string, offset, length int64, _ *driver.ReaderOptions) (driver.Reader, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.objectURL(key)+"?alt=media", nil)
	if err != nil {
		return nil, err
	}
	// Content as stored: no decompressive transcoding.
	req.Header.Set("Accept-Encoding", "gzip")
	switch {
	case length == 0:
		// Attributes only: a HEAD-like request that reads no body.
		req.Method = http.MethodHead
	case offset > 0 && length < 0:
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
	case length > 0:
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
	}
	resp, err := b.do(req)
	if err != nil {
		return nil, err
	}
	attrs := driver.ReaderAttributes{ContentType: resp.Header.Get("Content-Type"), Size: resp.ContentLength}
	if t, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		attrs.ModTime = t
	}
	if cr := resp.Header.Get("Content-Range"); cr != "" {
		// bytes a-b/total: the object's size is the total.
		if _, total, ok := strings.Cut(cr, "/"); ok {
			if n, err := strconv.ParseInt(total, 10, 64); err == nil {
				attrs.Size = n
			}
		}
	} else if s := resp.Header.Get("X-Goog-Stored-Content-Length"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			attrs.Size = n
		}
	}
	return &gcsReader{body: resp.Body, attrs: attrs}, nil
}

type gcsReader struct {
	body  io.ReadCloser
	attrs driver.ReaderAttributes
}

func (r *gcsReader) Read(p []byte) (int, error)           { return r.body.Read(p) }
func (r *gcsReader) Close() error                         { return r.body.Close() }
func (r *gcsReader) Attributes() *driver.ReaderAttributes { return &r.attrs }
func (r *gcsReader) As(any) bool                          { return false }

// gcsChunk is the size of a resumable upload's chunks, a multiple of the
// 256 KiB the API requires.
const gcsChunk = bucketPartSize

func (b *gcsBucket) NewTypedWriter(ctx context.Context, key, contentType string, _ *driver.WriterOptions) (driver.Writer, error) {
	return &gcsWriter{ctx: ctx, b: b, key: key, contentType: contentType}, nil
}

// gcsWriter uploads an object: in one request if it fits in one chunk
// (action results, small blobs), else as a resumable upload of gcsChunk
// pieces. The object appears only when the last request completes, so a
// cancelled context (gocloud's way to abort a write) leaves nothing.
type gcsWriter struct {
	ctx         context.Context
	b           *gcsBucket
	key         string
	contentType string
	buf         []byte
	session     string // the resumable upload's URL, once started
	sent        int64  // bytes the session has received
	err         error
}

func (w *gcsWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), gcsChunk-len(w.buf))
		w.buf = append(w.buf, p[:k]...)
		p = p[k:]
		if len(w.buf) == gcsChunk {
			if w.err = w.sendChunk(false); w.err != nil {
				return 0, w.err
			}
		}
	}
	return n, nil
}

func (w *gcsWriter) Close() error {
	if w.err != nil {
		w.cancelSession()
		return w.err
	}
	if err := w.ctx.Err(); err != nil {
		w.cancelSession()
		return err
	}
	if w.session == "" {
		return w.simple()
	}
	return w.sendChunk(true)
}

// cancelSession ends an aborted resumable upload at once (the server
// would drop it after a week), best effort.
func (w *gcsWriter) cancelSession() {
	if w.session == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, w.session, nil)
	if err != nil {
		return
	}
	if resp, err := w.b.client.Do(req); err == nil {
		_ = resp.Body.Close() // 499: cancelled, as asked
	}
	w.session = ""
}

// simple uploads the whole object in one request.
func (w *gcsWriter) simple() error {
	u := w.b.base + "/upload/storage/v1/b/" + url.PathEscape(w.b.name) + "/o?uploadType=media&name=" + url.QueryEscape(w.key)
	req, err := http.NewRequestWithContext(w.ctx, http.MethodPost, u, bytes.NewReader(w.buf))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", w.contentType)
	resp, err := w.b.do(req)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// sendChunk sends the buffer as the next chunk of the resumable upload,
// starting the upload first if need be; last says it ends the object.
func (w *gcsWriter) sendChunk(last bool) error {
	if w.session == "" {
		u := w.b.base + "/upload/storage/v1/b/" + url.PathEscape(w.b.name) + "/o?uploadType=resumable&name=" + url.QueryEscape(w.key)
		req, err := http.NewRequestWithContext(w.ctx, http.MethodPost, u, strings.NewReader("{}"))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json; charset=UTF-8")
		req.Header.Set("X-Upload-Content-Type", w.contentType)
		resp, err := w.b.do(req)
		if err != nil {
			return err
		}
		_ = resp.Body.Close() // nothing in it but the session's URL in a header
		w.session = resp.Header.Get("Location")
		if w.session == "" {
			return errors.New("resumable upload: the server gave no session URL")
		}
	}
	req, err := http.NewRequestWithContext(w.ctx, http.MethodPut, w.session, bytes.NewReader(w.buf))
	if err != nil {
		return err
	}
	end := w.sent + int64(len(w.buf))
	total := "*"
	if last {
		total = strconv.FormatInt(end, 10)
	}
	if len(w.buf) == 0 {
		req.Header.Set("Content-Range", "bytes */"+total)
	} else {
		req.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%s", w.sent, end-1, total))
	}
	resp, err := w.b.do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close() // the object's metadata, not needed
	if last != (resp.StatusCode != http.StatusPermanentRedirect) {
		return fmt.Errorf("resumable upload: status %d for bytes up to %d (last chunk: %v)", resp.StatusCode, end, last)
	}
	w.sent = end
	w.buf = w.buf[:0]
	return nil
}

// errGCSUnimplemented answers the calls bucketStore never makes.
var errGCSUnimplemented = errors.New("not implemented by mlbuild's gs:// driver")

func (b *gcsBucket) ListPaged(context.Context, *driver.ListOptions) (*driver.ListPage, error) {
	return nil, errGCSUnimplemented
}

func (b *gcsBucket) Copy(context.Context, string, string, *driver.CopyOptions) error {
	return errGCSUnimplemented
}

func (b *gcsBucket) Delete(context.Context, string, *driver.DeleteOptions) error {
	return errGCSUnimplemented
}

func (b *gcsBucket) SignedURL(context.Context, string, *driver.SignedURLOptions) (string, error) {
	return "", errGCSUnimplemented
}

func (b *gcsBucket) Close() error { return nil }
