package main

import (
	"context"
	"os"
	"sync"

	"github.com/mlbuild/mlbuild/cache"
	"github.com/mlbuild/mlbuild/cache/remote"
	"github.com/mlbuild/mlbuild/engine"
)

// remoteAdapter gives the engine a cache/remote backend. It remembers the
// blobs it found corrupt on the remote and, once a rebuild has produced
// them locally, uploads good copies over the bad ones (a plain push skips
// blobs the remote already has).
type remoteAdapter struct {
	local *cache.Store
	r     remote.Store

	mu      sync.Mutex
	corrupt map[string]bool
}

func (a *remoteAdapter) Pull(ctx context.Context, key string) (*cache.ActionResult, engine.TransferStats, error) {
	ar, st, err := remote.Pull(ctx, a.local, a.r, key)
	if d, ok := remote.CorruptBlob(err); ok {
		a.mu.Lock()
		if a.corrupt == nil {
			a.corrupt = map[string]bool{}
		}
		a.corrupt[d] = true
		a.mu.Unlock()
	}
	return ar, transferStats(st), err
}

func (a *remoteAdapter) Push(ctx context.Context, ar *cache.ActionResult) (engine.TransferStats, error) {
	a.mu.Lock()
	var bad []string
	for d := range a.corrupt {
		if ok, _ := a.local.HasBlob(d); ok {
			bad = append(bad, d)
			delete(a.corrupt, d)
		}
	}
	a.mu.Unlock()
	for _, d := range bad {
		if err := remote.Repair(ctx, a.local, a.r, d); err != nil {
			return engine.TransferStats{}, err
		}
	}
	st, err := remote.Push(ctx, a.local, a.r, ar)
	return transferStats(st), err
}

func (a *remoteAdapter) Unavailable(err error) bool { return remote.IsUnavailable(err) }
func (a *remoteAdapter) String() string             { return a.r.String() }

func transferStats(s remote.Stats) engine.TransferStats {
	return engine.TransferStats{Uploaded: s.Uploaded, Downloaded: s.Downloaded, Skipped: s.Skipped, BytesUp: s.BytesUp, BytesDown: s.BytesDown}
}

// remoteConfig resolves the remote cache: MLBUILD_REMOTE (and
// MLBUILD_REMOTE_MODE) override the pipeline's cache block;
// MLBUILD_REMOTE=off disables it.
func remoteConfig(p *engine.Pipeline) (url string, mode engine.RemoteMode) {
	url, mode = p.Cache.Remote, p.Cache.Mode
	if v, ok := os.LookupEnv("MLBUILD_REMOTE"); ok {
		url = v
	}
	if v := os.Getenv("MLBUILD_REMOTE_MODE"); v != "" {
		mode = engine.RemoteMode(v)
	}
	if url == "off" {
		url = ""
	}
	return url, mode
}

// useRemote connects the engine to the configured remote cache, if any.
// It returns a function that closes the connection. Closing a remote only
// releases its connections (each upload is whole once PutBlob returns), so
// its error is not reported.
func useRemote(ctx context.Context, p *engine.Pipeline, e *engine.Engine) (func(), error) {
	url, mode := remoteConfig(p)
	if url == "" {
		return func() {}, nil
	}
	r, err := remote.Open(ctx, url, remote.Options{})
	if err != nil {
		return nil, err
	}
	if err := e.UseRemote(&remoteAdapter{local: e.Store(), r: r}, mode); err != nil {
		_ = r.Close()
		return nil, err
	}
	return func() { _ = r.Close() }, nil
}
