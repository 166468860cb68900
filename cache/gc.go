package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Stats summarises the store's content.
type Stats struct {
	Actions      int   `json:"actions"`
	Blobs        int   `json:"blobs"`
	BlobBytes    int64 `json:"blob_bytes"`
	StatEntries  int   `json:"stat_entries"`
	Pipelines    int   `json:"pipelines"`
	LSMBytes     int64 `json:"lsm_bytes"`
	VlogBytes    int64 `json:"vlog_bytes"`
	OrphanChunks int   `json:"orphan_chunks"`
}

// Stats counts the store's records and sizes.
func (s *Store) Stats() (Stats, error) {
	var st Stats
	metas, err := s.blobMetas()
	if err != nil {
		return st, err
	}
	st.Blobs = len(metas)
	for _, m := range metas {
		st.BlobBytes += m.Size
	}
	counts := []struct {
		prefix string
		n      *int
	}{{pfxAction, &st.Actions}, {pfxStat, &st.StatEntries}, {pfxRun, &st.Pipelines}}
	for _, c := range counts {
		if err := s.scan(c.prefix, false, func(string, []byte) error { *c.n++; return nil }); err != nil {
			return st, err
		}
	}
	orphans, err := s.orphanChunks(metas)
	st.OrphanChunks = len(orphans)
	st.LSMBytes, st.VlogBytes = s.db.Size()
	return st, err
}

func (s *Store) blobMetas() (map[string]blobMeta, error) {
	metas := map[string]blobMeta{}
	err := s.scan(pfxBlob, true, func(key string, val []byte) error {
		var m blobMeta
		if err := json.Unmarshal(val, &m); err != nil {
			return fmt.Errorf("blob record %s: %w", key, err)
		}
		metas[strings.TrimPrefix(key, pfxBlob)] = m
		return nil
	})
	return metas, err
}

// orphanChunks lists the chunk keys no committed blob owns: those of blobs
// whose commit record is missing (a put interrupted by a crash, a delete
// interrupted halfway) and those past a committed blob's last chunk.
func (s *Store) orphanChunks(metas map[string]blobMeta) ([]string, error) {
	var orphans []string
	err := s.scan(pfxChunk, false, func(key string, _ []byte) error {
		d, i, ok := parseChunkKey(key)
		if m, committed := metas[d]; !ok || !committed || i >= m.Chunks {
			orphans = append(orphans, key)
		}
		return nil
	})
	return orphans, err
}

// GCOptions selects what gc removes. Results referenced by the latest
// successful run of any pipeline are always kept.
type GCOptions struct {
	// OlderThan removes unprotected action results unused for longer.
	OlderThan time.Duration
	// MaxBytes removes unprotected action results, least recently used
	// first, until the blobs they alone reference fit under it (0: no cap).
	MaxBytes int64
	// DryRun reports without deleting.
	DryRun bool
}

// GCResult reports what gc removed (or would remove).
type GCResult struct {
	ActionsRemoved int   `json:"actions_removed"`
	BlobsRemoved   int   `json:"blobs_removed"`
	BytesFreed     int64 `json:"bytes_freed"`
	ActionsKept    int   `json:"actions_kept"`
	Protected      int   `json:"protected"`
	ChunksRemoved  int   `json:"orphan_chunks_removed"`
	// StatRemoved counts stat-cache records of files that no longer exist.
	StatRemoved int `json:"stat_entries_removed"`
}

