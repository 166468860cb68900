package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// bucketStore keeps the cache in a bucket (or a directory) through an
// objectStore: blobs as objects "<prefix>cas/<digest>", action results as
// "<prefix>ac/<key>".
type bucketStore struct {
	objs    objectStore
	prefix  string // "" or ending in "/"
	scheme  string // s3, gs, azblob, file
	name    string // redacted URL
	lim     limits
	secrets []string
}

// bucketSecretEnv are credentials the bucket backends read from the
// environment, scrubbed from error messages should one ever quote them.
var bucketSecretEnv = []string{"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN", "AZURE_CLIENT_SECRET", "AZURE_STORAGE_CONNECTION_STRING"}

func openBucket(ctx context.Context, u *url.URL, opts Options) (*bucketStore, error) {
	scheme := strings.ToLower(u.Scheme)
	q := u.Query()
	s := &bucketStore{scheme: scheme, name: redactURL(u), lim: opts.limits()}
	for _, k := range bucketSecretEnv {
		if v := opts.Getenv(k); v != "" {
			s.secrets = append(s.secrets, v)
		}
	}
	fail := func(err error) (*bucketStore, error) {
		return nil, scrub(fmt.Errorf("remote cache %s: %w", s.name, err), s.secrets)
	}
	if scheme == "file" {
		// A directory. It must exist unless ?create_dir=true: a shared
		// mount that is missing must not silently become an empty cache
		// on the local disk.
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("remote cache URL %s: a file:// URL names a local directory: file:///path/to/dir", s.name)
		}
		if u.Path == "" || u.Path == "/" {
			return nil, fmt.Errorf("remote cache URL %s: no directory (use file:///path/to/dir)", s.name)
		}
		if err := queryParams("file", q, "create_dir"); err != nil {
			return fail(err)
		}
		create := false
		if v := q.Get("create_dir"); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fail(fmt.Errorf("create_dir=%q: want true or false", v))
			}
			create = b
		}
		d, err := openDir(u.Path, create)
		if err != nil {
			return fail(err)
		}
		s.objs = d
		return s, nil
	}
	// s3://bucket/some/prefix is the bucket with ?prefix=some/prefix/.
	if u.Host == "" {
		return nil, fmt.Errorf("remote cache URL %s: no bucket name", s.name)
	}
	prefix := strings.Trim(u.Path, "/")
	if p := q.Get("prefix"); p != "" {
		if prefix != "" {
			return nil, fmt.Errorf("remote cache URL %s: give the prefix either as a path or as ?prefix=, not both", s.name)
		}
		prefix = strings.Trim(p, "/")
	}
	q.Del("prefix")
	if prefix != "" {
		s.prefix = prefix + "/"
	}
	var (
		objs objectStore
		err  error
	)
	switch scheme {
	case "s3":
		objs, err = openS3(ctx, u.Host, q, opts)
	case "gs":
		objs, err = openGCS(ctx, u.Host, q, opts)
	case "azblob":
		objs, err = openAzure(ctx, u.Host, q, opts)
	default:
		return nil, fmt.Errorf("remote cache URL %s: unsupported scheme %q", s.name, u.Scheme)
	}
	if err != nil {
		return fail(err)
	}
	if sec, ok := objs.(interface{ Secrets() []string }); ok {
		s.secrets = append(s.secrets, sec.Secrets()...)
	}
	s.objs = objs
	return s, nil
}

func (s *bucketStore) String() string { return s.name }

func (s *bucketStore) Close() error { return s.objs.Close() }

// wrap turns a backend's error into one of this package's: refused access
// (naming where this scheme's credentials come from), or the error itself,
// with credentials scrubbed.
func (s *bucketStore) wrap(op, object string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = &unavailableError{fmt.Errorf("%w (%v)", errTruncated, err)}
	}
	var se *StatusError
	if errors.As(err, &se) && (se.Code == 401 || se.Code == 403) {
		return scrub(fmt.Errorf("remote cache %s: %s %s: %w (%v; %s; see docs/sharing.md)", s.name, op, object, ErrAuth, err, credentialHelp(s.scheme)), s.secrets)
	}
	return scrub(fmt.Errorf("remote cache %s: %s %s: %w", s.name, op, object, err), s.secrets)
}

// short bounds a small request (HEAD, an action) by the timeout, and by
// the idle timeout between two pieces of progress.
func (s *bucketStore) short(ctx context.Context) *watch {
	return newWatch(ctx, s.lim, s.lim.timeout, EnvTimeout)
}

