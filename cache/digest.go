package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"syscall"
	"time"
)

// Artifact is a digested file or directory tree.
type Artifact struct {
	Digest string
	Size   int64 // bytes of content (sum of files for a tree)
	Dir    bool
	// Manifest is the canonical manifest of a tree (nil for a file); its
	// SHA-256 is Digest.
	Manifest *Manifest
}

// Manifest lists a directory tree's entries, sorted by path. Its canonical
// JSON encoding is what a tree's digest is computed from.
type Manifest struct {
	Entries []ManifestEntry `json:"entries"`
}

// ManifestEntry is one file (or empty directory) of a tree.
type ManifestEntry struct {
	Path   string `json:"path"` // slash-separated, relative to the tree root
	Digest string `json:"digest,omitempty"`
	Size   int64  `json:"size"`
	Exec   bool   `json:"exec,omitempty"`
	Dir    bool   `json:"dir,omitempty"` // an empty directory
}

// Encode returns the canonical encoding of the manifest.
func (m *Manifest) Encode() []byte {
	b, _ := json.Marshal(m) // cannot fail: plain strings and numbers
	return b
}

// statEntry is a stat-cache record: a file's identity when it was hashed.
type statEntry struct {
	Size     int64  `json:"size"`
	MtimeNs  int64  `json:"mtime"`
	CtimeNs  int64  `json:"ctime"`
	Ino      uint64 `json:"ino"`
	Dev      uint64 `json:"dev"`
	Digest   string `json:"digest"`
	Recorded int64  `json:"recorded"`
}

func statOf(fi os.FileInfo) statEntry {
	e := statEntry{Size: fi.Size(), MtimeNs: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		e.Ino = st.Ino
		e.Dev = uint64(st.Dev)
		e.CtimeNs = st.Ctim.Sec*1e9 + st.Ctim.Nsec
	}
	return e
}

func (e statEntry) sameFile(o statEntry) bool {
	return e.Size == o.Size && e.MtimeNs == o.MtimeNs && e.CtimeNs == o.CtimeNs && e.Ino == o.Ino && e.Dev == o.Dev
}

// racyWindow: a file modified this close to the moment it was hashed may
// change again within the same timestamp tick, so its stat record is not
// trusted (the racy-git problem).
const racyWindow = 2 * time.Second

// Hasher digests files and trees, consulting the stat cache so that an
// unchanged file is never read twice. Safe for concurrent use.
type Hasher struct {
	store *Store
	read  atomic.Int64
}

// NewHasher returns a hasher backed by the store's stat cache (store may be
// nil: then every file is read).
func NewHasher(store *Store) *Hasher { return &Hasher{store: store} }

// BytesRead is how many bytes of file content the hasher has read.
func (h *Hasher) BytesRead() int64 { return h.read.Load() }

// Digest digests the file or directory tree at path (symlinks followed).
func (h *Hasher) Digest(path string) (Artifact, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return Artifact{}, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return Artifact{}, err
	}
	if fi.IsDir() {
		return h.digestTree(abs)
	}
	if !fi.Mode().IsRegular() {
		return Artifact{}, fmt.Errorf("%s is not a regular file or directory", path)
	}
	d, err := h.digestFile(abs, fi)
	return Artifact{Digest: d, Size: fi.Size()}, err
}

func (h *Hasher) digestFile(abs string, fi os.FileInfo) (string, error) {
	cur := statOf(fi)
	if h.store != nil {
		var rec statEntry
		if ok, err := h.store.getJSON(pfxStat+abs, &rec); err == nil && ok && rec.sameFile(cur) && rec.MtimeNs+int64(racyWindow) < rec.Recorded {
			return rec.Digest, nil
		}
	}
	d, n, err := HashFile(abs)
	h.read.Add(n)
	if err != nil {
		return "", err
	}
	h.record(abs, cur, d, false)
	return d, nil
}

// record stores a stat-cache entry. Entries for files modified within the
// racy window are skipped unless trusted (files mlbuild itself wrote from
// known content).
func (h *Hasher) record(abs string, cur statEntry, digest string, trusted bool) {
	if h.store == nil {
		return
	}
	now := time.Now().UnixNano()
	if trusted {
		// Mark it as recorded after the racy window so it is believed.
		now = cur.MtimeNs + int64(racyWindow) + 1
		if n := time.Now().UnixNano(); n > now {
			now = n
		}
	} else if cur.MtimeNs+int64(racyWindow) >= now {
		return
	}
	cur.Digest = digest
	cur.Recorded = now
	_ = h.store.putJSON(pfxStat+abs, cur)
}

