package llama

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/mlbuild/mlbuild/ml/gguf"
)

// ModelDir resolves a model path to a Hugging Face model directory. A
// directory is returned as it is. A GGUF file (llama architecture; named
// .gguf, or any file that starts with GGUF's magic, such as a download
// step's output) is
// converted once into a directory under the user cache
// (mlbuild/gguf/<sha256 of the file>, written in a temporary folder and
// renamed into place) whose path is returned; later calls find it there.
func ModelDir(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil || st.IsDir() || (!strings.HasSuffix(strings.ToLower(path), ".gguf") && !hasGGUFMagic(path)) {
		return path, nil // Open reports a missing or wrong path
	}
	sum, err := fileSHA256(path)
	if err != nil {
		return "", fmt.Errorf("model %s: %w", path, err)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("model %s: no cache directory for its conversion: %w", path, err)
	}
	root := filepath.Join(cache, "mlbuild", "gguf")
	dir := filepath.Join(root, sum)
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("model %s: %w", path, err)
	}
	tmp, err := os.MkdirTemp(root, sum+".tmp-")
	if err != nil {
		return "", fmt.Errorf("model %s: %w", path, err)
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	f, err := gguf.Open(path)
	if err != nil {
		return "", fmt.Errorf("cannot load model %s: %w", path, err)
	}
	if err := gguf.ConvertLlama(f, tmp); err != nil {
		return "", fmt.Errorf("cannot load model %s: %w", path, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, statErr := os.Stat(filepath.Join(dir, "config.json")); statErr == nil {
			return dir, nil // another process converted it first
		}
		return "", fmt.Errorf("model %s: %w", path, err)
	}
	return dir, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }() // read-only
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hasGGUFMagic reports whether the file at path starts with "GGUF".
func hasGGUFMagic(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer func() { _ = f.Close() }()
	var magic [4]byte
	_, err = io.ReadFull(f, magic[:])
	return err == nil && string(magic[:]) == gguf.Magic
}
