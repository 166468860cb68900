package main

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mlbuild/mlbuild/cache"
)

// hashPeer is a command that prints a file's SHA-256.
type hashPeer struct {
	name string   // as the table shows it
	args []string // the command; the file's path is appended
	path string   // the command's path; "" when it is not installed
	best time.Duration
}

// hashResult compares first-time hashing of one big file.
type hashResult struct {
	size  int64
	ml    time.Duration // best of 3
	peers []*hashPeer   // sha256sum (the target's peer), then openssl
}

func mbps(size int64, d time.Duration) float64 { return float64(size) / 1e6 / d.Seconds() }

// rows: one per peer; sha256sum carries the target, openssl (which, unlike
// coreutils' sha256sum, uses the CPU's SHA extensions) is for reference.
func (h *hashResult) rows() []row {
	var rows []row
	for i, p := range h.peers {
		r := row{benchmark: fmt.Sprintf("First-time hash of a %s file (page cache warm, best of 3)", sizeName(h.size)),
			mlbuild: fmt.Sprintf("%.0f MB/s", mbps(h.size, h.ml)), peer: p.name + " not installed", ratio: "—",
			target: "≥ 90% of sha256sum", met: "n/a"}
		if i > 0 {
			r.benchmark = "… the same, beside " + p.name
			r.target, r.met = "— (reference)", "—"
		}
		if p.best > 0 {
			ratio := mbps(h.size, h.ml) / mbps(h.size, p.best)
			r.peer = fmt.Sprintf("%s: %.0f MB/s", p.name, mbps(h.size, p.best))
			r.ratio = fmt.Sprintf("%.0f%%", 100*ratio)
			if i == 0 {
				r.met = yesNo(ratio >= 0.9)
			}
		}
		rows = append(rows, r)
	}
	return rows
}

func sizeName(n int64) string {
	if n >= 1<<30 && n%(1<<30) == 0 {
		return fmt.Sprintf("%d GiB", n>>30)
	}
	return fmt.Sprintf("%d MiB", n>>20)
}

// benchHash writes cfg.hashSize pseudo-random bytes to a file, reads it
// once so that it sits in the page cache, then times, best of 3 each and
// in turn, mlbuild's hasher (in process, a fresh hasher without a stat
// cache each time, so every byte is read) and each peer command. Every
// peer must print the digest mlbuild computed. The file is removed before
// returning.
func benchHash(cfg *config) (*hashResult, error) {
	dir := cfg.tmp
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil && int64(st.Bavail)*st.Bsize < cfg.hashSize+(256<<20) {
		return nil, fmt.Errorf("%s has %d MiB free; the hashing benchmark needs %d MiB (set TMPDIR to a larger disk)",
			dir, int64(st.Bavail)*st.Bsize>>20, cfg.hashSize>>20)
	}
	path := filepath.Join(dir, "big.bin")
	defer os.Remove(path)
	logf("hashing: writing %s of pseudo-random bytes to %s", sizeName(cfg.hashSize), path)
	if err := writeRandom(path, cfg.hashSize); err != nil {
		return nil, err
	}
	if err := warm(path); err != nil {
		return nil, err
	}
	h := &hashResult{size: cfg.hashSize, peers: []*hashPeer{
		{name: "sha256sum", args: []string{"sha256sum"}},
		{name: "openssl dgst -sha256", args: []string{"openssl", "dgst", "-sha256"}},
	}}
	for _, p := range h.peers {
		p.path, _ = exec.LookPath(p.args[0])
	}
	for range 3 {
		start := time.Now()
		a, err := cache.NewHasher(nil).Digest(path)
		d := time.Since(start)
		if err != nil {
			return nil, err
		}
		if h.ml == 0 || d < h.ml {
			h.ml = d
		}
		for _, p := range h.peers {
			if p.path == "" {
				continue
			}
			var out bytes.Buffer
			cmd := exec.Command(p.path, append(p.args[1:], path)...)
			cmd.Stdout = &out
			start := time.Now()
			err := cmd.Run()
			d := time.Since(start)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p.name, err)
			}
			if !strings.Contains(out.String(), a.Digest) {
				return nil, fmt.Errorf("%s printed %q; mlbuild's digest is %s", p.name, strings.TrimSpace(out.String()), a.Digest)
			}
			if p.best == 0 || d < p.best {
				p.best = d
			}
		}
	}
	msg := fmt.Sprintf("hashing: mlbuild %.0f MB/s", mbps(h.size, h.ml))
	for _, p := range h.peers {
		if p.best > 0 {
			msg += fmt.Sprintf(", %s %.0f MB/s", p.name, mbps(h.size, p.best))
		}
	}
	logf("%s", msg)
	return h, nil
}

func writeRandom(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	rng := rand.NewChaCha8([32]byte{'m', 'l', 'b', 'u', 'i', 'l', 'd'})
	if _, err := io.Copy(f, io.LimitReader(rng, size)); err != nil {
		_ = f.Close() // the write failed already; its error is the one returned
		return err
	}
	return f.Close()
}

// warm reads the file once so that every timed read comes from the page
// cache.
func warm(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }() // read-only
	_, err = io.Copy(io.Discard, f)
	return err
}
