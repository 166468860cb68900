package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file://
	_ "gocloud.dev/blob/s3blob"   // s3://
	"gocloud.dev/gcerrors"
	"google.golang.org/api/googleapi"
)

// bucketStore keeps the cache in a bucket (or a directory) through
// gocloud.dev/blob: blobs as objects "cas/<digest>", action results as
// "ac/<key>".
type bucketStore struct {
	b       *blob.Bucket
	name    string // redacted URL
	lim     limits
	secrets []string
}

// Upload tuning: the part size the S3 and Azure writers buffer, and how
// many parts of one upload are in flight, so that Parallelism uploads hold
// at most Parallelism*bucketPartConcurrency*bucketPartSize bytes.
const (
	bucketPartSize        = 8 << 20
	bucketPartConcurrency = 2
)

// Credentials the bucket SDKs read from the environment, scrubbed from
// error messages should one ever quote them.
var bucketSecretEnv = []string{"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN", "AZURE_CLIENT_SECRET", "AZURE_STORAGE_CONNECTION_STRING"}

func openBucket(ctx context.Context, u *url.URL, opts Options) (*bucketStore, error) {
	c := *u
	q := c.Query()
	switch scheme := strings.ToLower(c.Scheme); scheme {
	case "file":
		// A directory: write temporary files beside the objects (so the
		// final rename never crosses file systems), and no metadata
		// sidecars. It must exist unless ?create_dir=true: a shared
		// mount that is missing must not silently become an empty cache
		// on the local disk.
		if c.Host != "" && c.Host != "localhost" {
			return nil, fmt.Errorf("remote cache URL %s: a file:// URL names a local directory: file:///path/to/dir", redactURL(u))
		}
		if c.Path == "" || c.Path == "/" {
			return nil, fmt.Errorf("remote cache URL %s: no directory (use file:///path/to/dir)", redactURL(u))
		}
		if q.Get("create_dir") == "" {
			fi, err := os.Stat(c.Path)
			if err != nil {
				return nil, fmt.Errorf("remote cache %s: %w (is the shared directory mounted? add ?create_dir=true to create it)", redactURL(u), err)
			}
			if !fi.IsDir() {
				return nil, fmt.Errorf("remote cache %s: %s is not a directory", redactURL(u), c.Path)
			}
		}
		setDefault(q, "no_tmp_dir", "true")
		setDefault(q, "metadata", "skip")
	default:
		// s3://bucket/some/prefix is the bucket with ?prefix=some/prefix/.
		if p := strings.Trim(c.Path, "/"); p != "" {
			if q.Get("prefix") != "" {
				return nil, fmt.Errorf("remote cache URL %s: give the prefix either as a path or as ?prefix=, not both", redactURL(u))
			}
			q.Set("prefix", p+"/")
			c.Path = ""
			c.RawPath = ""
		}
		if c.Host == "" {
			return nil, fmt.Errorf("remote cache URL %s: no bucket name", redactURL(u))
		}
		if scheme == "s3" {
			// mlbuild verifies every download by its SHA-256; the SDK's
			// optional CRC checksums only break S3-compatible stores that
			// do not implement them.
			setDefault(q, "request_checksum_calculation", "when_required")
			setDefault(q, "response_checksum_validation", "when_required")
			if err := s3Credentials(u, q, opts); err != nil {
				return nil, err
			}
		}
	}
	c.RawQuery = q.Encode()
	s := &bucketStore{name: redactURL(u), lim: opts.limits()}
	for _, k := range bucketSecretEnv {
		if v := opts.Getenv(k); v != "" {
			s.secrets = append(s.secrets, v)
		}
	}
	if strings.EqualFold(c.Scheme, "gs") {
		b, err := openGCS(ctx, &c, opts)
		if err != nil {
			return nil, scrub(fmt.Errorf("remote cache %s: %w", s.name, err), s.secrets)
		}
		s.b = b
		return s, nil
	}
	if !blob.DefaultURLMux().ValidBucketScheme(c.Scheme) {
		return nil, fmt.Errorf("remote cache %s: this mlbuild was built without %s:// support (the build tag mlbuild_noazure leaves out Azure)", s.name, c.Scheme)
	}
	b, err := blob.OpenBucket(ctx, c.String())
	if err != nil {
		return nil, scrub(fmt.Errorf("remote cache %s: %w", s.name, stripURL(err, c.String(), s.name)), s.secrets)
	}
	s.b = b
	return s, nil
}