// Trust records that the file at path (which mlbuild just wrote from
// content whose digest it knows) has that digest.
func (h *Hasher) Trust(path, digest string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return err
	}
	h.record(abs, statOf(fi), digest, true)
	return nil
}

func (h *Hasher) digestTree(root string) (Artifact, error) {
	var m Manifest
	var total int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			if empty, _ := isEmptyDir(p); empty {
				m.Entries = append(m.Entries, ManifestEntry{Path: rel, Dir: true})
			}
			return nil
		case fi.Mode().IsRegular():
			dg, err := h.digestFile(p, fi)
			if err != nil {
				return err
			}
			total += fi.Size()
			m.Entries = append(m.Entries, ManifestEntry{Path: rel, Digest: dg, Size: fi.Size(), Exec: fi.Mode()&0o111 != 0})
			return nil
		default:
			return fmt.Errorf("%s: unsupported file type %s", p, fi.Mode().Type())
		}
	})
	if err != nil {
		return Artifact{}, err
	}
	sort.Slice(m.Entries, func(i, j int) bool { return m.Entries[i].Path < m.Entries[j].Path })
	sum := sha256.Sum256(m.Encode())
	return Artifact{Digest: hex.EncodeToString(sum[:]), Size: total, Dir: true, Manifest: &m}, nil
}

func isEmptyDir(p string) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	return err == io.EOF, nil
}

// HashFile returns the SHA-256 of a file's content and the bytes read.
func HashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	buf := make([]byte, 1<<20)
	n, err := io.CopyBuffer(h, onlyReader{f}, buf)
	if err != nil {
		return "", n, fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// onlyReader hides WriterTo/ReaderFrom so CopyBuffer uses our buffer size.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// PutArtifact stores an artifact (a file, or a tree's files and manifest)
// that lives at path in the CAS.
func (s *Store) PutArtifact(path string, a Artifact) error {
	if !a.Dir {
		return s.PutFile(a.Digest, path)
	}
	for _, e := range a.Manifest.Entries {
		if e.Dir {
			continue
		}
		if err := s.PutFile(e.Digest, filepath.Join(path, filepath.FromSlash(e.Path))); err != nil {
			return fmt.Errorf("store %s: %w", e.Path, err)
		}
	}
	_, err := s.PutBytes(a.Manifest.Encode())
	return err
}

// HasArtifact reports whether the artifact (and, for a tree, every file of
// it) is whole in the CAS.
func (s *Store) HasArtifact(digest string, dir bool) (bool, error) {
	ok, err := s.HasBlob(digest)
	if err != nil || !ok || !dir {
		return ok, err
	}
	m, err := s.Manifest(digest)
	if err != nil {
		return false, err
	}
	for _, e := range m.Entries {
		if e.Dir {
			continue
		}
		if ok, err := s.HasBlob(e.Digest); err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// Manifest loads a stored tree manifest.
func (s *Store) Manifest(digest string) (*Manifest, error) {
	b, err := s.ReadBlob(digest)
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("tree manifest %s: %w", short(digest), err)
	}
	return &m, nil
}

// MaterializeArtifact writes a stored artifact at path (which must not
// exist), files read-only, and records them in the hasher's stat cache.
func (s *Store) MaterializeArtifact(digest string, dir bool, path string, h *Hasher) error {
	if !dir {
		if err := s.MaterializeBlob(digest, path, 0o444); err != nil {
			return err
		}
		return h.Trust(path, digest)
	}
	m, err := s.Manifest(digest)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		return err
	}
	for _, e := range m.Entries {
		if !fs.ValidPath(e.Path) || e.Path == "." {
			return fmt.Errorf("tree manifest %s has an unsafe path %q", short(digest), e.Path)
		}
		p := filepath.Join(path, filepath.FromSlash(e.Path))
		if e.Dir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(0o444)
		if e.Exec {
			mode = 0o555
		}
		if err := s.MaterializeBlob(e.Digest, p, mode); err != nil {
			return fmt.Errorf("%s: %w", e.Path, err)
		}
		if err := h.Trust(p, e.Digest); err != nil {
			return err
		}
	}
	return nil
}
