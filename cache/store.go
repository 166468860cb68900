// Package cache is mlbuild's local store: a content-addressed store (CAS)
// of blobs, an action cache from step keys to output digests and
// provenance, a stat cache that spares re-reading unchanged inputs, and the
// records of each pipeline's latest successful run. All of it lives in one
// Badger database guarded by a process lock.
package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/dgraph-io/badger/v4"
)

// Key prefixes of the Badger database. Every record type has its own
// one-byte namespace so that scans never mix them.
const (
	pfxChunk  = "c/" // c/<blob digest>/<index:08x> -> chunk bytes
	pfxBlob   = "b/" // b/<blob digest> -> blobMeta (written last: the commit mark)
	pfxAction = "a/" // a/<key> -> ActionResult
	pfxStat   = "s/" // s/<abs path> -> statEntry
	pfxRun    = "r/" // r/<pipeline id> -> RunRecord
	pfxHead   = "h/" // h/<pipeline id>\x00<step> -> key of the step's latest result
	pfxMat    = "m/" // m/<abs step dir> -> materialization record
	pfxFlush  = "f/" // f/gc -> nothing: written and dropped to flush the memtables
)

// ChunkSize is the size of the pieces large blobs are stored in, so that no
// artifact ever has to fit in memory.
const ChunkSize = 1 << 20

// Store is an open local cache. It is safe for concurrent use by the
// goroutines of one process; other processes wait on its lock.
type Store struct {
	dir  string
	db   *badger.DB
	lock *Lock
	log  *slog.Logger

	// gcMu keeps GC from sweeping the chunks of a blob that a goroutine of
	// this process is still writing: PutBlob holds it shared, GC exclusive.
	gcMu sync.RWMutex
	// blobLocks serialises the writers (and self-repair) of one digest.
	blobLocks keyedMutex
	closeOnce sync.Once
	closeErr  error

	// inflight counts the bytes of writes under way, claimed by
	// claimSpace and not yet released.
	inflight atomic.Int64
	// readOnly is set when the database was opened read-only because its
	// disk had no room to open it for writing: why, for every write
	// refused.
	readOnly *DiskFullError
}

// keyedMutex is a set of mutexes indexed by string, created on demand and
// dropped when unused.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	mu   sync.Mutex
	refs int
}

// lock locks key and returns its unlock function.
func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyedEntry{}
	}
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}

// Options tunes Open.
type Options struct {
	// Log receives the "waiting for another mlbuild" notice; nil discards.
	Log *slog.Logger
	// NoWait makes Open fail at once, with a *LockedError (errors.Is
	// ErrLocked), when another process holds the store.
	NoWait bool
}

// Open opens (creating if needed) the store in dir. When another mlbuild
// process holds it, Open says so once through opts.Log and waits until that
// process ends or ctx is cancelled.
func Open(ctx context.Context, dir string, opts Options) (*Store, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create cache directory: %w", err)
	}
	lock, err := AcquireLock(ctx, filepath.Join(dir, "lock"), "the cache in "+dir, opts.NoWait, log)
	if err != nil {
		return nil, err
	}
	dbDir := filepath.Join(dir, "db")
	bopts := badger.DefaultOptions(dbDir).
		WithLogger(nil).
		WithMemTableSize(memTableSize).
		WithNumMemtables(2).
		WithNumLevelZeroTables(4).
		WithNumLevelZeroTablesStall(8).
		WithValueThreshold(4 << 10).
		WithValueLogFileSize(valueLogFileSize).
		WithNumCompactors(2).
		WithBlockCacheSize(8 << 20).
		WithIndexCacheSize(4 << 20).
		WithNumGoroutines(4).
		WithDetectConflicts(false)
	// Opening for writing writes new log files through memory maps, which
	// a full disk answers with SIGBUS: with no room for that, open
	// read-only, so that what only reads still works.
	var readOnly *DiskFullError
	if free, err := diskFree(dir); err == nil {
		if need := openNeed(dbDir); free < need {
			readOnly = &DiskFullError{Path: dbDir, Op: "open for writing", Free: free, Need: need}
			if _, err := os.Stat(filepath.Join(dbDir, "MANIFEST")); err != nil {
				lock.Release()
				return nil, readOnly
			}
			log.Warn(readOnly.Error() + "; opened read-only")
			bopts = bopts.WithReadOnly(true)
		}
	}
	db, err := badger.Open(bopts)
	if err != nil {
		lock.Release()
		if errors.Is(err, syscall.ENOSPC) {
			return nil, &DiskFullError{Path: dbDir, Op: "open", Free: -1, Need: -1, Err: err}
		}
		return nil, fmt.Errorf("open cache database %s: %w (if it is damaged, move it aside: mlbuild rebuilds what it needs)", dbDir, err)
	}
	return &Store{dir: dir, db: db, lock: lock, log: log, readOnly: readOnly}, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// Close flushes and closes the database and releases the lock. Calling it
// again does nothing.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		err := s.db.Close()
		s.lock.Release()
		if err != nil {
			s.closeErr = fmt.Errorf("close cache: %w", err)
		}
	})
	return s.closeErr
}

func (s *Store) getJSON(key string, v any) (bool, error) {
	var found bool
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(key))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		return item.Value(func(b []byte) error { return json.Unmarshal(b, v) })
	})
	if err != nil {
		return false, fmt.Errorf("cache read %q: %w", key, err)
	}
	return found, nil
}

func (s *Store) putJSON(key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	op := fmt.Sprintf("cache write %q", key)
	release, err := s.claimSpace(op, entrySize(len(key), len(b)), s.reserve())
	if err != nil {
		return err
	}
	defer release()
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(key), b) }); err != nil {
		return fmt.Errorf("%s: %w", op, s.diskFullErr(op, err))
	}
	return nil
}

// entrySize bounds the disk space one record takes in Badger's logs and
// tables, its bookkeeping included.
func entrySize(key, val int) int64 { return int64(key+val) + 64 }

func (s *Store) delete(keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	var n int64
	for _, k := range keys {
		n += entrySize(len(k), 0)
	}
	op := fmt.Sprintf("delete %d cache records", len(keys))
	release, err := s.claimSpace(op, n, deleteHeadroom)
	if err != nil {
		return err
	}
	defer release()
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for _, k := range keys {
		if err := wb.Delete([]byte(k)); err != nil {
			return s.diskFullErr(op, err)
		}
	}
	return s.diskFullErr(op, wb.Flush())
}

// scan calls fn for each key with prefix and its value (valid only during
// the call).
func (s *Store) scan(prefix string, withValues bool, fn func(key string, val []byte) error) error {
	return s.db.View(func(txn *badger.Txn) error {
		o := badger.DefaultIteratorOptions
		o.PrefetchValues = withValues
		o.Prefix = []byte(prefix)
		it := txn.NewIterator(o)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			var val []byte
			if withValues {
				var err error
				if val, err = item.ValueCopy(nil); err != nil {
					return err
				}
			}
			if err := fn(string(item.Key()), val); err != nil {
				return err
			}
		}
		return nil
	})
}
