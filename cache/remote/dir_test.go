package remote

import (
	"io/fs"
	"path/filepath"
	"slices"
	"testing"
)

// The directory store passes the objectStore suite, and leaves no
// temporary file behind.
func TestDirObjectStore(t *testing.T) {
	root := t.TempDir()
	d, err := openDir(root, false)
	if err != nil {
		t.Fatal(err)
	}
	files := func() []string {
		var out []string
		_ = filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err == nil && !e.IsDir() {
				rel, _ := filepath.Rel(root, p)
				out = append(out, filepath.ToSlash(rel))
			}
			return nil
		})
		slices.Sort(out)
		return out
	}
	testObjectStore(t, d, "team/", files)
	for _, f := range files() {
		if filepath.Base(f)[0] == '.' {
			t.Errorf("temporary file left: %s", f)
		}
	}
	if _, err := d.Stat(t.Context(), "../outside"); err == nil {
		t.Error("a key leaving the directory was accepted")
	}
}
