package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mlbuild/mlbuild/cache"
	"github.com/mlbuild/mlbuild/cache/remote"
	"github.com/mlbuild/mlbuild/cache/remote/remotetest"
	"github.com/mlbuild/mlbuild/engine"
)

// remoteReps is how many times each remote benchmark is repeated (each
// teammate-B run in a fresh workspace, each transfer into a fresh store).
const remoteReps = 3

// curlTool is curl, when installed, and whether it can run transfers in
// parallel (--parallel, curl 7.66 and later).
type curlTool struct {
	path     string
	version  string
	parallel bool
}

func findCurl() curlTool {
	var c curlTool
	c.path, _ = exec.LookPath("curl")
	if c.path == "" {
		return c
	}
	c.version = firstLine(c.path, "--version")
	if f := strings.Fields(c.version); len(f) >= 2 {
		c.version = f[0] + " " + f[1]
	}
	out, _ := exec.Command(c.path, "--help", "all").Output()
	c.parallel = bytes.Contains(out, []byte("--parallel-max"))
	return c
}

// startNginx starts nginx (WebDAV PUT on loopback, its own config, port and
// object folder under cfg.tmp) for the remote benchmarks; nil with a note
// for the report when nginx is not installed.
func startNginx(cfg *config) (*remotetest.Nginx, string, error) {
	dir := filepath.Join(cfg.tmp, "nginx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", err
	}
	n, err := remotetest.StartNginxServer(dir)
	if err == remotetest.ErrNoNginx {
		return nil, "**nginx is not installed**, so the remote-cache rows (teammate B's pull, 1 GiB push/pull) are left out: install it (Debian/Ubuntu: `apt-get install nginx-light`) and rerun.\n\n", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("start nginx: %w", err)
	}
	return n, "", nil
}

// ---- Teammate B's full pull of the demo pipeline ----

// teamResult is teammate B's full pull of twainbot's artifacts from a
// remote that teammate A filled, beside curl fetching the same objects.
type teamResult struct {
	blobs     int   // cas/ objects nginx holds
	blobBytes int64 // their total size
	objects   int   // cas/ and ac/ objects, what curl fetches
	runB      samples
	runStats  engine.TransferStats // from the last run (every run must agree)
	pull      samples
	pullStats engine.TransferStats
	curl      samples
	curlHow   string // "--parallel-max 8" or "one after another"
	curlTool  curlTool
}

