package tokenizer_test

import (
	"strings"
	"testing"

	"github.com/mlbuild/mlbuild/ml/tokenizer"
)

// streamAll feeds ids through d and returns the text it emits.
func streamAll(t *testing.T, d *tokenizer.StreamDecoder, ids []int) string {
	t.Helper()
	var b strings.Builder
	for _, id := range ids {
		piece, err := d.Next(id)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(piece)
	}
	b.WriteString(d.Flush())
	return b.String()
}

// A continuation is not the start of a decode: "the" continued by "▁cat"
// is "the cat", so the stream emits " cat", where a stream with no context
// drops the leading space as a decode's start does (SentencePiece's
// Strip and Metaspace decoders). In every case the text is the decode of
// context+ids minus the decode of context.
func TestStreamDecoderAfterKeepsLeadingSpace(t *testing.T) {
	tok, err := tokenizer.Parse([]byte(tinyJSON))
	if err != nil {
		t.Fatal(err)
	}
	prompt := tok.Encode("the", true)
	cont := tok.Encode("the cat café sat", false)[1:] // ▁cat ▁c a f <0xC3> <0xA9> ▁sat
	if got := streamAll(t, tok.NewStreamDecoder(true), cont); got != "cat café sat" {
		t.Errorf("no context: %q", got)
	}
	if got := streamAll(t, tok.NewStreamDecoderAfter(prompt, true), cont); got != " cat café sat" {
		t.Errorf("after %v: %q, want \" cat café sat\"", prompt, got)
	}
	full := tok.Decode(append(append([]int(nil), prompt...), cont...), true)
	if want := strings.TrimPrefix(full, tok.Decode(prompt, true)); want != " cat café sat" {
		t.Errorf("full decode %q", full)
	}

	// A context that ends inside a character: the character comes out
	// whole with the id that completes it.
	cafe := tok.Encode("the café", true) // ... <0xC3> <0xA9>
	n := len(cafe)
	if got := streamAll(t, tok.NewStreamDecoderAfter(cafe[:n-1], true), cafe[n-1:]); got != "é" {
		t.Errorf("completing a character: %q", got)
	}
	// No context is a plain stream.
	if got := streamAll(t, tok.NewStreamDecoderAfter(nil, true), cont); got != "cat café sat" {
		t.Errorf("nil context: %q", got)
	}
}
