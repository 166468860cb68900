package tokenizer_test

import (
	"fmt"
	"log"

	"github.com/mlbuild/mlbuild/ml/tokenizer"
)

// tinyJSON is a tokenizer.json in the layout of Mistral's (SentencePiece
// BPE: spaces become ▁, unknown characters fall back to byte tokens), with
// a vocabulary of 21 tokens.
const tinyJSON = `{
  "version": "1.0",
  "added_tokens": [
    {"id": 0, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 1, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 2, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
  ],
  "normalizer": {"type": "Sequence", "normalizers": [
    {"type": "Prepend", "prepend": "▁"},
    {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
  "pre_tokenizer": null,
  "post_processor": {"type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
    "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
  "decoder": {"type": "Sequence", "decoders": [
    {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
    {"type": "ByteFallback"}, {"type": "Fuse"},
    {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
  "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": true,
    "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "<0xC3>": 3, "<0xA9>": 4,
      "▁": 5, "a": 6, "c": 7, "e": 8, "f": 9, "h": 10, "s": 11, "t": 12,
      "▁t": 13, "he": 14, "▁the": 15, "at": 16, "▁c": 17, "▁cat": 18, "▁s": 19, "▁sat": 20},
    "merges": ["▁ t", "h e", "▁t he", "a t", "▁ c", "▁c at", "▁ s", "▁s at"]}
}`

// Encode a sentence and decode it back. tokenizer.Load reads the same
// file from a path or a model directory, with the BOS and EOS tokens of
// the tokenizer_config.json beside it.
func Example() {
	tok, err := tokenizer.Parse([]byte(tinyJSON))
	if err != nil {
		log.Fatal(err)
	}

	ids := tok.Encode("the cat sat", true) // true: add BOS, as the post-processor says
	fmt.Println(ids)
	var toks []string
	for _, id := range ids {
		s, _ := tok.IDToken(id)
		toks = append(toks, s)
	}
	fmt.Printf("%q\n", toks)
	fmt.Printf("%q\n", tok.Decode(ids, false))
	fmt.Printf("%q\n", tok.Decode(ids, true)) // true: skip special tokens

	// "é" has no token of its own: it is encoded as its UTF-8 bytes.
	ids = tok.Encode("the café", false)
	fmt.Println(ids, tok.Decode(ids, false))

	// Output:
	// [1 15 18 20]
	// ["<s>" "▁the" "▁cat" "▁sat"]
	// "<s> the cat sat"
	// "the cat sat"
	// [15 17 6 9 3 4] the café
}

// A StreamDecoder turns ids into text one at a time, as a model generates
// them, holding text back until its characters are complete.
func ExampleTokenizer_NewStreamDecoder() {
	tok, err := tokenizer.Parse([]byte(tinyJSON))
	if err != nil {
		log.Fatal(err)
	}
	dec := tok.NewStreamDecoder(true) // true: skip special tokens (BOS here)
	for _, id := range tok.Encode("the café", true) {
		piece, err := dec.Next(id)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%d → %q\n", id, piece)
	}
	fmt.Printf("flush → %q\n", dec.Flush())

	// Output:
	// 1 → ""
	// 15 → "the"
	// 17 → " c"
	// 6 → "a"
	// 9 → "f"
	// 3 → ""
	// 4 → "é"
	// flush → ""
}