// benchTeammates: teammate A runs twainbot.hcl in a fresh copy of
// pipelines/ with MLBUILD_REMOTE pointing at nginx, uploading everything.
// Then, remoteReps times each and in turn: teammate B runs the pipeline in
// another fresh copy with an empty local cache (every step must come back
// cached from the remote), `mlbuild cache pull` fills a third fresh copy,
// and curl downloads every object nginx holds. The copies are removed
// unless cfg.keep.
func benchTeammates(cfg *config, n *remotetest.Nginx, curl curlTool) (*teamResult, error) {
	env := append(os.Environ(), "MLBUILD_REMOTE="+n.URL)
	fresh := func(name string) (string, error) {
		ws := filepath.Join(cfg.tmp, name)
		if err := os.CopyFS(ws, os.DirFS(cfg.pipelines)); err != nil {
			return "", fmt.Errorf("copy %s: %w", cfg.pipelines, err)
		}
		return ws, nil
	}
	drop := func(ws string) {
		if !cfg.keep {
			os.RemoveAll(ws)
		}
	}
	wsA, err := fresh("teammate-a")
	if err != nil {
		return nil, err
	}
	logf("teammates: A builds twainbot.hcl and uploads to nginx at %s", n.URL)
	stepsA, sumA, _, err := runJSON(cfg.mlbuild, wsA, env, "run", "twainbot.hcl", "-j", fmt.Sprint(cfg.jobs), "--json")
	if err != nil {
		return nil, err
	}
	if sumA.Ran != len(stepsA) || sumA.Remote == nil || sumA.Remote.Uploaded == 0 {
		return nil, fmt.Errorf("teammate A: ran %d of %d steps, remote %+v", sumA.Ran, len(stepsA), sumA.Remote)
	}
	drop(wsA)

	r := &teamResult{curlTool: curl}
	var urls []string
	for _, kind := range []string{"cas", "ac"} {
		err := filepath.WalkDir(filepath.Join(n.Root, kind), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			if kind == "cas" {
				r.blobs++
				r.blobBytes += fi.Size()
			}
			r.objects++
			urls = append(urls, n.URL+"/"+kind+"/"+d.Name())
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list nginx's objects: %w", err)
		}
	}
	r.curlHow = "one after another"
	if curl.parallel {
		r.curlHow = fmt.Sprintf("--parallel-max %d", remote.Parallelism)
	}

	for i := range remoteReps {
		wsB, err := fresh(fmt.Sprintf("teammate-b%d", i))
		if err != nil {
			return nil, err
		}
		start := time.Now()
		stepsB, sumB, _, err := runJSON(cfg.mlbuild, wsB, env, "run", "twainbot.hcl", "-j", fmt.Sprint(cfg.jobs), "--json")
		d := time.Since(start)
		if err != nil {
			return nil, err
		}
		for _, s := range stepsB {
			if s.Status != engine.StatusCached || s.Source != "remote" {
				return nil, fmt.Errorf("teammate B: %s was %s (source %q), not cached from the remote", s.Step, s.Status, s.Source)
			}
		}
		if len(stepsB) != len(stepsA) || sumB.Remote == nil {
			return nil, fmt.Errorf("teammate B: %d step events (A had %d), remote %+v", len(stepsB), len(stepsA), sumB.Remote)
		}
		r.runB, r.runStats = append(r.runB, d), *sumB.Remote
		drop(wsB)

		wsC, err := fresh(fmt.Sprintf("teammate-c%d", i))
		if err != nil {
			return nil, err
		}
		start = time.Now()
		_, _, pull, err := runJSON(cfg.mlbuild, wsC, env, "cache", "pull", "twainbot.hcl", "--json")
		d = time.Since(start)
		if err != nil {
			return nil, err
		}
		if pull.Type != "pull" || len(pull.Missing) > 0 {
			return nil, fmt.Errorf("cache pull: %+v", pull)
		}
		r.pull, r.pullStats = append(r.pull, d), pull.TransferStats
		drop(wsC)

		if curl.path != "" {
			d, err := curlGet(curl, urls)
			if err != nil {
				return nil, err
			}
			r.curl = append(r.curl, d)
		}
	}
	logf("teammates: %d blobs (%d B) on nginx; B's run %s, %d blobs %d B down; cache pull %s, %d blobs %d B down; curl %s",
		r.blobs, r.blobBytes, r.runB, r.runStats.Downloaded, r.runStats.BytesDown, r.pull, r.pullStats.Downloaded, r.pullStats.BytesDown, r.curl)
	return r, nil
}

// curlGet downloads every URL to /dev/null with one curl process, in
// parallel when curl can.
func curlGet(c curlTool, urls []string) (time.Duration, error) {
	args := []string{"-sS", "-f"}
	if c.parallel {
		args = append(args, "--parallel", "--parallel-max", fmt.Sprint(remote.Parallelism))
	}
	for _, u := range urls {
		args = append(args, "-o", "/dev/null", u)
	}
	return runCurl(c, args...)
}

func runCurl(c curlTool, args ...string) (time.Duration, error) {
	cmd := exec.Command(c.path, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return d, fmt.Errorf("curl: %w\n%s", err, tail(out.String()))
	}
	return d, nil
}

