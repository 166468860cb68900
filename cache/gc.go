package cache

import (
	"encoding/json"
	"fmt"
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
	blobs := map[string]bool{}
	err := s.scan(pfxBlob, true, func(key string, val []byte) error {
		var m blobMeta
		if err := json.Unmarshal(val, &m); err != nil {
			return err
		}
		st.Blobs++
		st.BlobBytes += m.Size
		blobs[strings.TrimPrefix(key, pfxBlob)] = true
		return nil
	})
	if err != nil {
		return st, err
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
	err = s.scan(pfxChunk, false, func(key string, _ []byte) error {
		rest := strings.TrimPrefix(key, pfxChunk)
		if i := strings.IndexByte(rest, '/'); i > 0 && !blobs[rest[:i]] {
			st.OrphanChunks++
		}
		return nil
	})
	st.LSMBytes, st.VlogBytes = s.db.Size()
	return st, err
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
}

// GC removes old action results and the blobs nothing else references,
// never touching what a pipeline's latest successful run references.
func (s *Store) GC(opts GCOptions) (GCResult, error) {
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
	err = s.scan(pfxAction, true, func(_ string, val []byte) error {
		var ar ActionResult
		if err := json.Unmarshal(val, &ar); err != nil {
			return err
		}
		actions = append(actions, &ar)
		return nil
	})
	if err != nil {
		return res, err
	}
	metas := map[string]blobMeta{}
	err = s.scan(pfxBlob, true, func(key string, val []byte) error {
		var m blobMeta
		if err := json.Unmarshal(val, &m); err != nil {
			return err
		}
		metas[strings.TrimPrefix(key, pfxBlob)] = m
		return nil
	})
	if err != nil {
		return res, err
	}
	// Oldest first, so a size cap drops the least recently used.
	sort.Slice(actions, func(i, j int) bool { return actions[i].LastUsed.Before(actions[j].LastUsed) })
	now := time.Now()
	remove := map[string]bool{}
	for _, ar := range actions {
		if protected[ar.Key] {
			res.Protected++
			continue
		}
		if opts.OlderThan > 0 && now.Sub(ar.LastUsed) > opts.OlderThan {
			remove[ar.Key] = true
		}
	}
	live := func() (map[string]bool, error) {
		refs := map[string]bool{}
		for _, ar := range actions {
			if remove[ar.Key] {
				continue
			}
			for _, o := range ar.Outputs {
				refs[o.Digest] = true
				if o.Dir {
					if _, ok := metas[o.Digest]; !ok {
						continue
					}
					m, err := s.Manifest(o.Digest)
					if err != nil {
						return nil, err
					}
					for _, e := range m.Entries {
						refs[e.Digest] = true
					}
				}
			}
		}
		return refs, nil
	}
	refs, err := live()
	if err != nil {
		return res, err
	}
	if opts.MaxBytes > 0 {
		for _, ar := range actions {
			var total int64
			for d := range refs {
				total += metas[d].Size
			}
			if total <= opts.MaxBytes {
				break
			}
			if protected[ar.Key] || remove[ar.Key] {
				continue
			}
			remove[ar.Key] = true
			if refs, err = live(); err != nil {
				return res, err
			}
		}
	}
	res.ActionsRemoved = len(remove)
	res.ActionsKept = len(actions) - len(remove)
	var dead []string
	for d, m := range metas {
		if !refs[d] {
			dead = append(dead, d)
			res.BlobsRemoved++
			res.BytesFreed += m.Size
		}
	}
	sort.Strings(dead)
	// Orphan chunks: left by a crash between storing chunks and the commit
	// record. Only unlocked stores are gc'd, so no writer is mid-blob.
	var orphans []string
	err = s.scan(pfxChunk, false, func(key string, _ []byte) error {
		rest := strings.TrimPrefix(key, pfxChunk)
		if i := strings.IndexByte(rest, '/'); i > 0 {
			if _, ok := metas[rest[:i]]; !ok {
				orphans = append(orphans, key)
			}
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	res.ChunksRemoved = len(orphans)
	if opts.DryRun {
		return res, nil
	}
	var keys []string
	for k := range remove {
		keys = append(keys, pfxAction+k)
	}
	if err := s.delete(keys...); err != nil {
		return res, fmt.Errorf("gc: remove action results: %w", err)
	}
	for _, d := range dead {
		if err := s.deleteBlob(d, metas[d].Chunks); err != nil {
			return res, fmt.Errorf("gc: remove blob %s: %w", short(d), err)
		}
	}
	if err := s.delete(orphans...); err != nil {
		return res, fmt.Errorf("gc: remove orphan chunks: %w", err)
	}
	s.compact()
	return res, nil
}

// compact reclaims disk space after deletions: flatten the LSM tree and
// rewrite value-log files that are mostly garbage.
func (s *Store) compact() {
	_ = s.db.Flatten(1)
	for {
		if err := s.db.RunValueLogGC(0.5); err != nil {
			if err != badger.ErrNoRewrite {
				s.log.Debug("value log gc", "err", err)
			}
			return
		}
	}
}
