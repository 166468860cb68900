package engine

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// The parse cache keeps the AST of each pipeline file that parsed without
// a diagnostic, so that loading a file parsed before (plan, explain, show
// or run --target of an unchanged pipeline; the other files of a folder
// pipeline after one changed) decodes it instead of lexing and parsing it
// again. An entry is a file CACHEDIR/parse/KEY, KEY the hex SHA-256 of the
// codec's version, the versions of hcl, cty and Go, the file's name (as
// its ranges give it) and its content: an edited file has another key,
// and its old entry is left for the size cap and gc to remove. The folder
// is read and written without the cache's lock (an entry is written to a
// temporary file and renamed into place, so a reader sees a whole entry
// or none) and without opening Badger, which would cost more than the
// parse of most files. An entry holds, besides the AST (parsecodec.go),
// its key, its length and a CRC-32C of it all: one that does not check
// (a torn write after a power loss, a bad disk block) is ignored, the
// file parsed and the entry written again.

// ParseCacheDirName is the parse cache's folder under the cache folder.
const ParseCacheDirName = "parse"

// ParseCacheDir is the parse cache folder of the cache folder cacheDir
// (see CacheDir), for LoadOptions.ParseCache.
func ParseCacheDir(cacheDir string) string { return filepath.Join(cacheDir, ParseCacheDirName) }

// parseCacheMin is the size from which a file's parse is cached. A hit
// is about 10 times faster than a parse at every size, but below this a
// parse takes under a millisecond (twainbot.hcl, 10 KB: 0.7 ms; a hit 0.08
// ms), less than a process's noise, so small pipelines keep the plain
// parse and add nothing to the cache (a variable for tests).
var parseCacheMin = 16 << 10

// parseCacheMaxBytes caps the folder: after writing an entry, the loader
// removes the least recently used ones beyond it (a variable for tests).
var parseCacheMaxBytes int64 = 128 << 20

// ParseCacheMaxAge is how long cache gc keeps a parse cache entry that no
// load used, without --older-than.
const ParseCacheMaxAge = 7 * 24 * time.Hour

// parseCacheTouch is how stale an entry's modification time, its last
// use for the size cap and gc, may get before a load that uses it sets it
// to now: a load of an unchanged pipeline writes nothing more often.
const parseCacheTouch = time.Hour

// parseCacheHits counts the files loads decoded from the parse cache (for
// tests).
var parseCacheHits atomic.Int64

// parseCacheMagic starts every entry; its number is the codec's version
// (bump it with any change of the encoding).
const parseCacheMagic = "mlbuild parse cache 1\n"

// maxParseEntry bounds the size of an entry read (the 50,000-step
// generated pipeline's is 8.5 MB).
const maxParseEntry = 1 << 30

// parseCacheHeader is the magic, the key and the payload's length.
const parseCacheHeader = len(parseCacheMagic) + sha256.Size + 8

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// parseCacheSalt is what besides a file enters its key: the versions of
// Go and of every module mlbuild is built with, since the AST depends on
// hcl and cty, and on what they use (go-textseg's grapheme clusters count
// columns, x/text normalizes strings, math/big holds numbers). A build
// with a module of unknown version (replaced by a folder, say) adds its
// executable's path and modification time.
var parseCacheSalt = sync.OnceValue(func() string {
	var b strings.Builder
	b.WriteString(runtime.Version())
	known := false
	if bi, ok := debug.ReadBuildInfo(); ok {
		known = true
		for _, m := range bi.Deps {
			path := m.Path
			if m.Replace != nil {
				m = m.Replace
			}
			fmt.Fprintf(&b, "\n%s %s %s", path, m.Version, m.Sum)
			if m.Version == "" || m.Version == "(devel)" {
				known = false
			}
		}
	}
	if !known {
		exe, _ := os.Executable()
		if st, err := os.Stat(exe); err == nil {
			fmt.Fprintf(&b, "\n%s %d", exe, st.ModTime().UnixNano())
		}
	}
	return b.String()
})

// parseKey is the key of a file's entry.
func parseKey(name string, src []byte) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	for _, s := range []string{parseCacheMagic, parseCacheSalt(), name} {
		binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	binary.LittleEndian.PutUint64(n[:], uint64(len(src)))
	h.Write(n[:])
	h.Write(src)
	var key [sha256.Size]byte
	h.Sum(key[:0])
	return key
}

