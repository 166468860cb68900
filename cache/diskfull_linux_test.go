package cache

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The disk-full test runs its store in child processes (the test binary
// again, with TestDiskFullHelper): a store that writes into a full disk
// through Badger's memory maps dies of SIGBUS, which would take the test
// binary down with it.
const (
	diskFullEnvPhase = "MLBUILD_CACHE_TEST_DISKFULL_PHASE"
	diskFullEnvDir   = "MLBUILD_CACHE_TEST_DISKFULL_DIR"
	diskFullEnvN     = "MLBUILD_CACHE_TEST_DISKFULL_N"
	diskFullBlob     = 3<<20 + 4321 // a blob of three chunks and a bit
)

// mountTmpfs mounts a tmpfs of size bytes on a new folder and unmounts it
// when the test ends. It skips the test where mounting is not permitted
// (not root, no CAP_SYS_ADMIN, a container without mount rights).
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "small-disk")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Skipf("skipping: this test needs to mount a small tmpfs (root with mount rights): mount -t tmpfs %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fillDisk writes a file at path until the disk has no more than leave
// bytes free (leave 0: until the disk refuses another byte).
func fillDisk(t *testing.T, path string, leave int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, f)
	buf := bytes.Repeat([]byte{0xa5}, 64<<10)
	for {
		free, err := diskFree(filepath.Dir(path))
		if err != nil {
			t.Fatal(err)
		}
		if free <= leave {
			return
		}
		n := min(int64(len(buf)), free-leave)
		if _, err := f.Write(buf[:n]); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				if leave > 0 {
					t.Fatalf("fill %s: %v with %d bytes free", path, err, free)
				}
				return
			}
			t.Fatal(err)
		}
	}
}

// TestDiskFullHelper is not a test: TestDiskFull runs the test binary again
// with it, for one phase of its scenario on the store in $diskFullEnvDir.
// It prints what happened on stdout, one "WORD detail" line each, and exits
// 0; a crash (SIGBUS in Badger) is what the parent test looks for.
func TestDiskFullHelper(t *testing.T) {
	phase := os.Getenv(diskFullEnvPhase)
	if phase == "" {
		t.Skip("helper process for TestDiskFull")
	}
	dir := os.Getenv(diskFullEnvDir)
	say := func(word string, args ...any) {
		fmt.Println(word, fmt.Sprint(args...))
	}
	s, err := Open(context.Background(), dir, Options{NoWait: true})
	if err != nil {
		say("OPEN-ERR", err)
		os.Exit(0)
	}
	say("OPEN", "ok")
	switch phase {
	case "fill":
		// Store distinct blobs until the store refuses one.
		for i := 0; ; i++ {
			err := s.PutBlob(digestOf(randBytes(uint64(i), diskFullBlob)), randReader(uint64(i), diskFullBlob))
			if err != nil {
				say("STORED", i)
				say("PUT-ERR", err)
				break
			}
		}
	case "gc":
		res, err := s.GC(GCOptions{})
		say("GC", res.BlobsRemoved, " ", err)
		free, _ := diskFree(dir)
		say("FREE", free)
		i := uint64(2000)
		say("PUT-ERR", s.PutBlob(digestOf(randBytes(i, diskFullBlob)), randReader(i, diskFullBlob)))
	case "reopen", "full":
		n, _ := strconv.Atoi(os.Getenv(diskFullEnvN))
		for i := 0; i < n; i++ {
			want := randBytes(uint64(i), diskFullBlob)
			got, err := s.ReadBlob(digestOf(want))
			if err != nil || !bytes.Equal(got, want) {
				say("READ-BAD", i, err)
			}
		}
		say("READ", n)
		st, err := s.Stats()
		say("STATS", st.Blobs, " ", err)
		i := uint64(1000)
		say("PUT-ERR", s.PutBlob(digestOf(randBytes(i, diskFullBlob)), randReader(i, diskFullBlob)))
		if phase == "full" {
			say("ACTION-ERR", s.PutAction(&ActionResult{Key: strings.Repeat("a", 64), Step: "x.y"}))
			_, err := s.GC(GCOptions{})
			say("GC-ERR", err)
		}
	}
	say("CLOSE-ERR", s.Close())
	os.Exit(0)
}

