package remote

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/mlbuild/mlbuild/cache"
)

// Parallelism is how many blobs Pull and Push transfer at once.
const Parallelism = 8

// maxManifestBytes bounds a tree manifest downloaded into memory (it is
// verified there and stored only after the files it lists): some 400,000
// files.
const maxManifestBytes = 64 << 20

// maxBlobSize is the cap on one blob that Pull accepts from r.
func maxBlobSize(r Store) int64 {
	if l, ok := r.(interface{ limits() limits }); ok && l.limits().maxBlob > 0 {
		return l.limits().maxBlob
	}
	return DefaultMaxBlobSize
}

func (s *httpStore) limits() limits   { return s.lim }
func (s *bucketStore) limits() limits { return s.lim }

// checkClaim refuses a blob the action result (or a manifest) claims to be
// larger than the cap, before anything is downloaded.
func checkClaim(what, digest string, size, max int64) error {
	if size > max {
		return &CorruptError{Digest: digest, Detail: fmt.Sprintf("%s claims %d bytes, over the %d bytes accepted from a remote (%s sets the cap)", what, size, max, EnvMaxBlobSize)}
	}
	return nil
}

// Stats counts the blobs a Pull or Push moved. Action results are not
// counted.
type Stats struct {
	// Uploaded and Downloaded count blobs transferred.
	Uploaded, Downloaded int
	// Skipped counts blobs the destination already held.
	Skipped int
	// BytesUp and BytesDown count blob bytes transferred.
	BytesUp, BytesDown int64
}

// Add returns the sum of two Stats.
func (s Stats) Add(o Stats) Stats {
	return Stats{
		Uploaded:   s.Uploaded + o.Uploaded,
		Downloaded: s.Downloaded + o.Downloaded,
		Skipped:    s.Skipped + o.Skipped,
		BytesUp:    s.BytesUp + o.BytesUp,
		BytesDown:  s.BytesDown + o.BytesDown,
	}
}

type statsMu struct {
	mu sync.Mutex
	s  Stats
}

func (m *statsMu) add(f func(*Stats)) {
	m.mu.Lock()
	f(&m.s)
	m.mu.Unlock()
}

func (m *statsMu) get() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.s
}

// ParseAction decodes and validates an action result fetched from a
// remote under key: it must be mlbuild's JSON, name key, and have outputs
// with safe paths and SHA-256 digests. A bad one is an error wrapping
// ErrCorrupt.
func ParseAction(key string, data []byte) (*cache.ActionResult, error) {
	var ar cache.ActionResult
	if err := json.Unmarshal(data, &ar); err != nil {
		return nil, fmt.Errorf("%w: action %s is not an mlbuild action result: %v", ErrCorrupt, key, err)
	}
	if ar.Key != key {
		return nil, fmt.Errorf("%w: action %s names key %q", ErrCorrupt, key, ar.Key)
	}
	for name, o := range ar.Outputs {
		if name == "" {
			return nil, fmt.Errorf("%w: action %s has an output without a name", ErrCorrupt, key)
		}
		if !safePath(o.Path) {
			return nil, fmt.Errorf("%w: action %s: output %q has an unsafe path %q", ErrCorrupt, key, name, o.Path)
		}
		if !validHex(o.Digest) {
			return nil, fmt.Errorf("%w: action %s: output %q has a bad digest %q", ErrCorrupt, key, name, o.Digest)
		}
		if o.Size < 0 {
			return nil, fmt.Errorf("%w: action %s: output %q has a negative size", ErrCorrupt, key, name)
		}
	}
	return &ar, nil
}

// safePath reports whether p is a relative, slash-separated path that stays
// inside the folder it is joined to.
func safePath(p string) bool {
	return fs.ValidPath(p) && p != "." && !strings.Contains(p, "\\")
}