// encodeEntry makes an entry of an encoded AST.
func encodeEntry(key [sha256.Size]byte, payload []byte) []byte {
	b := make([]byte, 0, parseCacheHeader+len(payload)+4)
	b = append(b, parseCacheMagic...)
	b = append(b, key[:]...)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(payload)))
	b = append(b, payload...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// errBadEntry says that a parse cache entry is not a whole entry of the
// key looked up.
var errBadEntry = errors.New("not a parse cache entry of this file")

// decodeEntry decodes the AST of an entry of key; the AST's strings share
// b, which must not change afterwards. It never panics, whatever b holds.
func decodeEntry(b []byte, key [sha256.Size]byte) (*hclsyntax.Body, error) {
	if len(b) < parseCacheHeader+4 || string(b[:len(parseCacheMagic)]) != parseCacheMagic ||
		string(b[len(parseCacheMagic):len(parseCacheMagic)+sha256.Size]) != string(key[:]) {
		return nil, errBadEntry
	}
	n := binary.LittleEndian.Uint64(b[parseCacheHeader-8:])
	if n != uint64(len(b)-parseCacheHeader-4) {
		return nil, errBadEntry
	}
	end := len(b) - 4
	if crc32.Checksum(b[:end], castagnoli) != binary.LittleEndian.Uint32(b[end:]) {
		return nil, errBadEntry
	}
	payload := b[parseCacheHeader:end]
	if len(payload) == 0 {
		return nil, errBadEntry
	}
	return decodeBody(unsafe.String(unsafe.SliceData(payload), len(payload)))
}

// syntaxFile makes the file hclsyntax.ParseConfig returns for a body
// parsed from src: its Nav (hcled's context strings) must point to the
// body, which only hclsyntax can make, so the body is copied into that of
// an empty source's file.
func syntaxFile(body *hclsyntax.Body, src []byte, name string) *hcl.File {
	f, _ := hclsyntax.ParseConfig(nil, name, hcl.InitialPos)
	*f.Body.(*hclsyntax.Body) = *body
	f.Bytes = src
	return f
}

// parseCached is parseFile through the parse cache in dir ("" for none).
// The file, and its diagnostics, are those of parseFile: an entry exists
// only for a file that parsed without any. When the file was parsed and
// should be cached, the entry to write is returned: the loader writes it
// when it has evaluated the pipeline (writeParseEntries), so that a miss
// costs the load only the hashing and one failed open.
func parseCached(p *hclparse.Parser, dir string, src []byte, name string) (*hcl.File, hcl.Diagnostics, *pendingEntry) {
	if dir == "" || len(src) < parseCacheMin {
		f, diags := parseFile(p, src, name)
		return f, diags, nil
	}
	key := parseKey(name, src)
	path := filepath.Join(dir, hex.EncodeToString(key[:]))
	if body := readParseEntry(path, key); body != nil {
		f := syntaxFile(body, src, name)
		p.AddFile(name, f)
		parseCacheHits.Add(1)
		return f, nil, nil
	}
	f, diags := parseFile(p, src, name)
	if body, ok := f.Body.(*hclsyntax.Body); ok && len(diags) == 0 {
		return f, diags, &pendingEntry{dir: dir, path: path, key: key, body: body, src: src}
	}
	return f, diags, nil
}

// pendingEntry is a parse cache entry to write.
type pendingEntry struct {
	dir, path string
	key       [sha256.Size]byte
	body      *hclsyntax.Body
	src       []byte
}

// parseCacheWrites are the writes of entries under way.
var parseCacheWrites sync.WaitGroup

// writeParseEntries writes entries in the background (FlushParseCache
// waits for them). Encoding reads the AST while the caller uses it, which
// only reads it too.
func writeParseEntries(es []*pendingEntry) {
	if len(es) == 0 {
		return
	}
	parseCacheWrites.Go(func() {
		for _, e := range es {
			_ = writeParseEntry(e.dir, e.path, e.key, e.body, e.src) // best effort: the next load parses again
		}
	})
}

// FlushParseCache waits until the parse cache entries that loads started
// writing in the background are written. A program that loads pipelines
// with LoadOptions.ParseCache calls it before it exits (an entry not
// written only costs the next load a parse; an interrupted write leaves a
// temporary file, which cache gc removes).
func FlushParseCache() { parseCacheWrites.Wait() }

// readParseEntry decodes the entry at path of key; nil when there is
// none or it does not check. It marks the entry used.
func readParseEntry(path string, key [sha256.Size]byte) *hclsyntax.Body {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer func() { _ = f.Close() }() // read only
	st, err := f.Stat()
	if err != nil || st.Size() < int64(parseCacheHeader) || st.Size() > maxParseEntry {
		return nil
	}
	b := make([]byte, st.Size())
	if _, err := io.ReadFull(f, b); err != nil {
		return nil
	}
	body, err := decodeEntry(b, key)
	if err != nil {
		return nil
	}
	if now := time.Now(); now.Sub(st.ModTime()) > parseCacheTouch {
		_ = os.Chtimes(path, now, now) // best effort: gc may then remove it a little early
	}
	return body
}

// writeParseEntry writes the entry of a body parsed from src to path in
// dir (a temporary file renamed into place), then keeps dir under
// parseCacheMaxBytes. A body the codec cannot encode is not written.
func writeParseEntry(dir, path string, key [sha256.Size]byte, body *hclsyntax.Body, src []byte) error {
	payload, err := encodeBody(body, src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create the parse cache folder: %w", err)
	}
	f, err := os.CreateTemp(dir, filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write a parse cache entry: %w", err)
	}
	_, err = f.Write(encodeEntry(key, payload))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name()) // best effort: the error is reported
		return fmt.Errorf("write a parse cache entry: %w", err)
	}
	return capParseCache(dir, path, parseCacheMaxBytes)
}

