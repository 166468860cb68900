package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
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

// Encode returns the canonical encoding of the manifest: Go's encoding/json
// of the struct (fields in declaration order, no insignificant white
// space), entries sorted by path, an empty tree as {"entries":[]}.
func (m *Manifest) Encode() []byte {
	c := *m
	if c.Entries == nil {
		c.Entries = []ManifestEntry{}
	}
	b, _ := json.Marshal(&c) // cannot fail: plain strings and numbers
	return b
}

// FileID is a file's identity as stat reports it: when any of it changes,
// the content may have changed.
type FileID struct {
	Size    int64
	MtimeNs int64
	CtimeNs int64
	Ino     uint64
	Dev     uint64
}

// IdentityOf returns fi's identity.
func IdentityOf(fi os.FileInfo) FileID {
	e := statOf(fi)
	return FileID{Size: e.Size, MtimeNs: e.MtimeNs, CtimeNs: e.CtimeNs, Ino: e.Ino, Dev: e.Dev}
}

// Settled reports whether the file last changed long enough before now
// for its identity to be trusted: a change within the same timestamp tick
// would not show (the racy-git problem).
func (id FileID) Settled(now time.Time) bool {
	last := max(id.MtimeNs, id.CtimeNs)
	return last+int64(racyWindow) < now.UnixNano()
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

// Digest digests the file or directory tree at path (symlinks followed,
// also inside trees; a symlink cycle is an error).
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
		return h.digestTree(abs, fi)
	}
	if !fi.Mode().IsRegular() {
		return Artifact{}, fmt.Errorf("%s is not a regular file or directory", path)
	}
	d, fi, err := h.digestFile(abs, fi)
	if err != nil {
		return Artifact{}, err
	}
	return Artifact{Digest: d, Size: fi.Size()}, nil
}

// digestFile returns the digest of the regular file at abs, whose stat is
// fi, and the file's stat as of its digest. A file that changes while it is
// read is read again (a few times, then it is an error).
func (h *Hasher) digestFile(abs string, fi os.FileInfo) (string, os.FileInfo, error) {
	cur := statOf(fi)
	if h.store != nil {
		var rec statEntry
		if ok, err := h.store.getJSON(pfxStat+abs, &rec); err == nil && ok && rec.sameFile(cur) && rec.MtimeNs+int64(racyWindow) < rec.Recorded {
			return rec.Digest, fi, nil
		}
	}
	for attempt := 0; ; attempt++ {
		start := time.Now()
		d, n, err := HashFile(abs)
		h.read.Add(n)
		if err != nil {
			return "", nil, err
		}
		after, err := os.Stat(abs)
		if err != nil {
			return "", nil, err
		}
		if now := statOf(after); now.sameFile(cur) {
			h.record(abs, cur, d, start)
			return d, after, nil
		} else if attempt == 2 {
			return "", nil, fmt.Errorf("%s keeps changing while it is being read", abs)
		} else {
			cur = now
		}
	}
}

// record stores a stat-cache entry for a file whose content was read
// starting at start. Files modified within the racy window before that are
// not recorded: a change within the same timestamp tick would go unseen.
func (h *Hasher) record(abs string, cur statEntry, digest string, start time.Time) {
	if h.store == nil {
		return
	}
	if cur.MtimeNs+int64(racyWindow) >= start.UnixNano() {
		return
	}
	cur.Digest = digest
	cur.Recorded = start.UnixNano()
	_ = h.store.putJSON(pfxStat+abs, cur)
}

// Trust records that the file at path (which mlbuild just wrote from
// content whose digest it knows) has that digest, so that the next Digest
// of it reads nothing even though it is fresh. A nil hasher does nothing.
func (h *Hasher) Trust(path, digest string) error {
	if h == nil || h.store == nil {
		return nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return err
	}
	e := statOf(fi)
	e.Digest = digest
	// Recorded past the racy window, so that the record is believed.
	e.Recorded = max(e.MtimeNs+int64(racyWindow)+1, time.Now().UnixNano())
	return h.store.putJSON(pfxStat+abs, e)
}

// fileID identifies a directory, to detect symlink cycles.
type fileID struct{ dev, ino uint64 }

func idOf(fi os.FileInfo) fileID {
	e := statOf(fi)
	return fileID{e.Dev, e.Ino}
}