// checkManifest rejects a manifest that could write outside its tree or is
// not in canonical form.
func checkManifest(digest string, m *cache.Manifest) error {
	for i, e := range m.Entries {
		if !safePath(e.Path) {
			return fmt.Errorf("%w: tree manifest %s has an unsafe path %q", ErrCorrupt, digest, e.Path)
		}
		if i > 0 && m.Entries[i-1].Path >= e.Path {
			return fmt.Errorf("%w: tree manifest %s is not sorted or repeats %q", ErrCorrupt, digest, e.Path)
		}
		if !e.Dir && !validHex(e.Digest) {
			return fmt.Errorf("%w: tree manifest %s: %q has a bad digest %q", ErrCorrupt, digest, e.Path, e.Digest)
		}
		if e.Size < 0 {
			return fmt.Errorf("%w: tree manifest %s: %q has a negative size", ErrCorrupt, digest, e.Path)
		}
	}
	return nil
}

// sortedOutputs lists an action's output names in order, for stable error
// messages and transfer order.
func sortedOutputs(ar *cache.ActionResult) []string {
	names := make([]string, 0, len(ar.Outputs))
	for n := range ar.Outputs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Pull downloads the action result for key and every blob its outputs need
// (file blobs, tree manifests and the files they list) into local,
// verifying each against its digest via local.PutBlob: a mismatch is an
// error wrapping ErrCorrupt that names the digest, and nothing half-written
// is committed. It returns (nil, stats, nil) when the remote has no such
// action. A check that the caller put in ctx with cache.WithActionCheck is
// applied to the result before any blob is downloaded; a result it
// refuses is an error wrapping ErrCorrupt. Blobs already in local are not
// downloaded. Transfers run in parallel (Parallelism at a time). A tree's
// manifest is stored only after all its files. Pull does NOT store the action in local: the caller does,
// so that an action is only visible locally once every blob is in.
func Pull(ctx context.Context, local *cache.Store, r Store, key string) (*cache.ActionResult, Stats, error) {
	var st statsMu
	data, ok, err := r.GetAction(ctx, key)
	if err != nil || !ok {
		return nil, Stats{}, err
	}
	ar, err := ParseAction(key, data)
	if err != nil {
		return nil, Stats{}, fmt.Errorf("pull %s: %w", short(key), err)
	}
	fail := func(err error) (*cache.ActionResult, Stats, error) {
		return nil, st.get(), fmt.Errorf("pull %s: %w", short(key), err)
	}
	// The caller's own check (the engine's: the step's declared outputs)
	// before anything the result names is downloaded.
	if err := cache.CheckAction(ctx, ar); err != nil {
		return fail(fmt.Errorf("%w: action %s: %v", ErrCorrupt, key, err))
	}
	max := maxBlobSize(r)
	for _, name := range sortedOutputs(ar) {
		if o := ar.Outputs[name]; !o.Dir {
			if err := checkClaim("output "+name, o.Digest, o.Size, max); err != nil {
				return fail(err)
			}
		}
	}

	// Phase 1: the manifests of tree outputs (from local if there, else
	// downloaded into memory and verified).
	type tree struct {
		digest string
		m      *cache.Manifest
		raw    []byte // downloaded manifest, stored after its files; nil if local
	}
	var (
		trees   []*tree
		treeIdx = map[string]bool{}
		files   []fileBlob
		seen    = map[string]bool{}
	)
	addFile := func(d string, size int64, what string) {
		if !seen[d] {
			seen[d] = true
			files = append(files, fileBlob{d, size, what})
		}
	}
	for _, name := range sortedOutputs(ar) {
		o := ar.Outputs[name]
		if !o.Dir {
			addFile(o.Digest, o.Size, "output "+name)
		} else if !treeIdx[o.Digest] {
			treeIdx[o.Digest] = true
			trees = append(trees, &tree{digest: o.Digest})
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(Parallelism)
	for _, t := range trees {
		g.Go(func() error {
			has, err := local.HasBlob(t.digest)
			if err != nil {
				return err
			}
			if has {
				m, err := local.Manifest(t.digest)
				if err == nil {
					t.m = m
					st.add(func(s *Stats) { s.Skipped++ })
					return nil
				}
				if !errors.Is(err, cache.ErrBlobMissing) {
					return err
				}
				// Damaged locally (and now removed): download it.
			}
			raw, err := downloadSmall(gctx, r, t.digest, maxManifestBytes)
			if err != nil {
				return fmt.Errorf("tree manifest: %w", err)
			}
			st.add(func(s *Stats) { s.Downloaded++; s.BytesDown += int64(len(raw)) })
			var m cache.Manifest
			if err := json.Unmarshal(raw, &m); err != nil {
				return fmt.Errorf("%w: tree manifest %s is not a manifest: %v", ErrCorrupt, t.digest, err)
			}
			t.m, t.raw = &m, raw
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return fail(err)
	}
	byDigest := map[string]*tree{}
	for _, t := range trees {
		byDigest[t.digest] = t
	}
	for _, name := range sortedOutputs(ar) {
		o := ar.Outputs[name]
		if !o.Dir {
			continue
		}
		var total int64
		for _, e := range byDigest[o.Digest].m.Entries {
			total += e.Size
		}
		if total != o.Size {
			return fail(fmt.Errorf("%w: action %s: output %q claims %d bytes, but its tree holds %d", ErrCorrupt, key, name, o.Size, total))
		}
	}
	for _, t := range trees {
		if err := checkManifest(t.digest, t.m); err != nil {
			return fail(err)
		}
		for _, e := range t.m.Entries {
			if !e.Dir {
				if err := checkClaim("tree file "+e.Path, e.Digest, e.Size, max); err != nil {
					return fail(err)
				}
				addFile(e.Digest, e.Size, "tree file "+e.Path)
			}
		}
	}

	// Phase 2: every file blob, straight into the local store.
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(Parallelism)
	for _, f := range files {
		g.Go(func() error {
			has, err := local.HasBlob(f.digest)
			if err != nil {
				return err
			}
			if has {
				st.add(func(s *Stats) { s.Skipped++ })
				return nil
			}
			n, err := download(gctx, local, r, f.digest, f.size)
			if err != nil {
				return fmt.Errorf("%s: %w", f.what, err)
			}
			st.add(func(s *Stats) { s.Downloaded++; s.BytesDown += n })
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return fail(err)
	}

	// Phase 3: the downloaded manifests, now that their files are in.
	for _, t := range trees {
		if t.raw == nil {
			continue
		}
		if err := local.PutBlob(t.digest, bytes.NewReader(t.raw)); err != nil {
			return fail(err)
		}
	}
	return ar, st.get(), nil
}

type fileBlob struct {
	digest string
	size   int64 // expected size; -1 if unknown
	what   string
}

// CorruptError is a remote blob whose content does not match its digest
// (Pull found it so and did not use it). It matches ErrCorrupt. The remote
// keeps the bad copy, and Push skips blobs the remote has, so a caller that
// rebuilt the blob can replace it with Repair.
type CorruptError struct {
	Digest string
	Detail string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("%v: blob %s: %s", ErrCorrupt, e.Digest, e.Detail)
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// CorruptBlob returns the digest of the corrupt remote blob err reports,
// if it reports one.
func CorruptBlob(err error) (string, bool) {
	var ce *CorruptError
	if errors.As(err, &ce) {
		return ce.Digest, true
	}
	return "", false
}

// Repair uploads the local blob digest to r even though r holds an object
// under that name, replacing a corrupt copy. (A bazel-remote server keeps
// the blob it has; it verifies blobs on upload, so its copies are not
// corrupted in transit.)
func Repair(ctx context.Context, local *cache.Store, r Store, digest string) error {
	if !validHex(digest) {
		return fmt.Errorf("repair: %q is not a SHA-256 digest", digest)
	}
	if _, err := upload(ctx, local, r, digest); err != nil {
		return fmt.Errorf("repair blob %s: %w", short(digest), err)
	}
	return nil
}

// verifier hashes what passes through it and, at the end of the stream,
// turns a digest mismatch into an ErrCorrupt error instead of io.EOF; a
// transport error midway never reads as a clean end.
type verifier struct {
	r      io.Reader
	digest string
	limit  int64     // most bytes accepted; -1 for no limit
	exact  bool      // the stream must be exactly limit bytes
	h      hash.Hash // nil when the consumer verifies (cache.Store.PutBlob)
	n      int64
}

func newVerifier(r io.Reader, digest string, limit int64) *verifier {
	return &verifier{r: r, digest: digest, limit: limit, h: sha256.New()}
}

func (v *verifier) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	if v.h != nil {
		v.h.Write(p[:n])
	}
	v.n += int64(n)
	if v.limit >= 0 && v.n > v.limit {
		return n, &CorruptError{Digest: v.digest, Detail: fmt.Sprintf("it is larger than the %d bytes expected", v.limit)}
	}
	switch {
	case err == io.EOF:
		if v.exact && v.n < v.limit {
			return n, &CorruptError{Digest: v.digest, Detail: fmt.Sprintf("it ended after %d of the %d bytes expected", v.n, v.limit)}
		}
		if v.h == nil {
			break
		}
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.digest {
			return n, &CorruptError{Digest: v.digest, Detail: fmt.Sprintf("its content (%d bytes) hashes to %s", v.n, got)}
		}
	case err != nil && (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)):
		// Never hand the cache a (wrapped) EOF for a cut transfer.
		err = &unavailableError{fmt.Errorf("blob %s: %w (%v)", short(v.digest), errTruncated, err)}
	}
	return n, err
}

// download streams one blob from r into local, verified; it returns the
// bytes read.
func download(ctx context.Context, local *cache.Store, r Store, digest string, size int64) (int64, error) {
	rc, err := r.OpenBlob(ctx, digest)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	limit := int64(-1)
	if size >= 0 {
		// A blob of another size than expected hashes differently anyway;
		// the limit stops an endless stream early, and a length announced
		// up front that differs is refused before a byte is stored.
		limit = size
		if sz, ok := rc.(interface{ Size() int64 }); ok {
			if n := sz.Size(); n >= 0 && n != size {
				return 0, &CorruptError{Digest: digest, Detail: fmt.Sprintf("the remote sends %d bytes for a blob of %d", n, size)}
			}
		}
	}
	// PutBlob hashes what it stores and refuses a mismatch, so the
	// verifier only bounds the stream and reports a cut transfer.
	v := newVerifier(rc, digest, limit)
	v.h, v.exact = nil, limit >= 0
	if err := local.PutBlob(digest, v); err != nil {
		if errors.Is(err, cache.ErrDigestMismatch) {
			return v.n, &CorruptError{Digest: digest, Detail: fmt.Sprintf("its content (%d bytes) does not hash to its name", v.n)}
		}
		return v.n, err
	}
	return v.n, nil
}

// downloadSmall reads one blob (a manifest) into memory, verified.
func downloadSmall(ctx context.Context, r Store, digest string, max int64) ([]byte, error) {
	rc, err := r.OpenBlob(ctx, digest)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(newVerifier(rc, digest, max))
	if err != nil {
		return nil, err
	}
	return b, nil
}

// Push uploads every blob ar's outputs need that the remote lacks (HEAD
// first), in parallel, streaming from the local store with bounded memory;
// a tree's manifest goes after its files. Then it uploads the action result
// itself, last, so that a remote action never names a missing blob.
func Push(ctx context.Context, local *cache.Store, r Store, ar *cache.ActionResult) (Stats, error) {
	var st statsMu
	if !validHex(ar.Key) {
		return Stats{}, fmt.Errorf("push: action key %q is not 64 lowercase hex digits", ar.Key)
	}
	fail := func(err error) (Stats, error) {
		return st.get(), fmt.Errorf("push %s: %w", short(ar.Key), err)
	}
	var (
		files, manifests []fileBlob
		seen             = map[string]bool{}
	)
	add := func(list *[]fileBlob, d, what string) {
		if !seen[d] {
			seen[d] = true
			*list = append(*list, fileBlob{digest: d, what: what})
		}
	}
	for _, name := range sortedOutputs(ar) {
		o := ar.Outputs[name]
		if !validHex(o.Digest) {
			return fail(fmt.Errorf("output %s: bad digest %q", name, o.Digest))
		}
		if !o.Dir {
			add(&files, o.Digest, "output "+name)
			continue
		}
		m, err := local.Manifest(o.Digest)
		if err != nil {
			return fail(fmt.Errorf("output %s: %w", name, err))
		}
		for _, e := range m.Entries {
			if !e.Dir {
				add(&files, e.Digest, "output "+name+": "+e.Path)
			}
		}
		add(&manifests, o.Digest, "output "+name+" (tree manifest)")
	}
	for _, list := range [][]fileBlob{files, manifests} {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(Parallelism)
		for _, f := range list {
			g.Go(func() error {
				has, err := r.HasBlob(gctx, f.digest)
				if err != nil {
					return err
				}
				if has {
					st.add(func(s *Stats) { s.Skipped++ })
					return nil
				}
				n, err := upload(gctx, local, r, f.digest)
				if err != nil {
					return fmt.Errorf("%s: %w", f.what, err)
				}
				st.add(func(s *Stats) { s.Uploaded++; s.BytesUp += n })
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return fail(err)
		}
	}
	data, err := json.Marshal(ar)
	if err != nil {
		return fail(err)
	}
	if err := r.PutAction(ctx, ar.Key, data); err != nil {
		return fail(err)
	}
	return st.get(), nil
}

// upload streams one local blob to r through a pipe; the last chunk is
// held back until the local store has verified the whole blob, so that a
// blob found damaged locally reaches the remote short (and is aborted)
// rather than whole but wrong.
func upload(ctx context.Context, local *cache.Store, r Store, digest string) (int64, error) {
	size, ok, err := local.BlobSize(digest)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("%w: %s", cache.ErrBlobMissing, digest)
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		hb := &holdback{w: pw}
		err := local.WriteBlob(digest, hb)
		if err == nil {
			err = hb.flush()
		}
		pw.CloseWithError(err) // nil: io.EOF for the reader
		done <- err
	}()
	cr := &countReader{r: pr}
	err = r.PutBlob(ctx, digest, size, cr)
	// Unblock the writer if PutBlob stopped reading early.
	pr.CloseWithError(errUploadStopped)
	werr := <-done
	switch {
	case werr == nil || errors.Is(err, werr):
		return cr.n, err
	case errors.Is(werr, errUploadStopped):
		if err == nil {
			err = fmt.Errorf("blob %s: the remote stopped reading before the end", short(digest))
		}
		return cr.n, err
	case err == nil:
		return cr.n, werr
	default:
		// The local side failed: report that first.
		return cr.n, fmt.Errorf("%w (upload aborted: %v)", werr, err)
	}
}

var errUploadStopped = errors.New("upload stopped")

// holdback passes writes on one behind: it keeps a copy of the latest
// piece and writes it only when the next arrives or on flush.
type holdback struct {
	w       io.Writer
	pending []byte
}

func (h *holdback) Write(p []byte) (int, error) {
	if len(h.pending) > 0 {
		if _, err := h.w.Write(h.pending); err != nil {
			return 0, err
		}
	}
	h.pending = append(h.pending[:0], p...)
	return len(p), nil
}

func (h *holdback) flush() error {
	if len(h.pending) == 0 {
		return nil
	}
	_, err := h.w.Write(h.pending)
	h.pending = nil
	return err
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