// parseEntry is one file of the parse cache folder.
type parseEntry struct {
	path string
	size int64
	used time.Time
	tmp  bool
}

// parseEntries lists the parse cache folder: entries, and temporary files
// (tmp) of writes under way or interrupted.
func parseEntries(dir string) ([]parseEntry, error) {
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list the parse cache: %w", err)
	}
	out := make([]parseEntry, 0, len(des))
	for _, de := range des {
		name := de.Name()
		tmp := strings.HasSuffix(name, ".tmp")
		if !tmp && (len(name) != 2*sha256.Size || strings.Trim(name, "0123456789abcdef") != "") || !de.Type().IsRegular() {
			continue // not the parse cache's
		}
		info, err := de.Info()
		if err != nil {
			continue // removed meanwhile
		}
		out = append(out, parseEntry{path: filepath.Join(dir, name), size: info.Size(), used: info.ModTime(), tmp: tmp})
	}
	return out, nil
}

// capParseCache removes the least recently used entries of dir, but keep,
// until the rest take at most max bytes.
func capParseCache(dir, keep string, max int64) error {
	es, err := parseEntries(dir)
	if err != nil {
		return err
	}
	var total int64
	for _, e := range es {
		total += e.size
	}
	if total <= max {
		return nil
	}
	slices.SortFunc(es, func(a, b parseEntry) int { return a.used.Compare(b.used) })
	for _, e := range es {
		if total <= max {
			break
		}
		if e.path == keep || e.tmp {
			continue
		}
		if err := os.Remove(e.path); err == nil || errors.Is(err, fs.ErrNotExist) {
			total -= e.size
		}
	}
	return nil
}

// ParseCacheGCResult counts what CollectParseCache removed (or, with
// dryRun, would remove).
type ParseCacheGCResult struct {
	Removed int   `json:"parse_entries_removed"`
	Bytes   int64 `json:"parse_bytes_freed"`
	Kept    int   `json:"parse_entries_kept"`
}

// CollectParseCache removes the parse cache entries of the cache folder
// cacheDir that no load used for olderThan (ParseCacheMaxAge when 0), and
// temporary files that interrupted writes left over an hour ago. An entry
// is only ever a faster way to a parse, so removing one is always safe,
// even while a load runs.
func CollectParseCache(cacheDir string, olderThan time.Duration, dryRun bool) (ParseCacheGCResult, error) {
	var res ParseCacheGCResult
	if olderThan <= 0 {
		olderThan = ParseCacheMaxAge
	}
	es, err := parseEntries(ParseCacheDir(cacheDir))
	if err != nil {
		return res, err
	}
	now := time.Now()
	for _, e := range es {
		limit := olderThan
		if e.tmp {
			limit = time.Hour
		}
		if now.Sub(e.used) <= limit {
			if !e.tmp {
				res.Kept++
			}
			continue
		}
		if !dryRun {
			if err := os.Remove(e.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return res, fmt.Errorf("remove a parse cache entry: %w", err)
			}
		}
		res.Removed++
		res.Bytes += e.size
	}
	return res, nil
}