// stalled replaces err by the watch's StallError when the watch ended the
// request (net/http reports that as a cancelled context).
func stalled(w *watch, err error) error {
	if err == nil {
		return nil
	}
	if se := w.stalled(); se != nil {
		return &unavailableError{se}
	}
	return err
}

func (s *bucketStore) GetAction(ctx context.Context, key string) ([]byte, bool, error) {
	if err := checkHex("action key", key); err != nil {
		return nil, false, err
	}
	object := "ac/" + key
	w := s.short(ctx)
	defer w.stop()
	r, size, err := s.objs.Open(w.ctx, s.prefix+object)
	if errors.Is(err, errNoObject) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, s.wrap("read", object, stalled(w, err))
	}
	defer r.Close()
	if size > maxActionBytes {
		return nil, false, fmt.Errorf("%w: action %s is %d bytes, over the %d an action result may have", ErrCorrupt, key, size, maxActionBytes)
	}
	b, err := io.ReadAll(io.LimitReader(watchedReader{r: r, w: w}, maxActionBytes+1))
	if err != nil {
		return nil, false, s.wrap("read", object, stalled(w, err))
	}
	if len(b) > maxActionBytes {
		return nil, false, fmt.Errorf("%w: action %s is over %d bytes", ErrCorrupt, key, maxActionBytes)
	}
	return b, true, nil
}

func (s *bucketStore) PutAction(ctx context.Context, key string, data []byte) error {
	if err := checkHex("action key", key); err != nil {
		return err
	}
	object := "ac/" + key
	w := s.short(ctx)
	defer w.stop()
	err := s.objs.Put(w.ctx, s.prefix+object, "application/json", int64(len(data)), exactly(bytes.NewReader(data), int64(len(data))))
	return s.wrap("write", object, stalled(w, err))
}

func (s *bucketStore) HasBlob(ctx context.Context, digest string) (bool, error) {
	if err := checkHex("digest", digest); err != nil {
		return false, err
	}
	object := "cas/" + digest
	w := s.short(ctx)
	defer w.stop()
	_, err := s.objs.Stat(w.ctx, s.prefix+object)
	if errors.Is(err, errNoObject) {
		return false, nil
	}
	return err == nil, s.wrap("stat", object, stalled(w, err))
}

func (s *bucketStore) OpenBlob(ctx context.Context, digest string) (io.ReadCloser, error) {
	if err := checkHex("digest", digest); err != nil {
		return nil, err
	}
	object := "cas/" + digest
	// The transfer as a whole is bounded by the transfer timeout, each
	// wait for data by the idle timeout, and the wait until the object
	// starts to arrive by the timeout.
	w := newWatch(ctx, s.lim, s.lim.transfer, EnvTransferTimeout)
	timer := time.AfterFunc(s.lim.timeout, func() {
		w.cancel(&StallError{What: "no answer within", Limit: s.lim.timeout, Env: EnvTimeout})
	})
	r, size, err := s.objs.Open(w.ctx, s.prefix+object)
	timer.Stop()
	if se := w.stalled(); se != nil {
		if err == nil {
			_ = r.Close() // abandoned: the request's context is cancelled
		}
		w.stop()
		return nil, s.wrap("read", object, &unavailableError{se})
	}
	if err != nil {
		w.stop()
		if errors.Is(err, errNoObject) {
			return nil, fmt.Errorf("remote cache %s: blob %s: %w", s.name, digest, ErrNotFound)
		}
		return nil, s.wrap("read", object, err)
	}
	return &bucketReader{s: s, object: object, r: r, size: size, w: w}, nil
}

type bucketReader struct {
	s      *bucketStore
	object string
	r      io.ReadCloser
	size   int64
	w      *watch
}

func (b *bucketReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 {
		b.w.kick()
	}
	if err != nil && err != io.EOF {
		err = b.s.wrap("read", b.object, stalled(b.w, err))
	}
	return n, err
}

// Size is the object's size as the store reports it, which Pull compares
// with the size the action result claims before reading.
func (b *bucketReader) Size() int64 { return b.size }

func (b *bucketReader) Close() error {
	err := b.r.Close()
	b.w.stop()
	return err
}

func (s *bucketStore) PutBlob(ctx context.Context, digest string, size int64, r io.Reader) error {
	if err := checkHex("digest", digest); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("remote cache: blob %s: negative size %d", short(digest), size)
	}
	object := "cas/" + digest
	w := newWatch(ctx, s.lim, s.lim.transfer, EnvTransferTimeout)
	defer w.stop()
	err := s.objs.Put(w.ctx, s.prefix+object, "application/octet-stream", size, exactly(watchedReader{r: r, w: w}, size))
	return s.wrap("write", object, stalled(w, err))
}
