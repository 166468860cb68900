package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// objectStore is a bucket as bucketStore uses it: objects named by keys
// (the URL's prefix already prepended: "team/cas/<hex>"), read whole or
// streamed, written whole. One implementation per scheme, each speaking
// the service's own protocol with net/http (see the package comment on
// why no cloud SDK is linked): dirObjects (file://), s3Objects (s3://),
// gcsObjects (gs://), azureObjects (azblob://).
//
// Errors: errNoObject for an absent object; a *StatusError (Code, Status,
// and the service's message in Body) for any other refused request, so
// that bucketStore can tell refused credentials (401, 403) and a service
// that is down (5xx, 429) from the rest; network errors as net/http
// returns them. Messages never contain a credential.
type objectStore interface {
	// Stat returns the size of the object under key.
	Stat(ctx context.Context, key string) (int64, error)
	// Open streams the object under key and returns its size.
	Open(ctx context.Context, key string) (io.ReadCloser, int64, error)
	// Put stores the size bytes read from r under key, replacing any
	// object there. The object appears only if Put returns nil: when r
	// fails, when it yields other than size bytes (exactly reports that
	// as a read error), or when ctx ends, nothing is left under key and a
	// multipart or resumable upload begun is aborted.
	Put(ctx context.Context, key, contentType string, size int64, r io.Reader) error
	// Close releases idle connections.
	Close() error
}

// errNoObject is what an objectStore returns for a key it does not hold.
var errNoObject = errors.New("no such object")

// partSize is the size of the parts of a multipart (S3), block (Azure) or
// resumable (GCS) upload, which an objectStore buffers; partConcurrency is
// how many parts of one upload are in flight. With Parallelism uploads at
// once, uploads hold at most Parallelism*partConcurrency*partSize bytes.
// Objects up to partSize go up in a single request. Variables, so that
// tests can exercise multipart uploads with small objects.
var (
	partSize        = 8 << 20
	partConcurrency = 2
)

// exactly reads exactly size bytes from r: a read that ends early or goes
// past size fails with an error saying so, which an objectStore's Put
// treats as any failing reader (it aborts the upload).
func exactly(r io.Reader, size int64) io.Reader {
	return &exactReader{r: r, left: size, size: size}
}

type exactReader struct {
	r          io.Reader
	left, size int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left == 0 {
		// Past the end: one byte more is an error, EOF is the end.
		var one [1]byte
		n, err := e.r.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("the data is longer than the %d bytes expected", e.size)
		}
		if err == nil {
			return 0, nil
		}
		if err == io.EOF {
			return 0, io.EOF
		}
		return 0, err
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		return n, fmt.Errorf("read %d bytes, expected %d", e.size-e.left, e.size)
	}
	if err == io.EOF {
		err = nil // the next Read checks for more
	}
	return n, err
}

// readWhole reads an object of size bytes (at most partSize: it is held in
// memory) from r, and checks that r ends there.
func readWhole(r io.Reader, size int64) ([]byte, error) {
	buf := make([]byte, size)
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, fmt.Errorf("the data ended before the %d bytes expected", size)
		}
		return nil, err
	}
	if err := atEnd(r); err != nil {
		return nil, err
	}
	return buf, nil
}

// atEnd checks that r, having yielded the bytes expected, has no more.
func atEnd(r io.Reader) error {
	var one [1]byte
	for range 100 {
		n, err := r.Read(one[:])
		if n > 0 {
			return errors.New("the data is longer than expected")
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

// readPart fills buf from r as far as r goes; it returns the bytes read,
// and whether r has ended (io.EOF seen). A read error other than io.EOF is
// returned as is.
func readPart(r io.Reader, buf []byte) (int, bool, error) {
	n, err := io.ReadFull(r, buf)
	switch {
	case err == nil:
		return n, false, nil
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return n, true, nil
	}
	return n, false, err
}

// retrying calls send, and again up to retries more times while again
// says its answer is worth another try (a "try again" status, say),
// waiting wait, 2·wait, … in between; a retried answer's body is drained.
// It returns the last answer, or ctx's error when ctx ends during a wait.
func retrying(ctx context.Context, retries int, wait time.Duration, send func() (*http.Response, error), again func(*http.Response, error) bool) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		resp, err := send()
		if attempt >= retries || ctx.Err() != nil || !again(resp, err) {
			return resp, err
		}
		if resp != nil {
			drain(resp)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		wait *= 2
	}
}

// responseError turns a refused response into a *StatusError carrying the
// service's message (message, when the caller parsed one from the body;
// else the start of the body), and closes the body.
func responseError(resp *http.Response, key, message string) error {
	defer drain(resp)
	se := &StatusError{Method: resp.Request.Method, Object: key, Code: resp.StatusCode, Status: resp.Status, Body: message}
	if se.Body == "" {
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		se.Body = cleanSnippet(snippet)
	}
	return se
}

// queryParams checks that q holds only the known parameters (each once),
// naming the unknown one and the known ones otherwise.
func queryParams(scheme string, q url.Values, known ...string) error {
	for k, v := range q {
		ok := false
		for _, kn := range known {
			if k == kn {
				ok = true
				break
			}
		}
		if !ok {
			return fmt.Errorf("unknown parameter %q for %s:// (known: %s)", k, scheme, strings.Join(known, ", "))
		}
		if len(v) > 1 {
			return fmt.Errorf("parameter %q given %d times", k, len(v))
		}
	}
	return nil
}