// rows: teammate B's run and `cache pull`, each beside curl fetching the
// same objects; the target is that exactly the blobs' bytes move.
func (r *teamResult) rows() []row {
	target := fmt.Sprintf("bytes down = the %d blobs' size, %s B", r.blobs, thousands64(r.blobBytes))
	one := func(name string, s samples, st engine.TransferStats) row {
		rw := row{benchmark: fmt.Sprintf("%s (twainbot.hcl from nginx, empty local cache, median of %d)", name, len(s)),
			mlbuild: fmt.Sprintf("%s; %d blobs, %s B down", s, st.Downloaded, thousands64(st.BytesDown)),
			peer:    "curl not installed", ratio: "—", target: target,
			met: yesNo(st.BytesDown == r.blobBytes && st.Downloaded == r.blobs)}
		if r.curl != nil {
			rw.peer = fmt.Sprintf("curl (%s), the %d objects of cas/ and ac/: %s", r.curlHow, r.objects, r.curl)
			rw.ratio = fmt.Sprintf("%.1f×", float64(s.median())/float64(r.curl.median()))
		}
		return rw
	}
	return []row{
		one("Teammate B's full pull: `mlbuild run`, every step cached from the remote", r.runB, r.runStats),
		one("… the same with `mlbuild cache pull`", r.pull, r.pullStats),
	}
}

func thousands64(n int64) string { return thousands(int(n)) }

// transferLine is the --json line of `mlbuild cache push|pull`.
type transferLine struct {
	Type string `json:"type"`
	engine.TransferStats
	Missing []string `json:"missing"`
}

// runJSON runs the mlbuild binary with args in ws and env, and parses its
// --json output: the step events and summary of `run`, or the one line of
// `cache push|pull`.
func runJSON(bin, ws string, env []string, args ...string) ([]engine.StepResult, engine.Summary, transferLine, error) {
	var (
		steps []engine.StepResult
		sum   engine.Summary
		xfer  transferLine
	)
	cmd := exec.Command(bin, args...)
	cmd.Dir, cmd.Env = ws, env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	what := "mlbuild " + strings.Join(args, " ")
	if err := cmd.Run(); err != nil {
		return steps, sum, xfer, fmt.Errorf("%s: %w\n%s", what, err, tail(stderr.String()))
	}
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var head struct{ Type string }
		if err := json.Unmarshal(line, &head); err != nil {
			return steps, sum, xfer, fmt.Errorf("%s: not JSON: %q", what, tail(string(line)))
		}
		var err error
		switch head.Type {
		case "step":
			var s engine.StepResult
			err = json.Unmarshal(line, &s)
			steps = append(steps, s)
		case "summary":
			err = json.Unmarshal(line, &sum)
		case "push", "pull":
			err = json.Unmarshal(line, &xfer)
		}
		if err != nil {
			return steps, sum, xfer, fmt.Errorf("%s: %w", what, err)
		}
	}
	return steps, sum, xfer, nil
}

// ---- Push and pull of one big artifact ----

// transferResult compares moving one big artifact to and from nginx with
// remote.Push / remote.Pull (in process) and with curl.
type transferResult struct {
	size               int64
	store              time.Duration // PutFile into the local store, for context
	push, pull         samples       // remoteReps each
	curlUp, curlDown   samples       // remoteReps each; nil without curl
	pushHeap, pullHeap uint64        // peak HeapInuse while transferring
	pushRSS, pullRSS   int64         // peak anonymous RSS while transferring
	baseHeap           uint64        // HeapInuse before the transfers
}

