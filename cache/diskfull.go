package cache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/dustin/go-humanize"
)

// Why the store checks free space itself: Badger writes its value log,
// write-ahead logs and tables through memory maps of files it creates at
// their full size without allocating them (sparse). On a full disk the
// kernel cannot back the page a write touches and sends SIGBUS, which kills
// the process with a goroutine dump instead of returning an error; and
// since opening a database for writing starts new log files, every later
// command would die the same way. So the store refuses, with ErrDiskFull,
// any write that would leave less than Badger's upkeep needs, and opens a
// database on a disk with no room even for that read-only.

// ErrDiskFull means the disk holding the cache has no room for a write.
// Errors that wrap it are *DiskFullError.
var ErrDiskFull = errors.New("cache disk full")

// DiskFullError says which write did not fit on the cache's disk.
type DiskFullError struct {
	// Path is the cache's database folder.
	Path string
	// Op is what did not fit ("store blob 1a2b3c4d5e6f", "open for writing").
	Op string
	// Free is the space the disk had left; Need what Op needed, the
	// store's reserve included; -1 each where unknown (an ENOSPC from
	// the system).
	Free, Need int64
	// Keep is the part of Need the store keeps free for Badger's upkeep.
	Keep int64
	// Err is the system's error, if one was returned.
	Err error
	// Hint says what to do; empty: free space or run `mlbuild cache gc`.
	Hint string
}

func (e *DiskFullError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cache disk full: %s: %s", e.Op, e.Path)
	if e.Free >= 0 {
		fmt.Fprintf(&b, " has %s free", humanize.IBytes(uint64(e.Free)))
		if e.Need >= 0 {
			fmt.Fprintf(&b, ", %s needed", humanize.IBytes(uint64(e.Need)))
			if e.Keep > 0 {
				fmt.Fprintf(&b, " (%s of it kept free for the database's upkeep)", humanize.IBytes(uint64(e.Keep)))
			}
		}
	}
	if e.Err != nil {
		fmt.Fprintf(&b, " (%v)", e.Err)
	}
	hint := e.Hint
	if hint == "" {
		hint = "free space on that disk or run `mlbuild cache gc`"
	}
	b.WriteString("; " + hint)
	return b.String()
}

// Is makes errors.Is(err, ErrDiskFull) true.
func (e *DiskFullError) Is(target error) bool { return target == ErrDiskFull }

// Unwrap returns the system's error (ENOSPC), if any.
func (e *DiskFullError) Unwrap() error { return e.Err }

// Sizes of the Badger database, which the free-space reserve is made of.
const (
	memTableSize     = 16 << 20
	valueLogFileSize = 64 << 20
	// openHeadroom is what opening for writing needs beyond replaying the
	// write-ahead logs: the first pages of a new log file and a new value
	// log file, a manifest rewrite.
	openHeadroom = 1 << 20
	// deleteHeadroom is the least free space a deletion goes ahead with:
	// tombstones only append to the write-ahead log, so gc may use the
	// reserve that writes leave.
	deleteHeadroom = 1 << 20
)

// reserve is the free space a write must leave for Badger's own upkeep,
// which it does in the background through memory maps and cannot fail
// cleanly: flushing the two memtables to tables, a compaction (which
// writes the tables it merges anew before it deletes the old ones: at most
// the whole LSM tree) and gc's value-log rewrite (at most half a value-log
// file).
func (s *Store) reserve() int64 {
	lsm, _ := s.db.Size()
	return lsm + 2*memTableSize + valueLogFileSize/2
}

// compactNeed is the free space gc's compaction needs: the LSM tree written
// anew, the memtable's tombstones flushed, half a value-log file rewritten.
func (s *Store) compactNeed() int64 {
	lsm, _ := s.db.Size()
	return lsm + memTableSize + valueLogFileSize/2
}

// claimSpace checks that the disk has room for a write of n bytes that
// leaves keep bytes free besides, counting the writes of this process's
// other goroutines that are under way, and holds n until release is called
// (after the write). Where free space is unknown, it lets the write go.
func (s *Store) claimSpace(op string, n, keep int64) (release func(), err error) {
	if s.readOnly != nil {
		e := *s.readOnly
		e.Op = op + " (the cache was opened read-only, with no room to open it for writing)"
		return nil, &e
	}
	pending := s.inflight.Add(n)
	release = func() { s.inflight.Add(-n) }
	free, ferr := diskFree(s.dbDir())
	if ferr != nil {
		return release, nil
	}
	if need := pending + keep; free < need {
		release()
		return nil, &DiskFullError{Path: s.dbDir(), Op: op, Free: free, Need: need, Keep: keep}
	}
	return release, nil
}

// diskFullErr turns an error of the system's that says the disk is full
// into a *DiskFullError for op; other errors are returned as they are.
func (s *Store) diskFullErr(op string, err error) error {
	var dfe *DiskFullError
	if err == nil || errors.As(err, &dfe) || !errors.Is(err, syscall.ENOSPC) {
		return err
	}
	free, ferr := diskFree(s.dbDir())
	if ferr != nil {
		free = -1
	}
	return &DiskFullError{Path: s.dbDir(), Op: op, Free: free, Need: -1, Err: err}
}

// dbDir is the folder of the store's Badger database.
func (s *Store) dbDir() string { return filepath.Join(s.dir, "db") }

// openNeed is the free space opening the database in dbDir for writing
// needs: the write-ahead logs it finds are replayed and flushed to tables
// (their allocated size bounds those), plus openHeadroom.
func openNeed(dbDir string) int64 {
	need := int64(openHeadroom)
	wals, _ := filepath.Glob(filepath.Join(dbDir, "*.mem"))
	for _, p := range wals {
		if fi, err := os.Stat(p); err == nil {
			need += allocated(fi)
		}
	}
	return need
}

// gcHint is the hint of a disk-full error of gc's: gc needs some room to
// record what it removes, so it is no remedy there.
const gcHint = "gc itself needs that much free space to record what it removes: free some space on that disk first"

// withGCHint gives a disk-full error gc's hint; other errors are returned
// as they are.
func withGCHint(err error) error {
	var dfe *DiskFullError
	if errors.As(err, &dfe) {
		dfe.Hint = gcHint
	}
	return err
}
