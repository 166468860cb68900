package interop_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// python returns the interpreter of the pinned environment, or skips the
// test where MLBUILD_PYTHON is unset (fails under CI, whose .ci/run sets
// it, so that a CI run never passes without these comparisons).
func python(t *testing.T) string {
	t.Helper()
	py := os.Getenv("MLBUILD_PYTHON")
	if py == "" && os.Getenv("CI") != "" {
		t.Fatal("MLBUILD_PYTHON is unset under CI: .ci/run prepares the pinned Python environment with tools/python/env.sh and exports it")
	}
	if py == "" {
		t.Skip("MLBUILD_PYTHON is unset: this test compares with the Hugging Face libraries and needs the pinned " +
			"Python environment; prepare it with `export MLBUILD_PYTHON=$(tools/python/env.sh)` (.ci/run does)")
	}
	if _, err := os.Stat(py); err != nil {
		t.Fatalf("MLBUILD_PYTHON=%s: %v", py, err)
	}
	return py
}

// runScript runs scripts/NAME with args in the pinned environment, offline
// and on one thread, and returns its standard output. torch runs its AVX2
// CPU kernels (ATEN_CPU_CAPABILITY=avx2) even where the CPU has AVX-512, so
// that its float32 reductions sum in the order ml/nf4.Sum reproduces.
func runScript(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	py := python(t)
	cmd := exec.CommandContext(t.Context(), py, append([]string{filepath.Join("scripts", name)}, args...)...)
	cmd.Env = append(os.Environ(), "HF_HUB_OFFLINE=1", "TRANSFORMERS_OFFLINE=1", "HF_DATASETS_OFFLINE=1",
		"OMP_NUM_THREADS=1", "TOKENIZERS_PARALLELISM=false", "PYTHONHASHSEED=0", "ATEN_CPU_CAPABILITY=avx2",
		"HF_HOME="+t.TempDir(), "PYTHONDONTWRITEBYTECODE=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}