// benchTransfer writes cfg.hashSize pseudo-random bytes to a file, stores
// it in a fresh local cache.Store as the only output of a made-up action,
// then, remoteReps times each and in turn: remote.Push to nginx (the
// remote's copy removed first), remote.Pull into a fresh store (removed
// after), `curl -T` of the file to another name on the same nginx and
// `curl -o /dev/null` of the pushed blob. Memory is sampled during the
// mlbuild transfers. Every timed transfer starts after a sync(2). The file
// and the stores are removed before returning.
func benchTransfer(cfg *config, n *remotetest.Nginx, curl curlTool) (_ *transferResult, err error) {
	size := cfg.hashSize
	dir := filepath.Join(cfg.tmp, "transfer")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	// The file, the local store, nginx's copy and a pulled store or curl's
	// upload exist at once.
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil && int64(st.Bavail)*st.Bsize < 4*size+(512<<20) {
		return nil, fmt.Errorf("%s has %d MiB free; the transfer benchmark needs %d MiB (set TMPDIR to a larger disk)",
			dir, int64(st.Bavail)*st.Bsize>>20, (4*size+(512<<20))>>20)
	}
	path := filepath.Join(dir, "artifact.bin")
	logf("transfer: writing %s of pseudo-random bytes to %s", sizeName(size), path)
	if err := writeRandom(path, size); err != nil {
		return nil, err
	}
	digest, _, err := cache.HashFile(path)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	local, err := cache.Open(ctx, filepath.Join(dir, "store-a"), cache.Options{})
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := local.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	r := &transferResult{size: size}
	// Each timed transfer starts with no dirty pages left by the one
	// before: otherwise their writeback lands on whichever comes next.
	unix.Sync()
	start := time.Now()
	if err := local.PutFile(digest, path); err != nil {
		return nil, err
	}
	r.store = time.Since(start)
	keySum := sha256.Sum256([]byte("mlbuild bench: one big artifact " + digest))
	ar := &cache.ActionResult{
		Key:     hex.EncodeToString(keySum[:]),
		Step:    "bench.artifact",
		Outputs: map[string]cache.OutputRef{"model": {Path: "model.bin", Digest: digest, Size: size}},
	}
	rem, err := remote.Open(ctx, n.URL, remote.Options{Getenv: func(string) string { return "" }})
	if err != nil {
		return nil, err
	}
	defer func() { _ = rem.Close() }() // only releases connections: each upload is whole once Push returns
	// The big objects go too, even with -keep.
	defer os.Remove(n.ObjectPath("cas/" + digest))
	curlSum := sha256.Sum256([]byte("mlbuild bench: curl's upload " + digest))
	curlURL := n.URL + "/cas/" + hex.EncodeToString(curlSum[:])
	curlObj := n.ObjectPath("cas/" + hex.EncodeToString(curlSum[:]))

	if err := warm(path); err != nil {
		return nil, err
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.baseHeap = ms.HeapInuse
	for i := range remoteReps {
		// Push: the remote must not hold the blob or the action.
		for _, o := range []string{"cas/" + digest, "ac/" + ar.Key} {
			if err := os.Remove(n.ObjectPath(o)); err != nil && !os.IsNotExist(err) {
				return nil, err
			}
		}
		var pst remote.Stats
		unix.Sync()
		d, heap, rss, err := sampled(func() error {
			var err error
			pst, err = remote.Push(ctx, local, rem, ar)
			return err
		})
		if err != nil {
			return nil, err
		}
		if pst.Uploaded != 1 || pst.BytesUp != size {
			return nil, fmt.Errorf("push uploaded %d blobs, %d bytes; expected 1, %d", pst.Uploaded, pst.BytesUp, size)
		}
		r.push = append(r.push, d)
		r.pushHeap, r.pushRSS = max(r.pushHeap, heap), max(r.pushRSS, rss)

		// Pull into an empty store.
		sdir := filepath.Join(dir, fmt.Sprintf("store-b%d", i))
		dst, err := cache.Open(ctx, sdir, cache.Options{})
		if err != nil {
			return nil, err
		}
		var got *cache.ActionResult
		var gst remote.Stats
		unix.Sync()
		d, heap, rss, err = sampled(func() error {
			var err error
			got, gst, err = remote.Pull(ctx, dst, rem, ar.Key)
			return err
		})
		if cerr := dst.Close(); err == nil {
			err = cerr
		}
		os.RemoveAll(sdir)
		if err != nil {
			return nil, err
		}
		if got == nil || gst.Downloaded != 1 || gst.BytesDown != size {
			return nil, fmt.Errorf("pull downloaded %d blobs, %d bytes (action found: %v); expected 1, %d", gst.Downloaded, gst.BytesDown, got != nil, size)
		}
		r.pull = append(r.pull, d)
		r.pullHeap, r.pullRSS = max(r.pullHeap, heap), max(r.pullRSS, rss)

		if curl.path == "" {
			continue
		}
		// A copy left by the last round would pass the check below.
		if err := os.Remove(curlObj); err != nil && !os.IsNotExist(err) {
			return nil, err
		}
		unix.Sync()
		d, err = runCurl(curl, "-sS", "-f", "-T", path, curlURL)
		if err != nil {
			return nil, err
		}
		if fi, err := os.Stat(curlObj); err != nil || fi.Size() != size {
			return nil, fmt.Errorf("curl's upload did not land whole on nginx: %v", err)
		}
		os.Remove(curlObj)
		r.curlUp = append(r.curlUp, d)
		unix.Sync()
		d, err = runCurl(curl, "-sS", "-f", "-o", "/dev/null", n.URL+"/cas/"+digest)
		if err != nil {
			return nil, err
		}
		r.curlDown = append(r.curlDown, d)
	}
	msg := fmt.Sprintf("transfer: %s; store %.0f MB/s; push %s, pull %s (peak heap %s / %s)",
		sizeName(size), mbps(size, r.store), rates(size, r.push), rates(size, r.pull), mib(r.pushHeap), mib(r.pullHeap))
	if r.curlUp != nil {
		msg += fmt.Sprintf("; curl up %s, down %s", rates(size, r.curlUp), rates(size, r.curlDown))
	}
	logf("%s", msg)
	return r, nil
}

// rates lists each run's throughput, in MB/s.
func rates(size int64, s samples) string {
	var b strings.Builder
	for i, d := range s {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%.0f", mbps(size, d))
	}
	return b.String() + " MB/s"
}

func mib[T int64 | uint64](n T) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }

