package cache

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// blobMeta is the commit record of a stored blob: it is written only after
// every chunk is in, so a blob whose meta exists is whole.
type blobMeta struct {
	Size   int64     `json:"size"`
	Chunks int       `json:"chunks"`
	Stored time.Time `json:"stored"`
}

// chunksPerTxn bounds how many chunks one Badger transaction carries, and
// so the memory a PutBlob holds (Badger keeps a transaction's values in
// memory until it commits).
const chunksPerTxn = 8

// maxReadBlob is the largest blob ReadBlob agrees to load into memory.
const maxReadBlob = 256 << 20

var chunkPool = sync.Pool{New: func() any { b := make([]byte, ChunkSize); return &b }}

func chunkKey(digest string, i int) []byte {
	return []byte(fmt.Sprintf("%s%s/%08x", pfxChunk, digest, i))
}

// parseChunkKey splits a chunk key into its blob digest and index.
func parseChunkKey(key string) (string, int, bool) {
	rest, ok := strings.CutPrefix(key, pfxChunk)
	if !ok {
		return "", 0, false
	}
	d, idx, ok := strings.Cut(rest, "/")
	if !ok {
		return "", 0, false
	}
	i, err := strconv.ParseUint(idx, 16, 31)
	if err != nil {
		return d, 0, false
	}
	return d, int(i), true
}

