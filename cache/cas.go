package cache

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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

func chunkKey(digest string, i int) []byte {
	return []byte(fmt.Sprintf("%s%s/%08x", pfxChunk, digest, i))
}

// HasBlob reports whether the blob is stored whole.
func (s *Store) HasBlob(digest string) (bool, error) {
	var m blobMeta
	return s.getJSON(pfxBlob+digest, &m)
}

// BlobSize returns a stored blob's size.
func (s *Store) BlobSize(digest string) (int64, bool, error) {
	var m blobMeta
	ok, err := s.getJSON(pfxBlob+digest, &m)
	return m.Size, ok, err
}

// PutBlob stores the content read from r, which must hash to digest. It
// streams in ChunkSize pieces (never holding the blob in memory), verifies
// the digest and commits the blob only when it matches; on any failure no
// trace of the blob is visible.
func (s *Store) PutBlob(digest string, r io.Reader) error {
	if ok, err := s.HasBlob(digest); err != nil || ok {
		return err
	}
	h := sha256.New()
	buf := make([]byte, ChunkSize)
	var size int64
	n := 0
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for {
		k, err := io.ReadFull(r, buf)
		if k > 0 {
			h.Write(buf[:k])
			if werr := wb.Set(chunkKey(digest, n), append([]byte(nil), buf[:k]...)); werr != nil {
				return fmt.Errorf("store blob %s: %w", short(digest), werr)
			}
			n++
			size += int64(k)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("store blob %s: read: %w", short(digest), err)
		}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != digest {
		return fmt.Errorf("store blob: content hashes to %s, expected %s (the file changed while it was being stored)", short(got), short(digest))
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("store blob %s: %w", short(digest), err)
	}
	return s.putJSON(pfxBlob+digest, blobMeta{Size: size, Chunks: n, Stored: time.Now().UTC()})
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
	defer f.Close()
	return s.PutBlob(digest, f)
}

// PutBytes stores small content (manifests, reports).
func (s *Store) PutBytes(b []byte) (string, error) {
	sum := sha256.Sum256(b)
	d := hex.EncodeToString(sum[:])
	return d, s.PutBlob(d, bytes.NewReader(b))
}

// ErrBlobMissing means the CAS has no (whole) blob for a digest.
var ErrBlobMissing = errors.New("blob missing from the cache")

// WriteBlob streams a stored blob to w, verifying its digest as it goes.
func (s *Store) WriteBlob(digest string, w io.Writer) error {
	var m blobMeta
	ok, err := s.getJSON(pfxBlob+digest, &m)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %s", ErrBlobMissing, short(digest))
	}
	h := sha256.New()
	for i := 0; i < m.Chunks; i++ {
		err := s.db.View(func(txn *badger.Txn) error {
			item, err := txn.Get(chunkKey(digest, i))
			if err != nil {
				return err
			}
			return item.Value(func(b []byte) error {
				h.Write(b)
				_, werr := w.Write(b)
				return werr
			})
		})
		if errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("%w: %s lost chunk %d", ErrBlobMissing, short(digest), i)
		}
		if err != nil {
			return fmt.Errorf("read blob %s: %w", short(digest), err)
		}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != digest {
		return fmt.Errorf("cache corruption: blob %s reads back as %s", short(digest), short(got))
	}
	return nil
}

// ReadBlob returns a small blob's bytes.
func (s *Store) ReadBlob(digest string) ([]byte, error) {
	var buf bytes.Buffer
	if err := s.WriteBlob(digest, &buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// MaterializeBlob writes a stored blob to path atomically (temp file in the
// same directory, fsync, rename) with the given mode.
func (s *Store) MaterializeBlob(digest, path string, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".mlbuild-tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := s.WriteBlob(digest, tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// deleteBlob removes a blob: the commit record first, so a crash halfway
// leaves only unreachable chunks.
func (s *Store) deleteBlob(digest string, chunks int) error {
	if err := s.delete(pfxBlob + digest); err != nil {
		return err
	}
	keys := make([]string, 0, chunks)
	for i := 0; i < chunks; i++ {
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