// sampled runs f while sampling the Go heap in use and the process's
// anonymous resident memory every 10 ms; it returns f's wall time and the
// peaks.
func sampled(f func() error) (time.Duration, uint64, int64, error) {
	runtime.GC()
	var (
		wg        sync.WaitGroup
		peakHeap  uint64
		peakRSS   int64
		stop      = make(chan struct{})
		ms        runtime.MemStats
		sampleNow = func() {
			runtime.ReadMemStats(&ms)
			peakHeap = max(peakHeap, ms.HeapInuse)
			peakRSS = max(peakRSS, rssAnon())
		}
	)
	sampleNow()
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				sampleNow()
			}
		}
	}()
	start := time.Now()
	err := f()
	d := time.Since(start)
	close(stop)
	wg.Wait()
	sampleNow()
	return d, peakHeap, peakRSS, err
}

// rssAnon is the process's anonymous resident memory (RssAnon in
// /proc/self/status: heap, stacks, not mapped files), in bytes; 0 if
// unknown.
func rssAnon() int64 {
	v := procField("/proc/self/status", "RssAnon")
	kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
	if err != nil {
		return 0
	}
	return kb << 10
}

func (r *transferResult) rows(curl curlTool) []row {
	name := sizeName(r.size)
	one := func(what string, ml samples, heap uint64, rss int64, peerName string, peer samples) row {
		rw := row{benchmark: fmt.Sprintf("%s of a %s artifact over loopback (best of %d)", what, name, remoteReps),
			mlbuild: fmt.Sprintf("%.0f MB/s; peak Go heap %s, anon RSS %s", mbps(r.size, ml.min()), mib(heap), mib(rss)),
			peer:    "curl not installed", ratio: "—", target: "—", met: "—"}
		if peer != nil {
			rw.peer = fmt.Sprintf("%s: %.0f MB/s", peerName, mbps(r.size, peer.min()))
			rw.ratio = fmt.Sprintf("%.0f%%", 100*mbps(r.size, ml.min())/mbps(r.size, peer.min()))
		}
		return rw
	}
	return []row{
		one("Push (remote.Push from a local store to nginx)", r.push, r.pushHeap, r.pushRSS, "`curl -T FILE`", r.curlUp),
		one("Pull (remote.Pull from nginx into an empty local store)", r.pull, r.pullHeap, r.pullRSS, "`curl -o /dev/null`", r.curlDown),
	}
}

// contextText is the local store's own ingest rate, which bounds a pull.
func (r *transferResult) contextText() string {
	return fmt.Sprintf("storing the %s file in an empty local store (`Store.PutFile`, no network) %.0f MB/s; Go heap in use before the transfers %s",
		sizeName(r.size), mbps(r.size, r.store), mib(r.baseHeap))
}
