package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzMaterializeTree stores arbitrary bytes as a tree manifest (with
// "@A@" and "@B@" replaced by the digests of two stored blobs) and
// materializes it, as a restore from the cache does. It must not panic.
// When it fails, nothing is left at the destination nor beside it. When it
// succeeds, the manifest decodes and passes checkManifest, and the tree
// written holds exactly the manifest's entries (files with their blobs'
// contents and modes, empty directories), all inside the destination.
func FuzzMaterializeTree(f *testing.F) {
	s, err := Open(context.Background(), f.TempDir(), Options{NoWait: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Close() }) // test store: nothing to keep
	blobs := map[string][]byte{"@A@": []byte("alpha\n"), "@B@": {}}
	digests := map[string]string{}
	for ph, b := range blobs {
		d, err := s.PutBytes(b)
		if err != nil {
			f.Fatal(err)
		}
		digests[ph] = d
	}
	// A real manifest: the tree a hasher digests.
	src := f.TempDir()
	for name, content := range map[string]string{"a.txt": "alpha\n", "sub/b": "", "sub/deep/c.txt": "alpha\n"} {
		p := filepath.Join(src, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(src, "empty"), 0o755); err != nil {
		f.Fatal(err)
	}
	a, err := NewHasher(nil).Digest(src)
	if err != nil {
		f.Fatal(err)
	}
	real := a.Manifest.Encode()
	for ph, d := range digests {
		real = bytes.ReplaceAll(real, []byte(d), []byte(ph))
	}
	f.Add(real)
	for _, m := range []string{
		`{"entries":[]}`,
		`{"entries":[{"path":"x","digest":"@A@","size":6,"exec":true}]}`,
		`{"entries":[{"path":"a","digest":"@A@","size":6},{"path":"a/b","digest":"@B@","size":0}]}`,
		`{"entries":[{"path":"d","dir":true},{"path":"d/e","dir":true},{"path":"d/f","digest":"@B@"}]}`,
		`{"entries":[{"path":"../escape","digest":"@A@"}]}`,
		`{"entries":[{"path":"a/../../escape","digest":"@A@"}]}`,
		`{"entries":[{"path":"b","digest":"@A@"},{"path":"a","digest":"@B@"}]}`,
		`{"entries":[{"path":"missing","digest":"` + strings.Repeat("0", 64) + `"}]}`,
		`{"entries":[{"path":".mlbuild-tmp-1","digest":"@A@"}]}`,
		`not json`,
	} {
		f.Add([]byte(m))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		for ph, d := range digests {
			raw = bytes.ReplaceAll(raw, []byte(ph), []byte(d))
		}
		digest, err := s.PutBytes(raw)
		if err != nil {
			t.Fatal(err)
		}
		parent := t.TempDir()
		dst := filepath.Join(parent, "out")
		if err := s.MaterializeArtifact(digest, true, dst, nil); err != nil {
			if ents, _ := os.ReadDir(parent); len(ents) != 0 {
				t.Fatalf("a failed materialization (%v) left %s", err, ents[0].Name())
			}
			return
		}
		var m Manifest
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("materialized a manifest that does not decode: %v", err)
		}
		if err := checkManifest(digest, &m); err != nil {
			t.Fatalf("materialized a manifest checkManifest rejects: %v", err)
		}
		if ents, _ := os.ReadDir(parent); len(ents) != 1 || ents[0].Name() != "out" {
			t.Fatalf("materializing left %v beside the tree", ents)
		}
		want := map[string]ManifestEntry{}
		for _, e := range m.Entries {
			want[e.Path] = e
		}
		err = filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
			if err != nil || p == dst {
				return err
			}
			rel, _ := filepath.Rel(dst, p)
			rel = filepath.ToSlash(rel)
			e, ok := want[rel]
			if !ok {
				if d.IsDir() {
					return nil // a parent of a listed path
				}
				return errors.New("unlisted file " + rel)
			}
			delete(want, rel)
			if e.Dir != d.IsDir() {
				return errors.New("wrong kind of entry at " + rel)
			}
			if e.Dir {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			if wantMode := fs.FileMode(0o444) | map[bool]fs.FileMode{true: 0o111}[e.Exec]; fi.Mode().Perm() != wantMode || !fi.Mode().IsRegular() {
				return errors.New("wrong mode " + fi.Mode().String() + " at " + rel)
			}
			got, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			stored, err := s.ReadBlob(e.Digest)
			if err != nil || !bytes.Equal(got, stored) {
				return errors.New("wrong content at " + rel)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for p := range want {
			t.Fatalf("listed entry %q was not written", p)
		}
		_ = os.RemoveAll(dst) // read-only files in writable folders: removable; t.TempDir checks the rest
	})
}
