package cache

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, p string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, mode); err != nil {
		t.Fatal(err)
	}
}

// age sets a file's mtime well before the racy window.
func age(t *testing.T, p string, ago time.Duration) {
	t.Helper()
	when := time.Now().Add(-ago)
	if err := os.Chtimes(p, when, when); err != nil {
		t.Fatal(err)
	}
}

// makeTree builds a tree with nested dirs, empty dirs and an executable.
func makeTree(t *testing.T, root string) {
	writeFile(t, filepath.Join(root, "a.txt"), []byte("hello\n"), 0o644)
	writeFile(t, filepath.Join(root, "sub", "b.bin"), randBytes(21, 2*ChunkSize+77), 0o644)
	writeFile(t, filepath.Join(root, "sub", "deeper", "run.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755)
	writeFile(t, filepath.Join(root, "sub", "deeper", "empty.txt"), nil, 0o644)
	writeFile(t, filepath.Join(root, "a.b", "same.txt"), []byte("hello\n"), 0o644)
	for _, d := range []string{"empty", filepath.Join("sub", "nothing", "here")} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTreeRoundTrip(t *testing.T) {
	s := openTest(t, t.TempDir())
	h := NewHasher(s)
	src := filepath.Join(t.TempDir(), "src")
	makeTree(t, src)
	a, err := h.Digest(src)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Dir || a.Manifest == nil {
		t.Fatalf("not a tree: %+v", a)
	}
	var paths []string
	for _, e := range a.Manifest.Entries {
		paths = append(paths, e.Path)
	}
	want := "a.b/same.txt a.txt empty sub/b.bin sub/deeper/empty.txt sub/deeper/run.sh sub/nothing/here"
	if got := strings.Join(paths, " "); got != want {
		t.Fatalf("manifest paths\n got %s\nwant %s", got, want)
	}
	if want := int64(6 + 2*ChunkSize + 77 + 18 + 6); a.Size != want {
		t.Errorf("size %d, want %d", a.Size, want)
	}
	for _, e := range a.Manifest.Entries {
		if e.Exec != (e.Path == "sub/deeper/run.sh") {
			t.Errorf("%s exec=%v", e.Path, e.Exec)
		}
		if e.Dir != (e.Path == "empty" || e.Path == "sub/nothing/here") {
			t.Errorf("%s dir=%v", e.Path, e.Dir)
		}
	}
	if d := digestOf(a.Manifest.Encode()); d != a.Digest {
		t.Fatalf("digest %s is not the manifest's %s", a.Digest, d)
	}

	if ok, _ := s.HasArtifact(a.Digest, true); ok {
		t.Fatal("artifact present before PutArtifact")
	}
	if err := s.PutArtifact(src, a); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.HasArtifact(a.Digest, true); err != nil || !ok {
		t.Fatalf("HasArtifact = %v, %v", ok, err)
	}
	m, err := s.Manifest(a.Digest)
	if err != nil || !bytes.Equal(m.Encode(), a.Manifest.Encode()) {
		t.Fatalf("stored manifest differs: %v", err)
	}

	dst := filepath.Join(t.TempDir(), "build", "step", "out")
	h2 := NewHasher(s)
	if err := s.MaterializeArtifact(a.Digest, true, dst, h2); err != nil {
		t.Fatal(err)
	}
	// Trusted on materialization: digesting the copy reads nothing.
	b, err := h2.Digest(dst)
	if err != nil {
		t.Fatal(err)
	}
	if b.Digest != a.Digest {
		t.Fatalf("materialized tree digests to %s, want %s", b.Digest, a.Digest)
	}
	if h2.BytesRead() != 0 {
		t.Errorf("digesting a freshly materialized tree read %d bytes", h2.BytesRead())
	}
	// And a hasher without stat cache agrees.
	if c, err := NewHasher(nil).Digest(dst); err != nil || c.Digest != a.Digest {
		t.Fatalf("uncached digest %v, %v", c.Digest, err)
	}
	fi, err := os.Stat(filepath.Join(dst, "sub", "deeper", "run.sh"))
	if err != nil || fi.Mode().Perm() != 0o555 {
		t.Errorf("run.sh mode %v, %v", fi.Mode(), err)
	}
	fi, err = os.Stat(filepath.Join(dst, "a.txt"))
	if err != nil || fi.Mode().Perm() != 0o444 {
		t.Errorf("a.txt mode %v, %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Join(dst, "sub", "nothing", "here")); err != nil || !fi.IsDir() {
		t.Errorf("empty dir not materialized: %v", err)
	}
	ents, _ := os.ReadDir(filepath.Dir(dst))
	if len(ents) != 1 {
		t.Errorf("temporary files left beside the tree: %v", ents)
	}

	// A non-empty destination is refused; an empty one is fine.
	if err := s.MaterializeArtifact(a.Digest, true, dst, nil); err == nil {
		t.Error("materialized over an existing tree")
	}
	empty := filepath.Join(t.TempDir(), "e")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := s.MaterializeArtifact(a.Digest, true, empty, nil); err != nil {
		t.Fatalf("materialize into an empty dir: %v", err)
	}

	// The same tree elsewhere has the same digest.
	other := filepath.Join(t.TempDir(), "elsewhere")
	makeTree(t, other)
	if c, err := h.Digest(other); err != nil || c.Digest != a.Digest {
		t.Fatalf("same tree elsewhere: %s, %v", c.Digest, err)
	}
	// An exec bit changes it.
	if err := os.Chmod(filepath.Join(other, "a.txt"), 0o755); err != nil {
		t.Fatal(err)
	}
	if c, _ := h.Digest(other); c.Digest == a.Digest {
		t.Fatal("exec bit does not change the tree digest")
	}

	// A missing file blob makes the tree incomplete.
	for _, e := range a.Manifest.Entries {
		if e.Path == "sub/b.bin" {
			mt, _, _ := s.blobMeta(e.Digest)
			if err := s.deleteBlob(e.Digest, mt.Chunks); err != nil {
				t.Fatal(err)
			}
		}
	}
	if ok, err := s.HasArtifact(a.Digest, true); err != nil || ok {
		t.Fatalf("HasArtifact with a missing file = %v, %v", ok, err)
	}
	if err := s.MaterializeArtifact(a.Digest, true, filepath.Join(t.TempDir(), "x"), nil); !errors.Is(err, ErrBlobMissing) {
		t.Fatalf("materialize incomplete tree: %v", err)
	}
}

func TestEmptyTreeAndFileArtifact(t *testing.T) {
	s := openTest(t, t.TempDir())
	h := NewHasher(s)
	root := t.TempDir()
	a, err := h.Digest(root)
	if err != nil {
		t.Fatal(err)
	}
	if string(a.Manifest.Encode()) != `{"entries":[]}` {
		t.Fatalf("empty manifest %s", a.Manifest.Encode())
	}
	if err := s.PutArtifact(root, a); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "out")
	if err := s.MaterializeArtifact(a.Digest, true, dst, h); err != nil {
		t.Fatal(err)
	}
	if ents, err := os.ReadDir(dst); err != nil || len(ents) != 0 {
		t.Fatalf("empty tree: %v %v", ents, err)
	}

	f := filepath.Join(root, "model.bin")
	writeFile(t, f, randBytes(2, ChunkSize+5), 0o644)
	fa, err := h.Digest(f)
	if err != nil {
		t.Fatal(err)
	}
	if fa.Dir || fa.Size != ChunkSize+5 {
		t.Fatalf("file artifact %+v", fa)
	}
	if err := s.PutArtifact(f, fa); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "deep", "model.bin")
	if err := s.MaterializeArtifact(fa.Digest, false, out, nil); err != nil {
		t.Fatal(err)
	}
	if d, _, err := HashFile(out); err != nil || d != fa.Digest {
		t.Fatalf("materialized file: %v", err)
	}
}

func TestTreeSymlinks(t *testing.T) {
	h := NewHasher(nil)
	real := filepath.Join(t.TempDir(), "real")
	makeTree(t, real)
	ra, err := h.Digest(real)
	if err != nil {
		t.Fatal(err)
	}

	// Symlinks to files and directories are followed.
	linked := t.TempDir()
	writeFile(t, filepath.Join(linked, "a.txt"), []byte("hello\n"), 0o644)
	for _, l := range [][2]string{{"a.b", "a.b"}, {"sub", "sub"}, {"empty", "empty"}} {
		if err := os.Symlink(filepath.Join(real, l[0]), filepath.Join(linked, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	la, err := h.Digest(linked)
	if err != nil {
		t.Fatal(err)
	}
	if la.Digest != ra.Digest {
		t.Fatalf("tree through symlinks differs:\n%s\n%s", la.Manifest.Encode(), ra.Manifest.Encode())
	}
	// A symlinked root is followed too.
	root := filepath.Join(t.TempDir(), "root")
	if err := os.Symlink(real, root); err != nil {
		t.Fatal(err)
	}
	if a, err := h.Digest(root); err != nil || a.Digest != ra.Digest {
		t.Fatalf("symlinked root: %v", err)
	}

	// A cycle is an error, not a hang.
	cyc := t.TempDir()
	if err := os.Symlink(cyc, filepath.Join(cyc, "loop")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Digest(cyc); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Fatalf("symlink cycle: %v", err)
	}
	// A broken link is an error.
	broken := t.TempDir()
	if err := os.Symlink(filepath.Join(broken, "nowhere"), filepath.Join(broken, "dangling")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Digest(broken); err == nil || !strings.Contains(err.Error(), "broken symbolic link") {
		t.Fatalf("broken link: %v", err)
	}
}

func TestMaterializeRejectsUnsafeManifests(t *testing.T) {
	s := openTest(t, t.TempDir())
	fd := mustPut(t, s, []byte("payload"))
	cases := map[string]Manifest{
		"parent":    {Entries: []ManifestEntry{{Path: "../escape", Digest: fd, Size: 7}}},
		"inner dot": {Entries: []ManifestEntry{{Path: "a/../../escape", Digest: fd, Size: 7}}},
		"absolute":  {Entries: []ManifestEntry{{Path: "/tmp/escape", Digest: fd, Size: 7}}},
		"root":      {Entries: []ManifestEntry{{Path: ".", Dir: true}}},
		"empty":     {Entries: []ManifestEntry{{Path: "", Digest: fd, Size: 7}}},
		"duplicate": {Entries: []ManifestEntry{{Path: "a", Digest: fd}, {Path: "a", Digest: fd}}},
		"unsorted":  {Entries: []ManifestEntry{{Path: "b", Digest: fd}, {Path: "a", Digest: fd}}},
		"digest":    {Entries: []ManifestEntry{{Path: "a", Digest: "../../x"}}},
	}
	for name, m := range cases {
		t.Run(name, func(t *testing.T) {
			d := mustPut(t, s, m.Encode())
			base := t.TempDir()
			dst := filepath.Join(base, "out")
			if err := s.MaterializeArtifact(d, true, dst, nil); err == nil {
				t.Fatal("unsafe manifest materialized")
			}
			ents, _ := os.ReadDir(base)
			if len(ents) != 0 {
				t.Errorf("left %v behind", ents)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(base), "escape")); err == nil {
				t.Error("wrote outside the tree")
			}
		})
	}
}

func TestStatCache(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, filepath.Join(dir, "cache"))
	p := filepath.Join(dir, "input.csv")
	content := randBytes(4, 300_000)
	writeFile(t, p, content, 0o644)
	age(t, p, time.Hour)

	h := NewHasher(s)
	a1, err := h.Digest(p)
	if err != nil {
		t.Fatal(err)
	}
	if a1.Digest != digestOf(content) || h.BytesRead() != int64(len(content)) {
		t.Fatalf("first digest %s, read %d", a1.Digest, h.BytesRead())
	}
	// Unchanged old file: answered from the stat cache, nothing read.
	a2, err := h.Digest(p)
	if err != nil || a2 != a1 {
		t.Fatalf("second digest %+v, %v", a2, err)
	}
	if h.BytesRead() != int64(len(content)) {
		t.Fatalf("second digest of an unchanged file read %d bytes", h.BytesRead()-int64(len(content)))
	}
	// Through a relative path too, and from a new hasher.
	wd, _ := os.Getwd()
	if rel, err := filepath.Rel(wd, p); err == nil {
		h2 := NewHasher(s)
		if a, err := h2.Digest(rel); err != nil || a.Digest != a1.Digest || h2.BytesRead() != 0 {
			t.Fatalf("relative path: %v, read %d", err, h2.BytesRead())
		}
	}

	t.Run("size change", func(t *testing.T) {
		h := NewHasher(s)
		content = append(content, '!')
		writeFile(t, p, content, 0o644)
		age(t, p, time.Hour) // same old mtime as before
		a, err := h.Digest(p)
		if err != nil || a.Digest != digestOf(content) || h.BytesRead() != int64(len(content)) {
			t.Fatalf("after a size change: %v, read %d", err, h.BytesRead())
		}
	})
	t.Run("mtime change, same size", func(t *testing.T) {
		h := NewHasher(s)
		content[0] ^= 0xff
		writeFile(t, p, content, 0o644)
		age(t, p, 2*time.Hour)
		a, err := h.Digest(p)
		if err != nil || a.Digest != digestOf(content) || h.BytesRead() != int64(len(content)) {
			t.Fatalf("after an mtime change: %v, read %d", err, h.BytesRead())
		}
		// Now recorded: the next digest reads nothing.
		if _, err := h.Digest(p); err != nil || h.BytesRead() != int64(len(content)) {
			t.Fatalf("re-recorded: %v, read %d", err, h.BytesRead())
		}
	})
	t.Run("replaced, same size and mtime", func(t *testing.T) {
		h := NewHasher(s)
		fi, _ := os.Stat(p)
		content[1] ^= 0xff
		tmp := p + ".new"
		writeFile(t, tmp, content, 0o644)
		if err := os.Chtimes(tmp, fi.ModTime(), fi.ModTime()); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, p); err != nil {
			t.Fatal(err)
		}
		a, err := h.Digest(p)
		if err != nil || a.Digest != digestOf(content) || h.BytesRead() != int64(len(content)) {
			t.Fatalf("after replacement: %v, read %d", err, h.BytesRead())
		}
	})
	t.Run("fresh file not trusted", func(t *testing.T) {
		h := NewHasher(s)
		q := filepath.Join(dir, "fresh.txt")
		writeFile(t, q, []byte("just written"), 0o644)
		for i := 1; i <= 2; i++ {
			if _, err := h.Digest(q); err != nil {
				t.Fatal(err)
			}
			if h.BytesRead() != int64(i*12) {
				t.Fatalf("digest %d of a fresh file: read %d bytes in all", i, h.BytesRead())
			}
		}
		// Trust makes it believed.
		if err := h.Trust(q, digestOf([]byte("just written"))); err != nil {
			t.Fatal(err)
		}
		if a, err := h.Digest(q); err != nil || a.Digest != digestOf([]byte("just written")) || h.BytesRead() != 24 {
			t.Fatalf("trusted fresh file: %v, read %d", err, h.BytesRead())
		}
		// A change after Trust is still seen.
		writeFile(t, q, []byte("changed, longer"), 0o644)
		if a, err := h.Digest(q); err != nil || a.Digest != digestOf([]byte("changed, longer")) {
			t.Fatalf("changed trusted file: %v", err)
		}
	})
	t.Run("no store", func(t *testing.T) {
		h := NewHasher(nil)
		for i := 1; i <= 2; i++ {
			if _, err := h.Digest(p); err != nil || h.BytesRead() != int64(i*len(content)) {
				t.Fatalf("uncached digest %d: %v, read %d", i, err, h.BytesRead())
			}
		}
		if err := h.Trust(p, "x"); err != nil {
			t.Fatal(err)
		}
		var nilH *Hasher
		if err := nilH.Trust(p, "x"); err != nil {
			t.Fatal(err)
		}
	})
	if st, _ := s.Stats(); st.StatEntries == 0 {
		t.Error("no stat entries counted")
	}
}

func TestDigestErrors(t *testing.T) {
	h := NewHasher(nil)
	if _, err := h.Digest(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}
