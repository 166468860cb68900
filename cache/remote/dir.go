package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// dirObjects is a directory as a bucket (file:///path): an object is the
// file at its key's path below the directory. Put writes a temporary file
// beside the final name (so the rename never crosses file systems) and
// renames it into place, so a reader on another machine of the share sees
// the old object or the whole new one, never a partial one. No metadata
// files are written.
type dirObjects struct {
	root string
}

// dirTempPrefix starts the names of Put's temporary files, which Stat and
// Open never take for objects (keys are "cas/<hex>" or "ac/<hex>").
const dirTempPrefix = ".mlbuild-tmp-"

// openDir opens the directory of a file:// URL: it must exist unless
// create is set, in which case it is created.
func openDir(root string, create bool) (*dirObjects, error) {
	if create {
		if err := os.MkdirAll(root, 0o755); err != nil {
			return nil, err
		}
	}
	fi, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("%w (is the shared directory mounted? add ?create_dir=true to create it)", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", root)
	}
	return &dirObjects{root: root}, nil
}

// path is the file of key, refusing keys that would leave the directory.
func (d *dirObjects) path(key string) (string, error) {
	if key == "" || !fs.ValidPath(key) || strings.Contains(key, "\\") {
		return "", fmt.Errorf("object name %q is not a clean relative path", key)
	}
	return filepath.Join(d.root, filepath.FromSlash(key)), nil
}

func (d *dirObjects) Stat(_ context.Context, key string) (int64, error) {
	p, err := d.path(key)
	if err != nil {
		return 0, err
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, errNoObject
	}
	if err != nil {
		return 0, err
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("%s is not a regular file", p)
	}
	return fi.Size(), nil
}

func (d *dirObjects) Open(_ context.Context, key string) (io.ReadCloser, int64, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, errNoObject
	}
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", p)
	}
	if err != nil {
		_ = f.Close() // read-only
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

func (d *dirObjects) Put(ctx context.Context, key, _ string, size int64, r io.Reader) (err error) {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), dirTempPrefix+"*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()           // already failed
			_ = os.Remove(tmp.Name()) // best effort: the failure is reported
		}
	}()
	if _, err := io.Copy(tmp, ctxReader{ctx: ctx, r: r}); err != nil {
		return err
	}
	// Durable before it is visible: a crash must not leave a named object
	// with missing content on the share.
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// Readable by the team, as a file the share's umask would give.
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}

func (d *dirObjects) Close() error { return nil }

// ctxReader fails reads once ctx has ended, so that a cancelled upload to
// a directory stops as one to a server does.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
