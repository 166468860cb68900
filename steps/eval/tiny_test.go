package eval

import (
	"testing"

	"github.com/mlbuild/mlbuild/internal/tinymodel"
)

// writeTinyModel writes a random 2-layer Llama with a character-level
// tokenizer (printable ASCII and newline) into a temporary directory. With
// specialTags the chat tags ("<|user|>" ...) are special tokens of their
// own; without, they are spelled character by character.
func writeTinyModel(t *testing.T, seed uint64, specialTags bool) string {
	t.Helper()
	dir := t.TempDir()
	spec := tinymodel.Spec{Seed: seed, VocabSize: 128, MaxPositions: 4096, Chars: []string{"\n"}}
	if specialTags {
		spec.Specials = twainbot().SpecialTokens
	}
	for c := ' '; c <= '~'; c++ {
		spec.Chars = append(spec.Chars, string(c))
	}
	must(t, tinymodel.Write(dir, spec))
	return dir
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