// validDigest reports whether d is a lowercase hex SHA-256 digest, the only
// form the store accepts (it becomes part of database keys).
func validDigest(d string) bool {
	if len(d) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(d); i++ {
		c := d[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func (s *Store) blobMeta(digest string) (blobMeta, bool, error) {
	var m blobMeta
	if !validDigest(digest) {
		return m, false, nil
	}
	ok, err := s.getJSON(pfxBlob+digest, &m)
	return m, ok, err
}

// HasBlob reports whether the blob is stored whole.
func (s *Store) HasBlob(digest string) (bool, error) {
	_, ok, err := s.blobMeta(digest)
	return ok, err
}

// BlobSize returns a stored blob's size.
func (s *Store) BlobSize(digest string) (int64, bool, error) {
	m, ok, err := s.blobMeta(digest)
	return m.Size, ok, err
}

// PutBlob stores the content read from r, which must hash to digest. It
// streams in ChunkSize pieces (holding at most a few MiB in memory),
// verifies the digest and commits the blob only when it matches; on any
// failure no trace of the blob is visible. A blob already stored is not
// read again.
//
// Chunks go in first, in transactions of chunksPerTxn chunks; the commit
// record goes in last, in the same transaction as the final chunks. A crash
// before that commit leaves only chunks no reader ever looks at (GC sweeps
// them, and a later PutBlob of the same digest overwrites them).
//
// Content that does not hash to digest is refused with an error wrapping
// ErrDigestMismatch.
func (s *Store) PutBlob(digest string, r io.Reader) error {
	if !validDigest(digest) {
		return fmt.Errorf("store blob: %q is not a SHA-256 digest", digest)
	}
	if ok, err := s.HasBlob(digest); err != nil || ok {
		return err
	}
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	unlock := s.blobLocks.lock(digest)
	defer unlock()
	// Another goroutine may have stored it while we waited.
	if ok, err := s.HasBlob(digest); err != nil || ok {
		return err
	}

	op := "store blob " + short(digest)
	// Fail before reading anything on a disk that has no room left.
	release, err := s.claimSpace(op, 0, s.reserve())
	if err != nil {
		return err
	}
	release()

	bufp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bufp)
	buf := *bufp
	h := sha256.New()
	var size int64
	n := 0         // chunks read
	committed := 0 // chunks committed by earlier transactions
	txn := s.db.NewTransaction(true)
	defer func() { txn.Discard() }()
	var txnBytes int64 // the bytes txn carries
	// commit commits txn if the disk has room for it.
	commit := func() error {
		release, err := s.claimSpace(op, txnBytes, s.reserve())
		if err != nil {
			return err
		}
		defer release()
		if err := txn.Commit(); err != nil {
			return fmt.Errorf("%s: %w", op, s.diskFullErr(op, err))
		}
		txnBytes = 0
		return nil
	}
	fail := func(err error) error {
		txn.Discard()
		if committed > 0 {
			// Best effort: GC sweeps whatever this leaves.
			_ = s.deleteChunks(digest, 0, committed)
		}
		return err
	}
	for {
		k, rerr := io.ReadFull(r, buf)
		if k > 0 {
			h.Write(buf[:k])
			if err := txn.Set(chunkKey(digest, n), bytes.Clone(buf[:k])); err != nil {
				return fail(fmt.Errorf("store blob %s: %w", short(digest), err))
			}
			txnBytes += entrySize(len(chunkKey(digest, n)), k)
			n++
			size += int64(k)
			if n-committed == chunksPerTxn {
				if err := commit(); err != nil {
					return fail(err)
				}
				committed = n
				txn = s.db.NewTransaction(true)
			}
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			return fail(fmt.Errorf("store blob %s: read: %w", short(digest), rerr))
		}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != digest {
		return fail(fmt.Errorf("store blob: %w: content (%d bytes) hashes to %s, expected %s (a file that changed while it was stored, or a damaged download)", ErrDigestMismatch, size, short(got), short(digest)))
	}
	if committed > 0 {
		// Make the earlier chunk transactions durable before the commit
		// record can be, so that not even a power loss exposes a blob
		// with missing chunks.
		if err := s.db.Sync(); err != nil {
			return fail(fmt.Errorf("store blob %s: %w", short(digest), s.diskFullErr(op, err)))
		}
	}
	meta, err := json.Marshal(blobMeta{Size: size, Chunks: n, Stored: time.Now().UTC()})
	if err != nil {
		return fail(err)
	}
	if err := txn.Set([]byte(pfxBlob+digest), meta); err != nil {
		return fail(fmt.Errorf("store blob %s: %w", short(digest), err))
	}
	txnBytes += entrySize(len(pfxBlob+digest), len(meta))
	if err := commit(); err != nil {
		return fail(err)
	}
	return nil
}

// PutFile stores the file at path under digest.
func (s *Store) PutFile(digest, path string) error {
	if ok, err := s.HasBlob(digest); err != nil || ok {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }() // read-only
	return s.PutBlob(digest, f)
}

// PutBytes stores small content (manifests, reports).
func (s *Store) PutBytes(b []byte) (string, error) {
	sum := sha256.Sum256(b)
	d := hex.EncodeToString(sum[:])
	return d, s.PutBlob(d, bytes.NewReader(b))
}

// ErrDigestMismatch means content offered under a digest hashes to
// another one.
var ErrDigestMismatch = errors.New("content does not match its digest")

// ErrBlobMissing means the CAS has no (whole) blob for a digest. A blob
// found damaged on read (a lost chunk, content that no longer hashes to its
// digest) is reported with this error too, after it has been removed from
// the store so that it can be stored again.
var ErrBlobMissing = errors.New("blob missing from the cache")

// writerError marks an error of the destination writer, which says nothing
// about the blob.
type writerError struct{ err error }

func (e writerError) Error() string { return e.err.Error() }
func (e writerError) Unwrap() error { return e.err }

// WriteBlob streams a stored blob to w, verifying its digest as it goes.
// Only when it returns nil has w received the whole, verified blob; on an
// error w may have received part of it.
func (s *Store) WriteBlob(digest string, w io.Writer) error {
	m, ok, err := s.blobMeta(digest)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %s", ErrBlobMissing, short(digest))
	}
	h := sha256.New()
	var size int64
	for i := 0; i < m.Chunks; i++ {
		err := s.db.View(func(txn *badger.Txn) error {
			item, err := txn.Get(chunkKey(digest, i))
			if err != nil {
				return err
			}
			return item.Value(func(b []byte) error {
				h.Write(b)
				size += int64(len(b))
				if _, werr := w.Write(b); werr != nil {
					return writerError{werr}
				}
				return nil
			})
		})
		var we writerError
		switch {
		case err == nil:
		case errors.As(err, &we):
			return we.err
		case errors.Is(err, badger.ErrKeyNotFound):
			s.dropDamaged(digest, m)
			return fmt.Errorf("%w: blob %s lost chunk %d (the damaged blob was removed from the cache)", ErrBlobMissing, short(digest), i)
		case errors.Is(err, badger.ErrDBClosed):
			return fmt.Errorf("read blob %s: %w", short(digest), err)
		default:
			s.dropDamaged(digest, m)
			return fmt.Errorf("%w: blob %s chunk %d unreadable: %v (the damaged blob was removed from the cache)", ErrBlobMissing, short(digest), i, err)
		}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != digest || size != m.Size {
		s.dropDamaged(digest, m)
		return fmt.Errorf("%w: cache corruption: blob %s (%d bytes) reads back as %s (%d bytes); the damaged blob was removed from the cache", ErrBlobMissing, short(digest), m.Size, short(got), size)
	}
	return nil
}

// dropDamaged removes a blob found damaged on read, unless it was stored
// anew in the meantime, so that HasBlob stops claiming it and the next
// PutBlob stores it whole again.
func (s *Store) dropDamaged(digest string, seen blobMeta) {
	unlock := s.blobLocks.lock(digest)
	defer unlock()
	cur, ok, err := s.blobMeta(digest)
	if err != nil || !ok || !cur.Stored.Equal(seen.Stored) {
		return
	}
	s.log.Warn("removing damaged blob from the cache", "digest", digest)
	_ = s.deleteBlob(digest, cur.Chunks)
}

// ReadBlob returns a small blob's bytes (manifests, reports); it refuses
// blobs over 256 MiB, which must be streamed with WriteBlob.
func (s *Store) ReadBlob(digest string) ([]byte, error) {
	m, ok, err := s.blobMeta(digest)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrBlobMissing, short(digest))
	}
	if m.Size > maxReadBlob {
		return nil, fmt.Errorf("read blob %s: %d bytes is too large to load in memory (stream it with WriteBlob)", short(digest), m.Size)
	}
	buf := bytes.NewBuffer(make([]byte, 0, m.Size))
	if err := s.WriteBlob(digest, buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// MaterializeBlob writes a stored blob to path atomically (temp file in the
// same directory, fsync, rename) with the given mode. An existing file at
// path is replaced.
func (s *Store) MaterializeBlob(digest, path string, mode os.FileMode) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".mlbuild-tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close() // the write failed already; its error is the one returned
			os.Remove(tmp.Name())
		}
	}()
	if err := s.WriteBlob(digest, tmp); err != nil {
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp.Name(), path)
}

// deleteBlob removes a blob: the commit record first, so a crash halfway
// leaves only unreachable chunks.
func (s *Store) deleteBlob(digest string, chunks int) error {
	if err := s.delete(pfxBlob + digest); err != nil {
		return err
	}
	return s.deleteChunks(digest, 0, chunks)
}

// deleteChunks removes chunks [from, to) of a blob.
func (s *Store) deleteChunks(digest string, from, to int) error {
	keys := make([]string, 0, max(to-from, 0))
	for i := from; i < to; i++ {
		keys = append(keys, string(chunkKey(digest, i)))
	}
	return s.delete(keys...)
}

func short(d string) string {
	if len(d) > 12 {
		return d[:12]
	}
	return d
}
