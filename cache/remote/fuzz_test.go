package remote

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mlbuild/mlbuild/cache"
)

func fuzzHex(s string) string {
	d := sha256.Sum256([]byte(s))
	return hex.EncodeToString(d[:])
}

// fuzzAction is an action result as the engine stores and pushes it, with
// every field set.
func fuzzAction() *cache.ActionResult {
	return &cache.ActionResult{
		Key:  fuzzHex("key"),
		Step: "split.persona",
		Components: cache.KeyComponents{
			Kind:    "split",
			Version: "3",
			Config:  map[string]json.RawMessage{"seed": json.RawMessage(`7`), "ratio": json.RawMessage(`0.9`), "names": json.RawMessage(`["a","b"]`)},
			Inputs: map[string][]cache.InputRef{
				"sources": {{Name: "onion.jsonl", Digest: fuzzHex("onion"), Size: 1234}, {Name: "books", Digest: fuzzHex("books"), Size: 99, Dir: true}},
			},
		},
		Outputs: map[string]cache.OutputRef{
			"train":  {Path: "train.jsonl", Digest: fuzzHex("train"), Size: 1000},
			"report": {Path: "report/index.html", Digest: fuzzHex("report"), Size: 10},
			"model":  {Path: "model", Digest: fuzzHex("model"), Size: 4096, Dir: true},
		},
		Provenance: cache.Provenance{
			MlbuildVersion: "dev", GoVersion: "go1.26", Device: "cpu", Host: "ci",
			Started:    time.Date(2026, 12, 6, 21, 0, 0, 123, time.FixedZone("", 3600)),
			Seconds:    1.5,
			InputPaths: map[string][]string{"sources": {"data/onion.jsonl", "data/books"}},
		},
		LastUsed: time.Date(2026, 12, 6, 22, 0, 0, 0, time.UTC),
	}
}

// FuzzParseAction feeds arbitrary bytes to ParseAction as an action result
// downloaded from a remote. A rejection must be an error wrapping
// ErrCorrupt; an accepted result must name the key it was fetched under,
// have only named outputs with safe relative paths (joined to a folder
// they stay inside it), 64-hex digests and non-negative sizes, and must
// survive a round trip: its JSON encoding parses again to the same result.
// Under any other key the same bytes are rejected.
func FuzzParseAction(f *testing.F) {
	good, err := json.Marshal(fuzzAction())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	k, d := fuzzHex("key"), fuzzHex("d")
	for _, s := range []string{
		`{"key":"` + k + `","step":"a.b","outputs":{"o":{"path":"sub/o.bin","digest":"` + d + `","size":3},"t":{"path":"t","digest":"` + d + `","size":9,"dir":true}}}`,
		`{"key":"` + k + `","outputs":{"o":{"path":"../etc/passwd","digest":"` + d + `"}}}`,
		`{"key":"` + k + `","outputs":{"o":{"path":"a\\b","digest":"` + d + `"}}}`,
		`{"key":"` + k + `","outputs":{"o":{"path":"o","digest":"` + strings.ToUpper(d) + `","size":-1}}}`,
		`{"key":"` + k + `","outputs":{"":{"path":"o","digest":"` + d + `"}}}`,
		`{"key":"` + k + `","outputs":null,"last_used":"2026-01-01T00:00:00Z"}`,
		`{"key":"` + k + `","components":{"config":{"x":{"y":[1,2e400]}}}}`,
		`{"key":"` + k + `","provenance":{"started":"not a time"}}`,
		`{"key":"` + k + `","step":"\ud800\xff"}`,
		`[]`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ar, err := ParseAction(k, data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("ParseAction error does not wrap ErrCorrupt: %v", err)
			}
			if ar != nil {
				t.Fatalf("ParseAction returned %+v with error %v", ar, err)
			}
			return
		}
		if ar.Key != k {
			t.Fatalf("accepted an action naming key %q", ar.Key)
		}
		root := filepath.Join(os.TempDir(), "root")
		for name, o := range ar.Outputs {
			if name == "" {
				t.Fatal("accepted an output without a name")
			}
			if !validHex(o.Digest) || o.Size < 0 {
				t.Fatalf("accepted output %q: %+v", name, o)
			}
			rel, err := filepath.Rel(root, filepath.Join(root, filepath.FromSlash(o.Path)))
			if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(o.Path) {
				t.Fatalf("accepted output %q with path %q that leaves its folder (%q)", name, o.Path, rel)
			}
		}
		enc, err := json.Marshal(ar)
		if err != nil {
			t.Fatalf("an accepted action does not encode: %v", err)
		}
		again, err := ParseAction(k, enc)
		if err != nil {
			t.Fatalf("the encoding of an accepted action is rejected: %v\n%s", err, enc)
		}
		enc2, err := json.Marshal(again)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("round trip changed the action:\n%s\n%s (%v)", enc, enc2, err)
		}
		if _, err := ParseAction(fuzzHex("other"), data); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("accepted under another key: %v", err)
		}
	})
}

