package cache

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	crashEnvDir  = "MLBUILD_CACHE_TEST_CRASH_DIR"
	crashEnvSeed = "MLBUILD_CACHE_TEST_CRASH_SEED"
	crashSize    = int64(3*chunksPerTxn*ChunkSize + 12345)
	crashAt      = int64(2*chunksPerTxn*ChunkSize + 3*ChunkSize)
)

// TestHelperProcess is not a test: TestCrashDuringPutBlob runs the test
// binary again with it, to open a store, start storing a large blob, say
// so on stdout and wait to be killed.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(crashEnvDir)
	if dir == "" {
		t.Skip("helper process for TestCrashDuringPutBlob")
	}
	seed, _ := strconv.ParseUint(os.Getenv(crashEnvSeed), 10, 64)
	s, err := Open(context.Background(), dir, Options{NoWait: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	r := &haltReader{r: randReader(seed, crashSize), at: crashAt}
	err = s.PutBlob(crashDigest(t, seed), r)
	fmt.Fprintln(os.Stderr, "helper: PutBlob returned", err)
	os.Exit(3)
}

// haltReader announces MIDWAY on stdout after `at` bytes and blocks forever.
type haltReader struct {
	r     io.Reader
	n, at int64
}

func (h *haltReader) Read(p []byte) (int, error) {
	if h.n >= h.at {
		fmt.Println("MIDWAY")
		for {
			time.Sleep(time.Hour) // (not select{}: that could read as a deadlock)
		}
	}
	if rem := h.at - h.n; int64(len(p)) > rem {
		p = p[:rem]
	}
	k, err := h.r.Read(p)
	h.n += int64(k)
	return k, err
}

func crashDigest(t *testing.T, seed uint64) string {
	return digestReader(t, randReader(seed, crashSize))
}

// killMidPut runs the helper on dir and SIGKILLs it in the middle of a
// PutBlob that has committed some chunk transactions.
func killMidPut(t *testing.T, dir string, seed uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnvDir+"="+dir, crashEnvSeed+"="+strconv.FormatUint(seed, 10))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "MIDWAY" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait() // killed: Wait's error says so
		t.Fatalf("helper said %q, %v", line, err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("helper did not die of SIGKILL: %v", err)
	}
}

func TestCrashDuringPutBlob(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a subprocess")
	}
	dir := t.TempDir()

	// Killed mid-put, then the same blob is stored again: the stale
	// chunks are overwritten.
	killMidPut(t, dir, 1)
	s, err := Open(context.Background(), dir, Options{NoWait: true})
	if err != nil {
		t.Fatalf("reopen after a crash: %v", err)
	}
	d := crashDigest(t, 1)
	if ok, err := s.HasBlob(d); err != nil || ok {
		t.Fatalf("half-stored blob visible after a crash: %v %v", ok, err)
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Blobs != 0 || st.OrphanChunks < 2*chunksPerTxn {
		t.Fatalf("after the crash: %+v (want the committed chunks as orphans)", st)
	}
	if err := s.PutBlob(d, randReader(1, crashSize)); err != nil {
		t.Fatalf("PutBlob after a crash: %v", err)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(s.WriteBlob(d, pw)) }()
	if got := digestReader(t, pr); got != d {
		t.Fatalf("re-stored blob reads back as %s", got)
	}
	if st, _ := s.Stats(); st.OrphanChunks != 0 || st.Blobs != 1 {
		t.Fatalf("after re-storing: %+v", st)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Killed mid-put of another blob: gc sweeps the leftovers and keeps
	// the whole blob.
	killMidPut(t, dir, 2)
	s = openTest(t, dir)
	res, err := s.GC(GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The first blob is unreferenced, so it goes too.
	if res.ChunksRemoved < 2*chunksPerTxn || res.BlobsRemoved != 1 {
		t.Fatalf("gc after a crash: %+v", res)
	}
	if st, _ := s.Stats(); st.OrphanChunks != 0 || st.Blobs != 0 {
		t.Fatalf("after gc: %+v", st)
	}
	if ok, _ := s.HasBlob(crashDigest(t, 2)); ok {
		t.Fatal("half-stored blob visible")
	}
	if err := s.PutBlob(crashDigest(t, 2), randReader(2, crashSize)); err != nil {
		t.Fatal(err)
	}
}
