package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mlbuild/mlbuild/internal/shareddata"
	"github.com/mlbuild/mlbuild/ml/tokenizer"
)

// The tokenizer benchmark: mlbuild's encoder on the Gutenberg books of the
// shared data folder, for the real Mistral-7B and Llama-3 tokenizers, beside
// Hugging Face's Rust encoder (npm `tokenizers`) and tokenizers.js (npm
// `@huggingface/tokenizers`, the JavaScript encoder transformers.js uses),
// which ml/tokenizer/refgen/bench.mjs measures the same way in node.

// realTokenizers are the shared data folder's tokenizers, with their names
// in the table.
var realTokenizers = []struct{ dir, label string }{
	{"mistral", "Mistral-7B"},
	{"llama3", "Llama-3"},
}

var tokModes = []struct{ mode, label string }{
	{"books", "one call per book"},
	{"lines", "one call per line"},
}

// tokPeer is one peer's throughput for one tokenizer and mode, as bench.mjs
// prints it.
type tokPeer struct {
	best, cpu, first float64 // MB/s: best warm pass, best by CPU time, first pass
}

// tokResult is mlbuild's throughput for one tokenizer and mode.
type tokResult struct {
	name, label, mode, modeLabel string
	best, cpu, cold              float64 // MB/s
	rust, js                     *tokPeer
}

type tokBench struct {
	results    []tokResult
	note       string  // why rows or columns are missing ("" when none are)
	passes     int     // mlbuild's warm passes
	peerPasses int     // the npm peers' warm passes
	mb         float64 // MB of input per pass
	books      int
	lines      int
}

// benchTokenizer measures every tokenizer and mode; a missing shared data
// folder leaves the rows out and a missing node or npm leaves the peer
// columns empty, each with a note.
func benchTokenizer(cfg *config) (*tokBench, error) {
	tb := &tokBench{passes: cfg.tokPasses, peerPasses: cfg.nodePasses}
	root := shareddata.Root()
	if root == "" {
		tb.note = "**The shared data folder is absent** (../shared/data beside the repository, or `MLBUILD_SHARED_DATA`), so the tokenizer rows are left out.\n\n"
		logf("%s", tb.note)
		return tb, nil
	}
	files, _ := filepath.Glob(filepath.Join(root, "gutenberg", "*.txt"))
	sort.Strings(files)
	var books []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		books = append(books, string(b))
	}
	var present []int
	for i, t := range realTokenizers {
		if _, err := os.Stat(filepath.Join(root, "tokenizers", t.dir, "tokenizer.json")); err == nil {
			present = append(present, i)
		}
	}
	if len(books) == 0 || len(present) == 0 {
		tb.note = fmt.Sprintf("**The Gutenberg books or the tokenizers are absent from %s**, so the tokenizer rows are left out.\n\n", root)
		logf("%s", tb.note)
		return tb, nil
	}
	var lines []string
	n := 0
	for _, b := range books {
		lines = append(lines, strings.SplitAfter(b, "\n")...)
		n += len(b)
	}
	tb.mb, tb.books, tb.lines = float64(n)/1e6, len(books), len(lines)
	logf("tokenizers: %d Gutenberg books, %d lines, %.2f MB; %d warm passes after a cold one", len(books), len(lines), tb.mb, tb.passes)

	for _, i := range present {
		t := realTokenizers[i]
		for _, m := range tokModes {
			inputs := books
			if m.mode == "lines" {
				inputs = lines
			}
			// A fresh tokenizer for each mode, so that the first pass starts
			// with an empty per-word cache.
			tok, err := tokenizer.Load(filepath.Join(root, "tokenizers", t.dir))
			if err != nil {
				return nil, err
			}
			r := tokResult{name: t.dir, label: t.label, mode: m.mode, modeLabel: m.label}
			var best, bestCPU time.Duration
			for p := 0; p <= tb.passes; p++ {
				t0, c0 := time.Now(), cpuTime()
				for _, s := range inputs {
					tok.Encode(s, false)
				}
				d, c := time.Since(t0), cpuTime()-c0
				if p == 0 {
					r.cold = tb.mb / d.Seconds()
					continue
				}
				if best == 0 || d < best {
					best = d
				}
				if c > 0 && (bestCPU == 0 || c < bestCPU) {
					bestCPU = c
				}
			}
			r.best = tb.mb / best.Seconds()
			if bestCPU > 0 {
				r.cpu = tb.mb / bestCPU.Seconds()
			}
			logf("tokenizer mlbuild %s %s: %.2f MB/s, %.2f cpu-MB/s (best of %d warm passes); first (cold) pass %.2f MB/s",
				t.dir, m.mode, r.best, r.cpu, tb.passes, r.cold)
			tb.results = append(tb.results, r)
		}
	}

	peers, note := runTokenizerPeers(cfg, root)
	tb.note += note
	for i := range tb.results {
		r := &tb.results[i]
		r.rust = peers["rust "+r.name+" "+r.mode]
		r.js = peers["js "+r.name+" "+r.mode]
	}
	return tb, nil
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var peerLine = regexp.MustCompile(`^(npm tokenizers \(Rust\)|tokenizers\.js) (\S+) (books|lines): ([0-9.]+) MB/s, ([0-9.]+) cpu-MB/s .*first pass ([0-9.]+) MB/s`)