// FuzzTreeManifest decodes arbitrary bytes as a tree manifest the way Pull
// does and checks them with checkManifest. An accepted manifest must list
// strictly sorted, safe relative paths (each joined to a folder stays
// inside it, with no "." or ".." element), files with 64-hex digests, no
// negative sizes; its canonical encoding must decode to a manifest that is
// accepted again and encodes to the same bytes.
func FuzzTreeManifest(f *testing.F) {
	dir := f.TempDir()
	for name, content := range map[string]string{"a.txt": "a\n", "sub/b.bin": "\x00\x01", "sub/deep/c": "", "z": "zz"} {
		p := filepath.Join(dir, "tree", filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "tree", "empty"), 0o755); err != nil {
		f.Fatal(err)
	}
	a, err := cache.NewHasher(nil).Digest(filepath.Join(dir, "tree"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(a.Manifest.Encode())
	d := fuzzHex("d")
	for _, s := range []string{
		`{"entries":[]}`,
		`{"entries":[{"path":"a","digest":"` + d + `","size":1},{"path":"b/c","digest":"` + d + `","size":2,"exec":true},{"path":"e","size":0,"dir":true}]}`,
		`{"entries":[{"path":"b","digest":"` + d + `"},{"path":"a","digest":"` + d + `"}]}`,
		`{"entries":[{"path":"a","digest":"` + d + `"},{"path":"a","digest":"` + d + `"}]}`,
		`{"entries":[{"path":"../x","digest":"` + d + `"}]}`,
		`{"entries":[{"path":"/abs","digest":"` + d + `"}]}`,
		`{"entries":[{"path":"a/./b","digest":"` + d + `"}]}`,
		`{"entries":[{"path":"a\\..\\..\\b","digest":"` + d + `"}]}`,
		`{"entries":[{"path":"a","digest":"` + d + `","size":-5}]}`,
		`{"entries":[{"path":"a","digest":"xyz"}]}`,
		`{"entries":null}`,
		`{}`,
		`null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var m cache.Manifest
		if err := json.Unmarshal(raw, &m); err != nil {
			return
		}
		digest := fuzzHex(string(raw))
		if err := checkManifest(digest, &m); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("checkManifest error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		root := filepath.Join(os.TempDir(), "root")
		for i, e := range m.Entries {
			if i > 0 && m.Entries[i-1].Path >= e.Path {
				t.Fatalf("accepted unsorted paths %q, %q", m.Entries[i-1].Path, e.Path)
			}
			if e.Size < 0 || (!e.Dir && !validHex(e.Digest)) {
				t.Fatalf("accepted entry %+v", e)
			}
			for _, el := range strings.Split(e.Path, "/") {
				if el == "" || el == "." || el == ".." {
					t.Fatalf("accepted path %q with element %q", e.Path, el)
				}
			}
			j := filepath.Join(root, filepath.FromSlash(e.Path))
			if !strings.HasPrefix(j, root+string(filepath.Separator)) {
				t.Fatalf("accepted path %q joins to %q, outside %q", e.Path, j, root)
			}
		}
		enc := m.Encode()
		var m2 cache.Manifest
		if err := json.Unmarshal(enc, &m2); err != nil {
			t.Fatalf("canonical encoding does not decode: %v\n%s", err, enc)
		}
		if err := checkManifest(digest, &m2); err != nil {
			t.Fatalf("canonical encoding rejected: %v", err)
		}
		if enc2 := m2.Encode(); !bytes.Equal(enc, enc2) {
			t.Fatalf("canonical encoding not stable:\n%s\n%s", enc, enc2)
		}
	})
}
