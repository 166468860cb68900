package remote

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mlbuild/mlbuild/cache"
)

func openLocal(t *testing.T) *cache.Store {
	t.Helper()
	s, err := cache.Open(context.Background(), t.TempDir(), cache.Options{NoWait: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeOK(t, s) })
	return s
}

// closeOK closes c, failing the test if that fails. For use in defer and
// t.Cleanup.
func closeOK(t testing.TB, c io.Closer) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Errorf("close %T: %v", c, err)
	}
}

func randBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	rng := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 7})
	_, _ = rng.Read(b)
	return b
}

func hexOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// bigSize is over the cache's 1 MiB chunks and the bucket writers' 8 MiB
// parts, so that both are exercised.
const bigSize = 9<<20 + 123

// fixture is an action with a small file output, a multi-chunk file output
// and a tree output, stored in a local cache.
type fixture struct {
	ar    *cache.ActionResult
	big   string // digest of the large blob
	small string // digest of the small file output
	tree  string // digest of the tree's manifest
	blobs int    // distinct blobs the action needs (files + manifest)
	bytes int64  // their total size
	files map[string][]byte
}

func makeFixture(t *testing.T, local *cache.Store, seed uint64) *fixture {
	t.Helper()
	dir := t.TempDir()
	write := func(rel string, b []byte, mode os.FileMode) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, mode); err != nil {
			t.Fatal(err)
		}
	}
	f := &fixture{files: map[string][]byte{}}
	small := []byte("step output " + strings.Repeat("x", int(seed%7)) + "\n")
	big := randBytes(seed, bigSize)
	f.files["small.txt"] = small
	f.files["model.bin"] = big
	write("small.txt", small, 0o644)
	write("model.bin", big, 0o644)
	treeFiles := map[string][]byte{
		"tree/config.json":    []byte(`{"layers": 2}`),
		"tree/sub/weights.pt": randBytes(seed+1, 3<<20+5),
		"tree/run.sh":         []byte("#!/bin/sh\necho hi\n"),
		"tree/copy.txt":       small, // the same blob as another output
	}
	for rel, b := range treeFiles {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(rel, ".sh") {
			mode = 0o755
		}
		write(rel, b, mode)
		f.files[rel] = b
	}
	if err := os.MkdirAll(filepath.Join(dir, "tree", "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	h := cache.NewHasher(nil)
	outputs := map[string]cache.OutputRef{}
	for _, name := range []string{"small.txt", "model.bin", "tree"} {
		p := filepath.Join(dir, name)
		a, err := h.Digest(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := local.PutArtifact(p, a); err != nil {
			t.Fatal(err)
		}
		outputs[name] = cache.OutputRef{Path: name, Digest: a.Digest, Size: a.Size, Dir: a.Dir}
	}
	f.small, f.big, f.tree = outputs["small.txt"].Digest, outputs["model.bin"].Digest, outputs["tree"].Digest
	m, err := local.Manifest(f.tree)
	if err != nil {
		t.Fatal(err)
	}
	raw := m.Encode()
	// small.txt, model.bin, config.json, weights.pt, run.sh, the manifest
	// (copy.txt is small.txt's blob).
	f.blobs = 6
	f.bytes = int64(len(small)+len(big)+len(raw)) + int64(len(treeFiles["tree/config.json"])+len(treeFiles["tree/sub/weights.pt"])+len(treeFiles["tree/run.sh"]))
	key := hexOf([]byte{byte(seed), 'k'})
	f.ar = &cache.ActionResult{
		Key:        key,
		Step:       "demo.step",
		Components: cache.KeyComponents{Kind: "demo", Version: "1"},
		Outputs:    outputs,
		Provenance: cache.Provenance{MlbuildVersion: "test", Device: "cpu", Started: time.Now().UTC().Truncate(time.Second)},
	}
	if err := local.PutAction(f.ar); err != nil {
		t.Fatal(err)
	}
	return f
}

// backendCase describes a remote under test.
type backendCase struct {
	url  string
	opts Options
	// corrupt replaces the stored object ("cas/<digest>") with other bytes.
	corrupt func(t *testing.T, object string, data []byte)
	// stop makes the remote unreachable (nil when that means nothing).
	stop func(t *testing.T)
	// secrets must never appear in String() or an error.
	secrets []string
}

func checkNoSecret(t *testing.T, bc backendCase, what, s string) {
	t.Helper()
	for _, sec := range bc.secrets {
		if strings.Contains(s, sec) {
			t.Errorf("%s reveals a credential: %s", what, s)
		}
	}
}

// runScenario pushes a fixture from one local cache, pulls it into fresh
// ones, and checks stats, misses, corruption and (where it applies) an
// unreachable remote.
func runScenario(t *testing.T, bc backendCase) {
	ctx := context.Background()
	r, err := Open(ctx, bc.url, bc.opts)
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, r)
	checkNoSecret(t, bc, "String()", r.String())

	a := openLocal(t)
	fx := makeFixture(t, a, 1)

	// A key the remote does not have.
	if ar, st, err := Pull(ctx, a, r, hexOf([]byte("unknown"))); err != nil || ar != nil || st != (Stats{}) {
		t.Fatalf("Pull(unknown) = %v, %+v, %v; want nil, zero, nil", ar, st, err)
	}

	st, err := Push(ctx, a, r, fx.ar)
	if err != nil {
		t.Fatalf("Push: %v", err)
	}
	if st.Uploaded != fx.blobs || st.Skipped != 0 || st.BytesUp != fx.bytes {
		t.Errorf("first Push stats = %+v; want %d uploaded, %d bytes", st, fx.blobs, fx.bytes)
	}
	st, err = Push(ctx, a, r, fx.ar)
	if err != nil {
		t.Fatalf("second Push: %v", err)
	}
	if st.Uploaded != 0 || st.Skipped != fx.blobs || st.BytesUp != 0 {
		t.Errorf("second Push stats = %+v; want all %d skipped", st, fx.blobs)
	}

	// An upload cut midway (the local reader fails, or ends early)
	// leaves nothing under the blob's name. Over 8 MiB, so that a bucket
	// writer has started a multipart upload by then.
	part := randBytes(5, bigSize)
	pd := hexOf(part)
	boom := errors.New("local read failed")
	if err := r.PutBlob(ctx, pd, int64(len(part)), &errAfterReader{r: bytes.NewReader(part[:len(part)-1<<19]), err: boom}); !errors.Is(err, boom) || IsUnavailable(err) {
		t.Errorf("PutBlob of a failing reader: %v; want the reader's error, not an unavailable remote", err)
	}
	if err := r.PutBlob(ctx, pd, int64(len(part)), bytes.NewReader(part[:len(part)-1000])); err == nil {
		t.Error("PutBlob of a short reader succeeded")
	}
	if ok, err := r.HasBlob(ctx, pd); err != nil || ok {
		t.Errorf("after cut uploads HasBlob = %v, %v; want false", ok, err)
	}
	if rc, err := r.OpenBlob(ctx, pd); !errors.Is(err, ErrNotFound) {
		if err == nil {
			rc.Close()
		}
		t.Errorf("after cut uploads OpenBlob: %v; want ErrNotFound", err)
	}

	// Teammate B: an empty local cache.
	b := openLocal(t)
	ar, st, err := Pull(ctx, b, r, fx.ar.Key)
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	if ar == nil || ar.Key != fx.ar.Key || len(ar.Outputs) != len(fx.ar.Outputs) {
		t.Fatalf("Pull returned %+v", ar)
	}
	for name, o := range fx.ar.Outputs {
		if ar.Outputs[name] != o {
			t.Errorf("output %s = %+v, want %+v", name, ar.Outputs[name], o)
		}
		if ok, err := b.HasArtifact(o.Digest, o.Dir); err != nil || !ok {
			t.Errorf("output %s not whole in the pulling cache: %v %v", name, ok, err)
		}
	}
	if st.Downloaded != fx.blobs || st.Skipped != 0 || st.BytesDown != fx.bytes {
		t.Errorf("Pull stats = %+v; want %d downloaded, %d bytes", st, fx.blobs, fx.bytes)
	}
	if _, ok, _ := b.GetAction(fx.ar.Key); ok {
		t.Error("Pull stored the action itself; the caller is to do that")
	}
	// The content, materialized from B's cache, is what A built.
	out := t.TempDir()
	for name, o := range ar.Outputs {
		if err := b.MaterializeArtifact(o.Digest, o.Dir, filepath.Join(out, name), nil); err != nil {
			t.Fatalf("materialize %s: %v", name, err)
		}
	}
	for rel, want := range fx.files {
		got, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(rel)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s differs after the round trip (%v)", rel, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(out, "tree", "run.sh")); err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf("tree/run.sh lost its executable bit: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(out, "tree", "empty")); err != nil || !fi.IsDir() {
		t.Errorf("tree/empty not restored: %v", err)
	}
	// A second Pull finds everything local.
	_, st, err = Pull(ctx, b, r, fx.ar.Key)
	if err != nil {
		t.Fatal(err)
	}
	if st.Downloaded != 0 || st.Skipped != fx.blobs {
		t.Errorf("second Pull stats = %+v; want all %d skipped", st, fx.blobs)
	}

	// A corrupted object on the server is detected, named, and not kept.
	bad := bytes.Clone(fx.files["model.bin"])
	bad[len(bad)/2] ^= 0xff
	bc.corrupt(t, "cas/"+fx.big, bad)
	c := openLocal(t)
	_, _, err = Pull(ctx, c, r, fx.ar.Key)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), fx.big) {
		t.Fatalf("Pull of a corrupted blob: %v; want ErrCorrupt naming %s", err, fx.big)
	}
	if IsUnavailable(err) {
		t.Errorf("IsUnavailable(%v) = true for a corrupt object", err)
	}
	if ok, _ := c.HasBlob(fx.big); ok {
		t.Error("the corrupted blob was committed to the local cache")
	}
	if ok, _ := c.HasBlob(fx.tree); ok {
		t.Error("a tree manifest was stored although the pull failed")
	}
	// A truncated object too.
	bc.corrupt(t, "cas/"+fx.big, fx.files["model.bin"][:1<<20])
	if _, _, err = Pull(ctx, c, r, fx.ar.Key); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Pull of a truncated blob: %v; want ErrCorrupt", err)
	}
	if ok, _ := c.HasBlob(fx.big); ok {
		t.Error("the truncated blob was committed to the local cache")
	}
	// Push skips what the remote has, so the bad copy stays until a
	// cache that has the blob repairs it.
	if st, err := Push(ctx, a, r, fx.ar); err != nil || st.Uploaded != 0 {
		t.Fatalf("Push over a corrupt remote blob: %+v, %v", st, err)
	}
	if d, ok := CorruptBlob(err); !ok || d != fx.big {
		t.Fatalf("CorruptBlob(%v) = %q, %v; want %s", err, d, ok, fx.big)
	}
	if err := Repair(ctx, a, r, fx.big); err != nil {
		t.Fatalf("Repair: %v", err)
	}
	if _, _, err = Pull(ctx, c, r, fx.ar.Key); err != nil {
		t.Fatalf("Pull after repair: %v", err)
	}

	// Bad action results are ErrCorrupt, never used.
	k2 := hexOf([]byte("bad action"))
	for _, data := range []string{
		`{not json`,
		`{"key":"` + hexOf([]byte("other")) + `","outputs":{}}`,
		`{"key":"` + k2 + `","outputs":{"o":{"path":"../../etc/passwd","digest":"` + fx.small + `","size":1}}}`,
		`{"key":"` + k2 + `","outputs":{"o":{"path":"o","digest":"../../x","size":1}}}`,
	} {
		if err := r.PutAction(ctx, k2, []byte(data)); err != nil {
			t.Fatal(err)
		}
		ar, _, err := Pull(ctx, openLocal(t), r, k2)
		if ar != nil || !errors.Is(err, ErrCorrupt) {
			t.Errorf("Pull of action %s = %v, %v; want ErrCorrupt", data, ar, err)
		}
	}

	// Malformed digests never reach a URL or path.
	if _, err := r.HasBlob(ctx, "../ac/"+fx.ar.Key); err == nil {
		t.Error("HasBlob accepted a path as a digest")
	}
	if _, err := r.OpenBlob(ctx, strings.ToUpper(fx.big)); err == nil {
		t.Error("OpenBlob accepted an uppercase digest")
	}
	if _, err := r.OpenBlob(ctx, hexOf([]byte("absent"))); !errors.Is(err, ErrNotFound) {
		t.Errorf("OpenBlob(absent) = %v; want ErrNotFound", err)
	}

	if bc.stop == nil {
		return
	}
	bc.stop(t)
	d := openLocal(t)
	_, _, err = Pull(ctx, d, r, fx.ar.Key)
	if err == nil || !IsUnavailable(err) {
		t.Errorf("Pull from a stopped remote: %v; want an unavailable error", err)
	}
	if err != nil {
		checkNoSecret(t, bc, "error", err.Error())
	}
	_, err = Push(ctx, a, r, fx.ar)
	if err == nil || !IsUnavailable(err) {
		t.Errorf("Push to a stopped remote: %v; want an unavailable error", err)
	}
	if err != nil {
		checkNoSecret(t, bc, "error", err.Error())
	}
}