// runTokenizerPeers runs refgen/bench.mjs and parses its lines into a map
// keyed "rust|js NAME MODE". It installs refgen's node_modules with npm
// when they are missing; without node (or npm) it returns a note instead.
func runTokenizerPeers(cfg *config, root string) (map[string]*tokPeer, string) {
	node, err := exec.LookPath("node")
	if err != nil {
		n := "**node is not installed**, so the tokenizer rows have no peer: install Node.js and npm, then rerun (the benchmark runs `npm install --ignore-scripts` in ml/tokenizer/refgen itself).\n\n"
		logf("%s", n)
		return nil, n
	}
	mods := filepath.Join(cfg.refgen, "node_modules")
	if !exists(filepath.Join(mods, "tokenizers")) || !exists(filepath.Join(mods, "@huggingface", "tokenizers")) {
		npm, err := exec.LookPath("npm")
		if err != nil {
			n := fmt.Sprintf("**%s lacks the npm packages and npm is not installed**, so the tokenizer rows have no peer: run `npm install --ignore-scripts` there and rerun.\n\n", mods)
			logf("%s", n)
			return nil, n
		}
		logf("tokenizer peers: %s is missing packages; running `npm install --ignore-scripts` in %s", mods, cfg.refgen)
		cmd := exec.Command(npm, "install", "--ignore-scripts", "--no-audit", "--no-fund")
		cmd.Dir = cfg.refgen
		if out, err := cmd.CombinedOutput(); err != nil {
			n := fmt.Sprintf("**`npm install --ignore-scripts` in %s failed** (%v), so the tokenizer rows have no peer.\n\n", cfg.refgen, err)
			logf("%s%s", n, out)
			return nil, n
		}
	}
	logf("tokenizer peers: node %s %s %d", filepath.Join(cfg.refgen, "bench.mjs"), root, cfg.nodePasses)
	t0 := time.Now()
	defer func() { logf("tokenizer peers: node took %s", dur(time.Since(t0))) }()
	cmd := exec.Command(node, filepath.Join(cfg.refgen, "bench.mjs"), root, strconv.Itoa(cfg.nodePasses))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		n := fmt.Sprintf("**`node bench.mjs` failed** (%v), so the tokenizer rows have no peer.\n\n", err)
		logf("%s%s", n, stderr.String())
		return nil, n
	}
	peers := map[string]*tokPeer{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		logf("tokenizer %s", line)
		m := peerLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var p tokPeer
		p.best, _ = strconv.ParseFloat(m[4], 64)
		p.cpu, _ = strconv.ParseFloat(m[5], 64)
		p.first, _ = strconv.ParseFloat(m[6], 64)
		who := "rust"
		if m[1] == "tokenizers.js" {
			who = "js"
		}
		peers[who+" "+m[2]+" "+m[3]] = &p
	}
	if len(peers) == 0 {
		n := "**`node bench.mjs` printed no throughput lines**, so the tokenizer rows have no peer.\n\n"
		logf("%s", n)
		return nil, n
	}
	return peers, ""
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

const tokTarget = "≥ 1× Rust, ≥ 2× tokenizers.js"

func (tb *tokBench) rows() []row {
	var rows []row
	for _, r := range tb.results {
		rw := row{
			benchmark: fmt.Sprintf("Tokenizer throughput, %s, %s (%d Gutenberg books, %.2f MB, no special tokens; best of %d warm passes, the peers' of %d)",
				r.label, r.modeLabel, tb.books, tb.mb, tb.passes, tb.peerPasses),
			mlbuild: fmt.Sprintf("%.2f MB/s", r.best),
			peer:    "—",
			ratio:   "—",
			target:  tokTarget,
			met:     "—",
		}
		var peers, ratios []string
		if r.rust != nil {
			peers = append(peers, fmt.Sprintf("npm tokenizers (Rust): %.2f MB/s", r.rust.best))
			ratios = append(ratios, fmt.Sprintf("%.2f× Rust", r.best/r.rust.best))
		}
		if r.js != nil {
			peers = append(peers, fmt.Sprintf("tokenizers.js: %.2f MB/s", r.js.best))
			ratios = append(ratios, fmt.Sprintf("%.2f× tokenizers.js", r.best/r.js.best))
		}
		if len(peers) > 0 {
			rw.peer, rw.ratio = strings.Join(peers, "; "), strings.Join(ratios, ", ")
		}
		if r.rust != nil && r.js != nil {
			rw.met = yesNo(r.best >= r.rust.best && r.best >= 2*r.js.best)
		}
		rows = append(rows, rw)
	}
	return rows
}

// contextText lists the first passes, which start with an empty per-word
// cache, for the line under the table.
func (tb *tokBench) contextText() string {
	if len(tb.results) == 0 {
		return ""
	}
	var parts []string
	for _, r := range tb.results {
		s := fmt.Sprintf("%s %s mlbuild %.2f", r.label, r.mode, r.cold)
		if r.rust != nil {
			s += fmt.Sprintf(", Rust %.2f", r.rust.first)
		}
		if r.js != nil {
			s += fmt.Sprintf(", tokenizers.js %.2f", r.js.first)
		}
		parts = append(parts, s)
	}
	return "Tokenizer first passes (mlbuild's per-word cache empty; the peers' first pass in the same process), MB/s, for context (no target): " +
		strings.Join(parts, "; ") + ".\n\n"
}
