package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/mlbuild/mlbuild/cache"
)

// StateMaxAge is how long `cache gc` keeps a checkpoint folder that
// nothing wrote to when it is given no --older-than.
const StateMaxAge = 7 * 24 * time.Hour

// StateGCOptions tune CollectState.
type StateGCOptions struct {
	// OlderThan: folders not written for longer are removed (0:
	// StateMaxAge).
	OlderThan time.Duration
	DryRun    bool
	// NoWait and Log are as in Options, for the workspace lock.
	NoWait bool
	Log    *slog.Logger
}

// StateGCResult counts what CollectState removed (or, with DryRun, would
// remove).
type StateGCResult struct {
	Removed int   `json:"state_dirs_removed"`
	Bytes   int64 `json:"state_bytes_freed"`
	Kept    int   `json:"state_dirs_kept"`
}

// CollectState removes the workspace's checkpoint folders
// (build/.state/KEY) that nothing wrote to for opts.OlderThan: those of
// interrupted runs of keys that are not run again (another config,
// another input) would otherwise stay for ever. A folder's age is that of
// the newest file or folder in it, since a training step writes a
// checkpoint every few steps. It holds the workspace lock meanwhile, so it
// never removes the checkpoints of a step that is running; call it without
// holding the cache's lock (the workspace is always locked first).
func CollectState(ctx context.Context, workspace string, opts StateGCOptions) (StateGCResult, error) {
	var res StateGCResult
	if opts.OlderThan <= 0 {
		opts.OlderThan = StateMaxAge
	}
	ws, err := filepath.Abs(workspace)
	if err != nil {
		return res, err
	}
	bd := filepath.Join(ws, BuildDirName)
	root := filepath.Join(bd, ".state")
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		return res, nil
	}
	lock, err := cache.AcquireLock(ctx, filepath.Join(bd, ".lock"), "the workspace "+ws, opts.NoWait, opts.Log)
	if err != nil {
		return res, err
	}
	defer lock.Release()
	entries, err := os.ReadDir(root)
	if err != nil {
		return res, err
	}
	cutoff := time.Now().Add(-opts.OlderThan)
	for _, ent := range entries {
		dir := filepath.Join(root, ent.Name())
		newest, size, err := treeAge(dir)
		if err != nil {
			return res, err
		}
		if newest.After(cutoff) {
			res.Kept++
			continue
		}
		if !opts.DryRun {
			if err := os.RemoveAll(dir); err != nil {
				return res, fmt.Errorf("remove stale checkpoints %s: %w", dir, err)
			}
		}
		res.Removed++
		res.Bytes += size
	}
	return res, nil
}

// treeAge is the newest modification time in the tree at root and the
// size of its files.
func treeAge(root string) (time.Time, int64, error) {
	var newest time.Time
	var size int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.ModTime().After(newest) {
			newest = fi.ModTime()
		}
		if fi.Mode().IsRegular() {
			size += fi.Size()
		}
		return nil
	})
	return newest, size, err
}
