package cache

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestBlobRoundTrip(t *testing.T) {
	s := openTest(t, t.TempDir())
	sizes := []int{0, 1, 100, ChunkSize - 1, ChunkSize, ChunkSize + 1, 3*ChunkSize + ChunkSize/2,
		chunksPerTxn * ChunkSize, chunksPerTxn*ChunkSize + 1, (2*chunksPerTxn+1)*ChunkSize + 123}
	for i, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			b := randBytes(uint64(i), n)
			d := digestOf(b)
			if err := s.PutBlob(d, bytes.NewReader(b)); err != nil {
				t.Fatal(err)
			}
			if ok, err := s.HasBlob(d); err != nil || !ok {
				t.Fatalf("HasBlob = %v, %v", ok, err)
			}
			if size, ok, err := s.BlobSize(d); err != nil || !ok || size != int64(n) {
				t.Fatalf("BlobSize = %d, %v, %v", size, ok, err)
			}
			m, _, _ := s.blobMeta(d)
			if want := (n + ChunkSize - 1) / ChunkSize; m.Chunks != want {
				t.Errorf("chunks = %d, want %d", m.Chunks, want)
			}
			if got := len(chunkKeys(t, s, d)); got != m.Chunks {
				t.Errorf("%d chunk keys stored, want %d", got, m.Chunks)
			}
			got, err := s.ReadBlob(d)
			if err != nil || !bytes.Equal(got, b) {
				t.Fatalf("ReadBlob: %v (equal %v)", err, bytes.Equal(got, b))
			}
			var buf bytes.Buffer
			if err := s.WriteBlob(d, &buf); err != nil || !bytes.Equal(buf.Bytes(), b) {
				t.Fatalf("WriteBlob: %v", err)
			}
			// Storing it again reads nothing.
			if err := s.PutBlob(d, failReader{t}); err != nil {
				t.Fatal(err)
			}
		})
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Blobs != len(sizes) || st.OrphanChunks != 0 {
		t.Errorf("stats %+v", st)
	}
	var total int64
	for _, n := range sizes {
		total += int64(n)
	}
	if st.BlobBytes != total {
		t.Errorf("blob bytes %d, want %d", st.BlobBytes, total)
	}
}

func TestPutBlobRejectsMismatch(t *testing.T) {
	s := openTest(t, t.TempDir())
	for _, n := range []int{0, 10, 3*ChunkSize + 7, (2*chunksPerTxn+3)*ChunkSize + 5} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			b := randBytes(7, n)
			wrong := digestOf(append([]byte("x"), b...))
			err := s.PutBlob(wrong, bytes.NewReader(b))
			if err == nil {
				t.Fatal("mismatching content accepted")
			}
			if ok, _ := s.HasBlob(wrong); ok {
				t.Fatal("mismatching blob is visible")
			}
			if keys := chunkKeys(t, s, wrong); len(keys) != 0 {
				t.Fatalf("%d chunks of a rejected blob left behind", len(keys))
			}
			// A read error midway commits nothing either.
			d := digestOf(b)
			err = s.PutBlob(d, &errAfter{r: bytes.NewReader(b), err: errors.New("disk on fire")})
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte("disk on fire")) {
				t.Fatalf("read error not reported: %v", err)
			}
			if ok, _ := s.HasBlob(d); ok {
				t.Fatal("half-read blob is visible")
			}
			if keys := chunkKeys(t, s, d); len(keys) != 0 {
				t.Fatalf("%d chunks of a failed put left behind", len(keys))
			}
		})
	}
	for _, bad := range []string{"", "abc", "../../etc/passwd", "ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789"} {
		if err := s.PutBlob(bad, bytes.NewReader(nil)); err == nil {
			t.Errorf("PutBlob accepted digest %q", bad)
		}
		if ok, err := s.HasBlob(bad); ok || err != nil {
			t.Errorf("HasBlob(%q) = %v, %v", bad, ok, err)
		}
	}
	if st, _ := s.Stats(); st.Blobs != 0 || st.OrphanChunks != 0 {
		t.Errorf("stats after rejected puts: %+v", st)
	}
}

func TestCorruptionDetected(t *testing.T) {
	s := openTest(t, t.TempDir())
	b := randBytes(3, 3*ChunkSize+ChunkSize/2)
	d := digestOf(b)

	t.Run("flipped chunk", func(t *testing.T) {
		if err := s.PutBlob(d, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
		bad := bytes.Clone(b[ChunkSize : 2*ChunkSize])
		bad[12345] ^= 1
		setRaw(t, s, chunkKey(d, 1), bad)
		err := s.WriteBlob(d, io.Discard)
		if !errors.Is(err, ErrBlobMissing) {
			t.Fatalf("corrupt chunk not detected: %v", err)
		}
		if ok, _ := s.HasBlob(d); ok {
			t.Fatal("damaged blob still claimed whole")
		}
		if st, _ := s.Stats(); st.OrphanChunks != 0 {
			t.Errorf("damaged blob's chunks left: %d", st.OrphanChunks)
		}
	})
	t.Run("short chunk", func(t *testing.T) {
		if err := s.PutBlob(d, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
		setRaw(t, s, chunkKey(d, 3), b[3*ChunkSize:3*ChunkSize+10])
		if _, err := s.ReadBlob(d); !errors.Is(err, ErrBlobMissing) {
			t.Fatalf("truncated chunk not detected: %v", err)
		}
	})
	t.Run("lost chunk", func(t *testing.T) {
		if err := s.PutBlob(d, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
		if err := s.delete(string(chunkKey(d, 2))); err != nil {
			t.Fatal(err)
		}
		if err := s.MaterializeBlob(d, filepath.Join(t.TempDir(), "f"), 0o444); !errors.Is(err, ErrBlobMissing) {
			t.Fatalf("lost chunk not detected: %v", err)
		}
		if ok, _ := s.HasBlob(d); ok {
			t.Fatal("damaged blob still claimed whole")
		}
	})
	// Once dropped, it can be stored again.
	if err := s.PutBlob(d, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ReadBlob(d); err != nil || !bytes.Equal(got, b) {
		t.Fatalf("re-stored blob: %v", err)
	}
}

func TestWriteBlobWriterErrorKeepsBlob(t *testing.T) {
	s := openTest(t, t.TempDir())
	d := mustPut(t, s, randBytes(1, 2*ChunkSize))
	if err := s.WriteBlob(d, errWriter{}); err == nil || errors.Is(err, ErrBlobMissing) {
		t.Fatalf("writer error reported as %v", err)
	}
	if ok, _ := s.HasBlob(d); !ok {
		t.Fatal("a writer error dropped the blob")
	}
	if _, err := s.ReadBlob(digestOf([]byte("nope"))); !errors.Is(err, ErrBlobMissing) {
		t.Fatalf("missing blob: %v", err)
	}
}

type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestMaterializeBlob(t *testing.T) {
	s := openTest(t, t.TempDir())
	b := randBytes(5, ChunkSize+3)
	d := mustPut(t, s, b)
	dir := t.TempDir()
	p := filepath.Join(dir, "out.bin")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.MaterializeBlob(d, p, 0o555); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, b) {
		t.Fatalf("content: %v", err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o555 {
		t.Errorf("mode %v", fi.Mode())
	}
	// A missing blob leaves neither a file nor a temp file.
	q := filepath.Join(dir, "missing")
	if err := s.MaterializeBlob(digestOf([]byte("none")), q, 0o444); !errors.Is(err, ErrBlobMissing) {
		t.Fatalf("missing blob: %v", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only out.bin", len(ents))
	}
}

func TestReadBlobRefusesHugeBlobs(t *testing.T) {
	s := openTest(t, t.TempDir())
	d := digestOf([]byte("pretend"))
	// A commit record claiming a huge blob: ReadBlob must not try.
	setRaw(t, s, []byte(pfxBlob+d), []byte(fmt.Sprintf(`{"size":%d,"chunks":1000}`, int64(maxReadBlob)+1)))
	if _, err := s.ReadBlob(d); err == nil || errors.Is(err, ErrBlobMissing) {
		t.Fatalf("ReadBlob of a huge blob: %v", err)
	}
}

// Concurrent puts of one digest, some with the wrong content, never leave
// a damaged blob.
func TestConcurrentPutsOfOneDigest(t *testing.T) {
	s := openTest(t, t.TempDir())
	n := (chunksPerTxn + 2) * ChunkSize
	good := randBytes(11, n)
	bad := randBytes(12, n)
	d := digestOf(good)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src := good
			if i%2 == 1 {
				src = bad
			}
			errs[i] = s.PutBlob(d, bytes.NewReader(src))
		}()
	}
	wg.Wait()
	for i := 0; i < len(errs); i += 2 {
		if errs[i] != nil {
			t.Errorf("good put %d: %v", i, errs[i])
		}
	}
	got, err := s.ReadBlob(d)
	if err != nil || !bytes.Equal(got, good) {
		t.Fatalf("blob after concurrent puts: %v", err)
	}
	if st, _ := s.Stats(); st.OrphanChunks != 0 {
		t.Errorf("%d orphan chunks", st.OrphanChunks)
	}
}

func TestChunkKeyParse(t *testing.T) {
	d := digestOf(nil)
	got, i, ok := parseChunkKey(string(chunkKey(d, 300)))
	if !ok || got != d || i != 300 {
		t.Fatalf("parse = %q %d %v", got, i, ok)
	}
	if _, _, ok := parseChunkKey(pfxChunk + "junk"); ok {
		t.Fatal("junk parsed")
	}
}