// runDiskFullPhase runs one phase of the scenario in a child process and
// returns its lines by first word; it fails the test when the child does
// not exit cleanly (a SIGBUS, a panic).
func runDiskFullPhase(t *testing.T, phase, dir string, stored int) map[string]string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDiskFullHelper$", "-test.v=false")
	cmd.Env = append(os.Environ(), diskFullEnvPhase+"="+phase, diskFullEnvDir+"="+dir, diskFullEnvN+"="+strconv.Itoa(stored))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tail := stderr.String()
		if len(tail) > 3000 {
			tail = tail[:3000] + "\n…"
		}
		t.Fatalf("phase %s: the store process did not end cleanly: %v\nstdout:\n%s\nstderr:\n%s", phase, err, out, tail)
	}
	lines := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		word, rest, _ := strings.Cut(sc.Text(), " ")
		lines[word] = rest
	}
	t.Logf("phase %s: %q", phase, lines)
	return lines
}

// wantDiskFull checks that msg is the disk-full message: it names the
// folder, the free space and what to do.
func wantDiskFull(t *testing.T, what, msg, dir string) {
	t.Helper()
	for _, want := range []string{"cache disk full", dir, "free", "mlbuild cache gc"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%s: %q does not say %q", what, msg, want)
		}
	}
}

// TestDiskFull fills a small real disk (a tmpfs) through the store: the
// store refuses the write that does not fit with ErrDiskFull, and with no
// crash; the same cache then opens again, reads back everything it
// stored, refuses the next write the same way, even when something else
// has taken the very last byte; once space is freed it stores again.
func TestDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a disk")
	}
	// Leave the store some room to fill beyond what it keeps in reserve
	// for Badger's upkeep.
	const room = 2*memTableSize + valueLogFileSize/2 + 20<<20
	disk := mountTmpfs(t, room+32<<20)
	dir := filepath.Join(disk, "cache")
	fillDisk(t, filepath.Join(disk, "filler"), room)

	fill := runDiskFullPhase(t, "fill", dir, 0)
	if _, ok := fill["OPEN"]; !ok {
		t.Fatalf("fill: open failed: %s", fill["OPEN-ERR"])
	}
	stored, err := strconv.Atoi(fill["STORED"])
	if err != nil || stored == 0 {
		t.Fatalf("fill: stored %q blobs before the error, want some", fill["STORED"])
	}
	wantDiskFull(t, "PutBlob on a full disk", fill["PUT-ERR"], dir)
	if fill["CLOSE-ERR"] != "<nil>" {
		t.Errorf("fill: close: %s", fill["CLOSE-ERR"])
	}

	for _, phase := range []string{"reopen", "full"} {
		if phase == "full" {
			// Something else takes the last free byte.
			fillDisk(t, filepath.Join(disk, "filler2"), 0)
		}
		got := runDiskFullPhase(t, phase, dir, stored)
		if msg, failed := got["OPEN-ERR"]; failed {
			// Refusing to open a cache on a disk with no space at all is
			// right too, if it says why.
			if phase == "full" {
				wantDiskFull(t, phase+": open", msg, dir)
				continue
			}
			t.Fatalf("%s: open: %s", phase, msg)
		}
		if _, bad := got["READ-BAD"]; bad || got["READ"] != strconv.Itoa(stored) {
			t.Errorf("%s: blobs stored before the disk filled read back wrong: %q", phase, got)
		}
		if got["STATS"] != strconv.Itoa(stored)+" <nil>" {
			t.Errorf("%s: stats: %q, want %d blobs", phase, got["STATS"], stored)
		}
		wantDiskFull(t, phase+": PutBlob", got["PUT-ERR"], dir)
		if phase == "full" {
			wantDiskFull(t, phase+": PutAction", got["ACTION-ERR"], dir)
			// gc has unreferenced blobs to remove and no room to record
			// that: it says so, and that it is no remedy here.
			if msg := got["GC-ERR"]; !strings.Contains(msg, "cache disk full") || !strings.Contains(msg, "free some space on that disk first") {
				t.Errorf("%s: gc: %q, want a disk-full error saying to free space first", phase, msg)
			}
		}
		if got["CLOSE-ERR"] != "<nil>" {
			t.Errorf("%s: close: %s", phase, got["CLOSE-ERR"])
		}
	}

	// What something else took is given back; the cache itself filled the
	// rest, and `mlbuild cache gc` is the remedy the message names: it
	// removes the blobs (no action result references them) and gives their
	// space back, so that the store stores again.
	if err := os.Remove(filepath.Join(disk, "filler2")); err != nil {
		t.Fatal(err)
	}
	gc := runDiskFullPhase(t, "gc", dir, stored)
	if gc["GC"] != strconv.Itoa(stored)+" <nil>" {
		t.Errorf("gc: removed %q blobs, want %d and no error", gc["GC"], stored)
	}
	if gc["PUT-ERR"] != "<nil>" || gc["CLOSE-ERR"] != "<nil>" {
		t.Errorf("gc: the store does not store again after gc: %q", gc)
	}
}