// GC removes old action results and the blobs nothing else references,
// never touching what a pipeline's latest successful run references.
//
// Every run of it also removes: blobs no kept action result references
// (directly or inside a tree manifest), action results whose outputs are
// no longer whole in the store (they could never be used; unless
// protected), chunks no committed blob owns, and stat-cache records of
// files that are gone. It must not run while a build of this process is
// between storing its output blobs and recording the action result.
func (s *Store) GC(opts GCOptions) (GCResult, error) {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	var res GCResult
	runs, err := s.Runs()
	if err != nil {
		return res, err
	}
	protected := map[string]bool{}
	for _, r := range runs {
		for _, k := range r.Keys {
			protected[k] = true
		}
	}
	var actions []*ActionResult
	err = s.scan(pfxAction, true, func(key string, val []byte) error {
		var ar ActionResult
		if err := json.Unmarshal(val, &ar); err != nil {
			return fmt.Errorf("action record %s: %w", key, err)
		}
		ar.Key = strings.TrimPrefix(key, pfxAction)
		actions = append(actions, &ar)
		return nil
	})
	if err != nil {
		return res, err
	}
	metas, err := s.blobMetas()
	if err != nil {
		return res, err
	}

	// The blobs each action references, and whether they are all there.
	refsOf := func(ar *ActionResult) (refs []string, whole bool, err error) {
		seen := map[string]bool{}
		add := func(d string) {
			if !seen[d] {
				seen[d] = true
				refs = append(refs, d)
			}
		}
		whole = true
		for _, o := range ar.Outputs {
			add(o.Digest)
			if _, ok := metas[o.Digest]; !ok {
				whole = false
				continue
			}
			if !o.Dir {
				continue
			}
			m, err := s.Manifest(o.Digest)
			if errors.Is(err, ErrBlobMissing) {
				// Found damaged (and dropped) on read.
				delete(metas, o.Digest)
				whole = false
				continue
			}
			if err != nil {
				return nil, false, fmt.Errorf("tree manifest of %s: %w", ar.Step, err)
			}
			for _, e := range m.Entries {
				if e.Dir {
					continue
				}
				add(e.Digest)
				if _, ok := metas[e.Digest]; !ok {
					whole = false
				}
			}
		}
		return refs, whole, nil
	}

	// Least recently used first, so that a size cap drops those first.
	sort.Slice(actions, func(i, j int) bool {
		if !actions[i].LastUsed.Equal(actions[j].LastUsed) {
			return actions[i].LastUsed.Before(actions[j].LastUsed)
		}
		return actions[i].Key < actions[j].Key
	})
	now := time.Now()
	refs := make([][]string, len(actions))
	remove := make([]bool, len(actions))
	for i, ar := range actions {
		r, whole, err := refsOf(ar)
		if err != nil {
			return res, fmt.Errorf("gc: %w", err)
		}
		refs[i] = r
		switch {
		case protected[ar.Key]:
			res.Protected++
		case !whole:
			remove[i] = true
		case opts.OlderThan > 0 && now.Sub(ar.LastUsed) > opts.OlderThan:
			remove[i] = true
		}
	}
	refcount := map[string]int{}
	var total int64
	for i := range actions {
		if remove[i] {
			continue
		}
		for _, d := range refs[i] {
			if refcount[d]++; refcount[d] == 1 {
				total += metas[d].Size
			}
		}
	}
	if opts.MaxBytes > 0 {
		for i, ar := range actions {
			if total <= opts.MaxBytes {
				break
			}
			if remove[i] || protected[ar.Key] {
				continue
			}
			remove[i] = true
			for _, d := range refs[i] {
				if refcount[d]--; refcount[d] == 0 {
					total -= metas[d].Size
				}
			}
		}
	}
	var actionKeys []string
	for i, ar := range actions {
		if remove[i] {
			actionKeys = append(actionKeys, pfxAction+ar.Key)
		}
	}
	res.ActionsRemoved = len(actionKeys)
	res.ActionsKept = len(actions) - len(actionKeys)
	var dead []string
	for d, m := range metas {
		if refcount[d] == 0 {
			dead = append(dead, d)
			res.BlobsRemoved++
			res.BytesFreed += m.Size
		}
	}
	sort.Strings(dead)
	// Orphan chunks. No goroutine of this process is mid-put (gcMu) and
	// no other process has the store open (the lock).
	orphans, err := s.orphanChunks(metas)
	if err != nil {
		return res, err
	}
	res.ChunksRemoved = len(orphans)
	var stale []string
	err = s.scan(pfxStat, false, func(key string, _ []byte) error {
		if _, err := os.Lstat(strings.TrimPrefix(key, pfxStat)); errors.Is(err, fs.ErrNotExist) {
			stale = append(stale, key)
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	res.StatRemoved = len(stale)
	if opts.DryRun {
		return res, nil
	}
	// Action results first: from then on their blobs are unreferenced, and
	// a crash leaves nothing worse than blobs the next gc removes.
	if err := s.delete(actionKeys...); err != nil {
		return res, fmt.Errorf("gc: remove action results: %w", withGCHint(err))
	}
	for _, d := range dead {
		if err := s.deleteBlob(d, metas[d].Chunks); err != nil {
			return res, fmt.Errorf("gc: remove blob %s: %w", short(d), withGCHint(err))
		}
	}
	if err := s.delete(orphans...); err != nil {
		return res, fmt.Errorf("gc: remove orphan chunks: %w", withGCHint(err))
	}
	if err := s.delete(stale...); err != nil {
		return res, fmt.Errorf("gc: remove stat records: %w", withGCHint(err))
	}
	if len(actionKeys)+len(dead)+len(orphans) > 0 {
		s.compact()
	}
	return res, nil
}

// compact reclaims disk space after deletions: flatten the LSM tree and
// rewrite value-log files that are mostly garbage.
//
// Compacting writes tables and value-log files anew before it deletes the
// old ones, through memory maps: on a disk without room for that it is
// skipped with a warning (the deleted records' space comes back at the
// next gc that has room).
func (s *Store) compact() {
	release, err := s.claimSpace("compact the cache", 0, s.compactNeed())
	if err != nil {
		s.log.Warn("not compacting: " + err.Error())
		return
	}
	defer release()
	if err := s.flushMemtable(); err != nil {
		s.log.Debug("flush memtable", "err", err)
	}
	_ = s.db.Flatten(1)
	for {
		if err := s.db.RunValueLogGC(0.5); err != nil {
			if !errors.Is(err, badger.ErrNoRewrite) {
				s.log.Debug("value log gc", "err", err)
			}
			return
		}
	}
}

// flushMemtable writes the memtables out to tables, so that the compaction
// that follows sees the tombstones gc has just written: without that they
// wait in memory, no value is dropped, and the value log gives nothing
// back until a later gc. Badger has no call for just that; DropPrefix
// flushes the memtables first, and dropping a key written for the purpose
// drops nothing else.
func (s *Store) flushMemtable() error {
	key := []byte(pfxFlush + "gc")
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(key, nil) }); err != nil {
		return err
	}
	return s.db.DropPrefix(key)
}