func (h *Hasher) digestTree(root string, rootFi os.FileInfo) (Artifact, error) {
	m := Manifest{Entries: []ManifestEntry{}}
	var total int64
	var walk func(dir, rel string, ancestors []fileID) error
	walk = func(dir, rel string, ancestors []fileID) error {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		if len(ents) == 0 && rel != "" {
			m.Entries = append(m.Entries, ManifestEntry{Path: rel, Dir: true})
			return nil
		}
		for _, de := range ents {
			name := de.Name()
			p := filepath.Join(dir, name)
			if !utf8.ValidString(name) {
				return fmt.Errorf("%s: file name is not valid UTF-8", p)
			}
			r := name
			if rel != "" {
				r = rel + "/" + name
			}
			fi, err := os.Stat(p)
			if err != nil {
				if de.Type()&fs.ModeSymlink != 0 {
					return fmt.Errorf("%s: broken symbolic link: %w", p, err)
				}
				return err
			}
			switch {
			case fi.IsDir():
				id := idOf(fi)
				if slices.Contains(ancestors, id) {
					return fmt.Errorf("%s: symbolic link cycle", p)
				}
				if err := walk(p, r, append(ancestors, id)); err != nil {
					return err
				}
			case fi.Mode().IsRegular():
				dg, fi, err := h.digestFile(p, fi)
				if err != nil {
					return err
				}
				total += fi.Size()
				m.Entries = append(m.Entries, ManifestEntry{Path: r, Digest: dg, Size: fi.Size(), Exec: fi.Mode()&0o111 != 0})
			default:
				return fmt.Errorf("%s: unsupported file type %s", p, fi.Mode().Type())
			}
		}
		return nil
	}
	if err := walk(root, "", []fileID{idOf(rootFi)}); err != nil {
		return Artifact{}, err
	}
	sort.Slice(m.Entries, func(i, j int) bool { return m.Entries[i].Path < m.Entries[j].Path })
	sum := sha256.Sum256(m.Encode())
	return Artifact{Digest: hex.EncodeToString(sum[:]), Size: total, Dir: true, Manifest: &m}, nil
}

// HashFile returns the SHA-256 of a file's content and the bytes read.
func HashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer func() { _ = f.Close() }() // read-only
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
// that lives at path in the CAS. The manifest goes in last, so a tree whose
// manifest is stored has all its files stored too.
func (s *Store) PutArtifact(path string, a Artifact) error {
	if !a.Dir {
		return s.PutFile(a.Digest, path)
	}
	if a.Manifest == nil {
		return fmt.Errorf("store %s: tree artifact without a manifest", path)
	}
	for _, e := range a.Manifest.Entries {
		if e.Dir {
			continue
		}
		if err := s.PutFile(e.Digest, filepath.Join(path, filepath.FromSlash(e.Path))); err != nil {
			return fmt.Errorf("store %s: %w", e.Path, err)
		}
	}
	d, err := s.PutBytes(a.Manifest.Encode())
	if err != nil {
		return err
	}
	if d != a.Digest {
		return fmt.Errorf("store %s: manifest hashes to %s, artifact says %s", path, short(d), short(a.Digest))
	}
	return nil
}

// HasArtifact reports whether the artifact (and, for a tree, every file of
// it) is whole in the CAS.
func (s *Store) HasArtifact(digest string, dir bool) (bool, error) {
	ok, err := s.HasBlob(digest)
	if err != nil || !ok || !dir {
		return ok, err
	}
	m, err := s.Manifest(digest)
	if errors.Is(err, ErrBlobMissing) {
		return false, nil
	}
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

// checkManifest rejects a manifest that could write outside its tree or is
// not in canonical form (unsorted or duplicate paths, bad digests).
func checkManifest(digest string, m *Manifest) error {
	for i, e := range m.Entries {
		if !fs.ValidPath(e.Path) || e.Path == "." || strings.Contains(e.Path, "\\") {
			return fmt.Errorf("tree manifest %s has an unsafe path %q", short(digest), e.Path)
		}
		if i > 0 && m.Entries[i-1].Path >= e.Path {
			return fmt.Errorf("tree manifest %s is not sorted or repeats %q", short(digest), e.Path)
		}
		if !e.Dir && !validDigest(e.Digest) {
			return fmt.Errorf("tree manifest %s: %q has a bad digest %q", short(digest), e.Path, e.Digest)
		}
	}
	return nil
}

// MaterializeArtifact writes a stored artifact at path, files read-only,
// and records them in the hasher's stat cache (h may be nil). A file
// replaces whatever file is at path; a tree is assembled in a temporary
// directory beside path and renamed into place, so path must not exist or
// be an empty directory. Either way a crash never leaves a partial
// artifact at path.
func (s *Store) MaterializeArtifact(digest string, dir bool, path string, h *Hasher) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
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
	if err := checkManifest(digest, m); err != nil {
		return err
	}
	if fi, err := os.Lstat(path); err == nil {
		empty := false
		if fi.IsDir() {
			ents, err := os.ReadDir(path)
			empty = err == nil && len(ents) == 0
		}
		if !empty {
			return fmt.Errorf("materialize %s: it already exists (remove it first)", path)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(path), ".mlbuild-tmp-*")
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	for _, e := range m.Entries {
		p := filepath.Join(tmp, filepath.FromSlash(e.Path))
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
	}
	// rename(2) itself, not os.Rename: it atomically replaces an empty
	// directory, which os.Rename refuses to.
	if err := unix.Rename(tmp, path); err != nil {
		return fmt.Errorf("materialize %s: %w", path, err)
	}
	done = true
	for _, e := range m.Entries {
		if e.Dir {
			continue
		}
		if err := h.Trust(filepath.Join(path, filepath.FromSlash(e.Path)), e.Digest); err != nil {
			return err
		}
	}
	return nil
}