// s3Credentials refuses credentials in AWS_ENDPOINT_URL(_S3), and keeps
// the AWS SDK from probing the EC2 instance metadata service (IMDS) for
// credentials when the endpoint is not AWS's and nothing else provides
// them: an S3-compatible server off AWS never takes an instance role's
// credentials, and the probe would hang for seconds on a machine outside
// EC2 (or hand the role's credentials to a server that is not AWS's).
// Requests then go unsigned (anonymous=true), which a server that needs
// credentials refuses with a message naming the variables to set.
func s3Credentials(u *url.URL, q url.Values, opts Options) error {
	endpoint := q.Get("endpoint")
	for _, env := range []string{"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"} {
		v := opts.Getenv(env)
		if v == "" {
			continue
		}
		if eu, err := url.Parse(v); err == nil && eu.User != nil {
			return fmt.Errorf("remote cache %s: credentials in %s are not accepted; %s", redactURL(u), env, credentialHelp("s3"))
		}
		if endpoint == "" {
			endpoint = v
		}
	}
	if endpoint == "" || awsHost(endpoint) {
		return nil
	}
	for _, p := range []string{"anonymous", "profile", "role"} {
		if q.Get(p) != "" {
			return nil
		}
	}
	for _, env := range []string{"AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"} {
		if opts.Getenv(env) != "" {
			return nil
		}
	}
	files := []string{opts.Getenv("AWS_SHARED_CREDENTIALS_FILE"), opts.Getenv("AWS_CONFIG_FILE")}
	if home, err := os.UserHomeDir(); err == nil {
		files = append(files, filepath.Join(home, ".aws", "credentials"), filepath.Join(home, ".aws", "config"))
	}
	for _, f := range files {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err == nil {
			// The SDK may find credentials there.
			return nil
		}
	}
	opts.Log.Warn("no AWS credentials in the environment for a custom S3 endpoint: sending unsigned requests (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)", "remote", redactURL(u))
	q.Set("anonymous", "true")
	return nil
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

func setDefault(q url.Values, k, v string) {
	if _, ok := q[k]; !ok {
		q.Set(k, v)
	}
}

// stripURL replaces quotes of the raw URL in err's message with its
// redacted form.
func stripURL(err error, raw, redacted string) error {
	msg := err.Error()
	if !strings.Contains(msg, raw) {
		return err
	}
	return &scrubbedError{msg: strings.ReplaceAll(msg, raw, redacted), err: err}
}

func (s *bucketStore) String() string { return s.name }

func (s *bucketStore) Close() error { return s.b.Close() }

// wrap turns an SDK error into one of this package's: not found, refused
// access (naming the SDK's credential variables), or the error itself with
// credentials scrubbed.
func (s *bucketStore) wrap(op, object string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = &unavailableError{fmt.Errorf("%w (%v)", errTruncated, err)}
	}
	if isAuthError(err) {
		return scrub(fmt.Errorf("remote cache %s: %s %s: %w (%v; credentials come from the storage SDK's environment: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE for s3://, GOOGLE_APPLICATION_CREDENTIALS for gs://, AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN for azblob://)", s.name, op, object, ErrAuth, err), s.secrets)
	}
	return scrub(fmt.Errorf("remote cache %s: %s %s: %w", s.name, op, object, err), s.secrets)
}

func isAuthError(err error) bool {
	if gcerrors.Code(err) == gcerrors.PermissionDenied {
		return true
	}
	var sc interface{ HTTPStatusCode() int }
	if errors.As(err, &sc) {
		if c := sc.HTTPStatusCode(); c == 401 || c == 403 {
			return true
		}
	}
	if c, ok := sdkStatusCode(err); ok && (c == 401 || c == 403) {
		return true
	}
	return false
}

// sdkStatusCode digs the HTTP status out of the GCS and Azure SDKs' errors.
func sdkStatusCode(err error) (int, bool) {
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		return ge.Code, true
	}
	var ae *azcore.ResponseError
	if errors.As(err, &ae) {
		return ae.StatusCode, true
	}
	return 0, false
}

// short bounds a small request (HEAD, an action) by the timeout, and by
// the idle timeout between two pieces of progress.
func (s *bucketStore) short(ctx context.Context) *watch {
	return newWatch(ctx, s.lim, s.lim.timeout, EnvTimeout)
}

// stalled replaces err by the watch's StallError when the watch ended the
// request (the SDKs report that as a cancelled context).
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
	r, err := s.b.NewReader(w.ctx, object, nil)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, s.wrap("read", object, stalled(w, err))
	}
	defer r.Close()
	if r.Size() > maxActionBytes {
		return nil, false, fmt.Errorf("%w: action %s is %d bytes, over the %d an action result may have", ErrCorrupt, key, r.Size(), maxActionBytes)
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
	err := s.b.WriteAll(w.ctx, object, data, &blob.WriterOptions{ContentType: "application/json"})
	return s.wrap("write", object, stalled(w, err))
}

func (s *bucketStore) HasBlob(ctx context.Context, digest string) (bool, error) {
	if err := checkHex("digest", digest); err != nil {
		return false, err
	}
	object := "cas/" + digest
	w := s.short(ctx)
	defer w.stop()
	ok, err := s.b.Exists(w.ctx, object)
	return ok, s.wrap("stat", object, stalled(w, err))
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
	r, err := s.b.NewReader(w.ctx, object, nil)
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
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil, fmt.Errorf("remote cache %s: blob %s: %w", s.name, digest, ErrNotFound)
		}
		return nil, s.wrap("read", object, err)
	}
	return &bucketReader{s: s, object: object, r: r, w: w}, nil
}

type bucketReader struct {
	s      *bucketStore
	object string
	r      *blob.Reader
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
func (b *bucketReader) Size() int64 { return b.r.Size() }

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
	// Cancelling the writer's context before Close aborts the upload
	// (fileblob removes its temporary file, S3 aborts the multipart
	// upload) instead of committing what was written so far.
	ctx, cancel := context.WithCancel(w.ctx)
	defer cancel()
	bw, err := s.b.NewWriter(ctx, object, &blob.WriterOptions{
		ContentType:    "application/octet-stream",
		BufferSize:     bucketPartSize,
		MaxConcurrency: bucketPartConcurrency,
	})
	if err != nil {
		return s.wrap("write", object, err)
	}
	n, err := io.Copy(bw, onlyReader{watchedReader{r: r, w: w}})
	if err == nil && n != size {
		err = fmt.Errorf("read %d bytes, expected %d", n, size)
	}
	if err != nil {
		cancel()
		_ = bw.Close()
		return s.wrap("write", object, stalled(w, err))
	}
	return s.wrap("write", object, stalled(w, bw.Close()))
}

// onlyReader hides a reader's WriterTo so that io.Copy feeds the writer in
// bounded pieces.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }
