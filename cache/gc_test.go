package cache

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// putAction stores an action result whose outputs are the given blobs.
func putAction(t *testing.T, s *Store, key string, lastUsed time.Time, outs map[string]OutputRef) {
	t.Helper()
	if err := s.PutAction(&ActionResult{Key: key, Step: "step." + key, Outputs: outs, LastUsed: lastUsed}); err != nil {
		t.Fatal(err)
	}
}

func fileOut(t *testing.T, s *Store, b []byte) OutputRef {
	t.Helper()
	return OutputRef{Path: "out", Digest: mustPut(t, s, b), Size: int64(len(b))}
}

func hasAction(t *testing.T, s *Store, key string) bool {
	t.Helper()
	_, ok, err := s.GetAction(key)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func hasBlob(t *testing.T, s *Store, d string) bool {
	t.Helper()
	ok, err := s.HasBlob(d)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestGC(t *testing.T) {
	s := openTest(t, t.TempDir())
	now := time.Now().UTC()
	old := now.Add(-48 * time.Hour)

	shared := randBytes(30, 1000)
	protOut := fileOut(t, s, randBytes(31, 2*ChunkSize))
	putAction(t, s, "kprot", old, map[string]OutputRef{"model": protOut})
	oldOut := fileOut(t, s, randBytes(32, 5000))
	sharedOut := fileOut(t, s, shared)
	putAction(t, s, "kold", old, map[string]OutputRef{"a": oldOut, "b": sharedOut})

	// A tree output: its files are referenced only through the manifest.
	h := NewHasher(s)
	tree := filepath.Join(t.TempDir(), "tree")
	writeFile(t, filepath.Join(tree, "x", "data.bin"), randBytes(33, ChunkSize+9), 0o644)
	writeFile(t, filepath.Join(tree, "shared.txt"), shared, 0o644)
	ta, err := h.Digest(tree)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutArtifact(tree, ta); err != nil {
		t.Fatal(err)
	}
	putAction(t, s, "ktree", now, map[string]OutputRef{"dir": {Path: "tree", Digest: ta.Digest, Dir: true}})
	if err := s.PutRun(RunRecord{Pipeline: "p", Finished: now, Keys: map[string]string{"train": "kprot"}}, false); err != nil {
		t.Fatal(err)
	}

	// Garbage: an unreferenced blob, a crashed put's chunks, a chunk past
	// a committed blob's end, a result whose outputs are gone, and a stat
	// record of a file that no longer exists.
	loose := mustPut(t, s, []byte("nobody references me"))
	crashed := digestOf([]byte("never committed"))
	setRaw(t, s, chunkKey(crashed, 0), []byte("never"))
	setRaw(t, s, chunkKey(crashed, 1), []byte(" committed"))
	setRaw(t, s, chunkKey(protOut.Digest, 2), []byte("stale tail"))
	putAction(t, s, "kbroken", now, map[string]OutputRef{"x": {Path: "x", Digest: digestOf([]byte("gone"))}})
	gone := filepath.Join(t.TempDir(), "gone.txt")
	writeFile(t, gone, []byte("soon gone"), 0o644)
	age(t, gone, time.Hour)
	if _, err := h.Digest(gone); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}

	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	// blobs: protOut, oldOut, shared, data.bin, manifest, loose
	if st.Actions != 4 || st.Blobs != 6 || st.Pipelines != 1 || st.OrphanChunks != 3 || st.StatEntries < 1 {
		t.Fatalf("stats %+v", st)
	}

	// Dry run: reports, removes nothing.
	dry, err := s.GC(GCOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if dry.ActionsRemoved != 1 || dry.BlobsRemoved != 1 || dry.ChunksRemoved != 3 || dry.Protected != 1 || dry.StatRemoved < 1 {
		t.Fatalf("dry run %+v", dry)
	}
	if st2, _ := s.Stats(); st2 != st {
		t.Fatalf("dry run changed the store: %+v -> %+v", st, st2)
	}

	// Plain gc: only garbage goes.
	res, err := s.GC(GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.ActionsRemoved != dry.ActionsRemoved || res.BlobsRemoved != dry.BlobsRemoved || res.ChunksRemoved != dry.ChunksRemoved || res.BytesFreed != dry.BytesFreed {
		t.Fatalf("gc %+v differs from its dry run %+v", res, dry)
	}
	if hasBlob(t, s, loose) || hasAction(t, s, "kbroken") {
		t.Fatal("garbage survived")
	}
	for _, k := range []string{"kprot", "kold", "ktree"} {
		if !hasAction(t, s, k) {
			t.Fatalf("%s removed", k)
		}
	}
	if ok, _ := s.HasArtifact(ta.Digest, true); !ok {
		t.Fatal("tree output damaged")
	}
	if st, _ := s.Stats(); st.OrphanChunks != 0 || st.Blobs != 5 || st.StatEntries != 0 {
		t.Fatalf("after gc: %+v", st)
	}
	if got, err := s.ReadBlob(protOut.Digest); err != nil || len(got) != 2*ChunkSize {
		t.Fatalf("protected blob after orphan sweep: %v", err)
	}

	// Age-based: the old result goes, the protected one (just as old)
	// stays, and a blob the old one shared with a kept tree stays.
	res, err = s.GC(GCOptions{OlderThan: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if res.ActionsRemoved != 1 || res.BlobsRemoved != 1 || res.BytesFreed != 5000 || res.Protected != 1 || res.ActionsKept != 2 {
		t.Fatalf("age gc %+v", res)
	}
	if hasAction(t, s, "kold") || hasBlob(t, s, oldOut.Digest) {
		t.Fatal("old result survived")
	}
	if !hasAction(t, s, "kprot") || !hasBlob(t, s, protOut.Digest) {
		t.Fatal("protected result removed")
	}
	if !hasBlob(t, s, sharedOut.Digest) {
		t.Fatal("blob still referenced by a kept tree removed")
	}

	// Everything left is within a day: a tiny size cap removes every
	// unprotected result, never the protected one.
	res, err = s.GC(GCOptions{MaxBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.ActionsRemoved != 1 || res.Protected != 1 {
		t.Fatalf("size gc %+v", res)
	}
	if hasAction(t, s, "ktree") || hasBlob(t, s, ta.Digest) || hasBlob(t, s, sharedOut.Digest) {
		t.Fatal("tree result survived the cap")
	}
	if !hasAction(t, s, "kprot") || !hasBlob(t, s, protOut.Digest) {
		t.Fatal("protected result removed by the cap")
	}
	if st, _ := s.Stats(); st.Blobs != 1 || st.Actions != 1 || st.OrphanChunks != 0 {
		t.Fatalf("final %+v", st)
	}
}

func TestGCMaxBytesLRU(t *testing.T) {
	s := openTest(t, t.TempDir())
	base := time.Now().UTC().Add(-time.Hour)
	const size = 1000
	// k0 least recently used ... k4 most; k1 and k3 share a blob.
	shared := fileOut(t, s, randBytes(50, size))
	for i := 0; i < 5; i++ {
		outs := map[string]OutputRef{"o": fileOut(t, s, randBytes(uint64(40+i), size))}
		if i == 1 || i == 3 {
			outs["s"] = shared
		}
		putAction(t, s, "k"+string(rune('0'+i)), base.Add(time.Duration(i)*time.Minute), outs)
	}
	if err := s.PutRun(RunRecord{Pipeline: "p", Keys: map[string]string{"a": "k0"}}, false); err != nil {
		t.Fatal(err)
	}
	// 6 blobs, 6000 bytes. A cap of 4000 spares k0 (protected) and drops
	// k1 (frees only its own blob: the shared one is still used by k3),
	// then k2; that leaves k0, k3, k4 and the shared blob: 4000 bytes.
	res, err := s.GC(GCOptions{MaxBytes: 4000})
	if err != nil {
		t.Fatal(err)
	}
	if res.ActionsRemoved != 2 || res.BlobsRemoved != 2 || res.BytesFreed != 2*size {
		t.Fatalf("gc %+v", res)
	}
	for k, want := range map[string]bool{"k0": true, "k1": false, "k2": false, "k3": true, "k4": true} {
		if hasAction(t, s, k) != want {
			t.Errorf("%s kept = %v, want %v", k, !want, want)
		}
	}
	if !hasBlob(t, s, shared.Digest) {
		t.Fatal("shared blob removed")
	}
	// Under the cap already: nothing more goes.
	if res, err := s.GC(GCOptions{MaxBytes: 4000}); err != nil || res.ActionsRemoved != 0 || res.BlobsRemoved != 0 {
		t.Fatalf("second gc %+v %v", res, err)
	}
	// A partial run merges into the record: k0 stays protected.
	if err := s.PutRun(RunRecord{Pipeline: "p", Keys: map[string]string{"b": "k4"}}, true); err != nil {
		t.Fatal(err)
	}
	if res, err := s.GC(GCOptions{MaxBytes: 1}); err != nil || res.Protected != 2 || !hasAction(t, s, "k0") || !hasAction(t, s, "k4") || hasAction(t, s, "k3") {
		t.Fatalf("gc after a partial run %+v %v", res, err)
	}
}

// GC waits for a put in progress in the same process instead of sweeping
// its chunks as orphans.
func TestGCDuringPut(t *testing.T) {
	s := openTest(t, t.TempDir())
	b := randBytes(60, (2*chunksPerTxn+2)*ChunkSize)
	d := digestOf(b)
	reached := make(chan struct{})
	release := make(chan struct{})
	r := &gateReader{r: bytes.NewReader(b), at: int64(2 * chunksPerTxn * ChunkSize), reached: reached, release: release}
	putErr := make(chan error, 1)
	go func() { putErr <- s.PutBlob(d, r) }()
	<-reached // two transactions of chunks are committed, no commit record yet
	gcDone := make(chan error, 1)
	go func() {
		_, err := s.GC(GCOptions{})
		gcDone <- err
	}()
	time.Sleep(50 * time.Millisecond) // let GC reach its lock (passes either way when correct)
	close(release)
	if err := <-putErr; err != nil {
		t.Fatal(err)
	}
	if err := <-gcDone; err != nil {
		t.Fatal(err)
	}
	// The blob is unreferenced, so gc may have removed it whole; what it
	// must never do is leave it committed but damaged.
	if ok, _ := s.HasBlob(d); ok {
		if got, err := s.ReadBlob(d); err != nil || !bytes.Equal(got, b) {
			t.Fatalf("blob damaged by a concurrent gc: %v", err)
		}
	}
	if st, _ := s.Stats(); st.OrphanChunks != 0 {
		t.Fatalf("%d orphan chunks", st.OrphanChunks)
	}
}

// gateReader blocks once it has returned `at` bytes until release closes.
type gateReader struct {
	r        *bytes.Reader
	n, at    int64
	reached  chan struct{}
	release  chan struct{}
	signaled bool
}

func (g *gateReader) Read(p []byte) (int, error) {
	if g.n >= g.at && !g.signaled {
		g.signaled = true
		close(g.reached)
		<-g.release
	}
	if rem := g.at - g.n; rem > 0 && int64(len(p)) > rem {
		p = p[:rem]
	}
	k, err := g.r.Read(p)
	g.n += int64(k)
	return k, err
}
