// Package tokenizer encodes and decodes text with Hugging Face
// tokenizer.json files of the BPE family, giving exactly the ids of Hugging
// Face's own (Rust) tokenizers library: SentencePiece-style BPE with byte
// fallback and the ▁ metaspace (Llama-2, Mistral, Phi-3) and byte-level
// BPE with a regex pre-tokenizer and ignore_merges (Llama-3, GPT-2, Qwen2).
//
// The encoding pipeline is the reference's: added tokens that are not
// normalized are cut out of the raw text first (so literal "<s>" or
// "<|eot_id|>" in the input becomes that token), each remaining piece is
// normalized, normalized added tokens are cut out, the rest is
// pre-tokenized into words, and every word is run through BPE. With
// addSpecial, the post-processor's template (e.g. BOS) is applied.
//
// Decoding follows the file's decoder chain, as the reference does. For
// byte-level tokenizers (Llama-3) Decode(Encode(x)) == x for every valid
// UTF-8 string, literal special-token text included. For Mistral's
// SentencePiece-style file it holds except when x contains U+2581 (▁, the
// metaspace, which decodes to a space) or literal added-token text such as
// "<s>" (the text after it gets its own ▁ prefix and so an extra space);
// the reference behaves the same. Text that is not valid UTF-8 comes back
// with U+FFFD in place of the bad bytes.
//
// NewStreamDecoder decodes ids one at a time for generation, holding text
// back until its characters are complete; NewStreamDecoderAfter does so
// for a continuation of a prompt (its first id is not the start of a
// text, so a leading space stays).
//
// Supported components: normalizers Sequence, Prepend, Replace, NFC, NFD,
// NFKC, NFKD, Lowercase, Strip, StripAccents; pre-tokenizers Sequence,
// Split (the Llama-3, Qwen2 and GPT-2 patterns built in, others through
// Go's regexp), ByteLevel, Metaspace; model BPE (byte_fallback, unk and
// fuse_unk, ignore_merges); post-processors TemplateProcessing, ByteLevel,
// Bert/RobertaProcessing, Sequence; decoders Sequence, Replace,
// ByteFallback, Fuse, Strip, ByteLevel, Metaspace. Anything else is refused
// with an error naming the component and the file.
//
// A Tokenizer is safe for concurrent use.
package tokenizer

import (
	"strings"
)

// Tokenizer is a loaded tokenizer.json.
type Tokenizer struct {
	model      *bpe
	normalizer normalizer
	pre        []preTokenizer
	post       *postProcessor
	decoder    decoder

	addedByID      map[int]*addedToken
	addedByContent map[string]int
	special        map[string]bool // contents of special added tokens
	rawMatcher     *addedMatcher   // added tokens with normalized=false
	normMatcher    *addedMatcher   // added tokens with normalized=true

	vocabSize     int
	bos, eos, pad int
}

// Encode returns the ids of text. With addSpecial the post-processor adds
// the tokenizer's special tokens (Mistral: BOS in front; the Llama-3 file
// used here adds nothing).
func (t *Tokenizer) Encode(text string, addSpecial bool) []int {
	ids := make([]int, 0, len(text)/3+4)
	if !addSpecial || t.post == nil {
		return t.encodeText(ids, text)
	}
	if !t.post.general {
		ids = append(ids, t.post.prefix...)
		ids = t.encodeText(ids, text)
		return append(ids, t.post.suffix...)
	}
	return t.post.apply(nil, t.encodeText(ids, text))
}

// AppendEncode is Encode appending to dst, for callers that reuse buffers.
func (t *Tokenizer) AppendEncode(dst []int, text string, addSpecial bool) []int {
	if !addSpecial || t.post == nil {
		return t.encodeText(dst, text)
	}
	if !t.post.general {
		dst = append(dst, t.post.prefix...)
		dst = t.encodeText(dst, text)
		return append(dst, t.post.suffix...)
	}
	n := len(dst)
	seq := t.encodeText(nil, text)
	return t.post.apply(dst[:n], seq)
}

func (t *Tokenizer) encodeText(dst []int, text string) []int {
	var segs []segment
	if t.rawMatcher != nil {
		segs = t.rawMatcher.split(text)
	}
	if segs == nil {
		return t.encodeSegment(dst, text, true)
	}
	for _, sg := range segs {
		if sg.tok != nil {
			dst = append(dst, sg.tok.ID)
			continue
		}
		dst = t.encodeSegment(dst, text[sg.start:sg.end], sg.start == 0)
	}
	return dst
}

// encodeSegment encodes a piece of raw text free of non-normalized added
// tokens; first says it starts the input (for Metaspace's "first" scheme).
func (t *Tokenizer) encodeSegment(dst []int, s string, first bool) []int {
	if s == "" {
		return dst
	}
	if t.normalizer != nil {
		if s = t.normalizer.normalize(s); s == "" {
			return dst
		}
	}
	var segs []segment
	if t.normMatcher != nil {
		segs = t.normMatcher.split(s)
	}
	if segs == nil {
		return t.preTokenize(dst, s, first)
	}
	for _, sg := range segs {
		if sg.tok != nil {
			dst = append(dst, sg.tok.ID)
			continue
		}
		dst = t.preTokenize(dst, s[sg.start:sg.end], first && sg.start == 0)
	}
	return dst
}

type encState struct{ ids []int }

func (t *Tokenizer) preTokenize(dst []int, s string, first bool) []int {
	if len(t.pre) == 0 {
		return t.model.tokenize(dst, s)
	}
	e := &encState{ids: dst}
	t.runPre(e, 0, s, first)
	return e.ids
}

func (t *Tokenizer) runPre(e *encState, stage int, s string, first bool) {
	if stage == len(t.pre) {
		e.ids = t.model.tokenize(e.ids, s)
		return
	}
	if stage == len(t.pre)-1 {
		t.pre[stage].split(s, first, func(w string, _ bool) { e.ids = t.model.tokenize(e.ids, w) })
		return
	}
	t.pre[stage].split(s, first, func(w string, f bool) { t.runPre(e, stage+1, w, f) })
}

// token returns the string of id as decoding sees it: an added token's
// (normalized) text, else the model's token.
func (t *Tokenizer) token(id int) (string, bool) {
	if a, ok := t.addedByID[id]; ok {
		return a.pattern, true
	}
	if id >= 0 && id < len(t.model.idToTok) {
		if s := t.model.idToTok[id]; s != "" {
			return s, true
		}
		if _, ok := t.model.vocab[""]; ok && t.model.vocab[""] == id {
			return "", true
		}
	}
	return "", false
}

// Decode returns the text of ids. Unknown ids are skipped; with
// skipSpecial so are special tokens (BOS, EOS, ...). Invalid UTF-8 from
// byte tokens becomes U+FFFD as in the reference.
func (t *Tokenizer) Decode(ids []int, skipSpecial bool) string {
	toks := make([]string, 0, len(ids))
	for _, id := range ids {
		s, ok := t.token(id)
		if !ok || skipSpecial && t.special[s] {
			continue
		}
		toks = append(toks, s)
	}
	if t.decoder == nil {
		return strings.Join(toks, " ")
	}
	return strings.Join(t.decoder.decodeChain(toks), "")
}

// TokenID returns the id of a token string (an added token's content or a
// vocabulary entry, e.g. "<s>", "<|eot_id|>", "▁the", "Ġthe").
func (t *Tokenizer) TokenID(s string) (int, bool) {
	if id, ok := t.addedByContent[s]; ok {
		return id, true
	}
	id, ok := t.model.vocab[s]
	return id, ok
}

// IDToken returns the token string of id, as the reference's id_to_token.
func (t *Tokenizer) IDToken(id int) (string, bool) { return t.token(id) }

// IsSpecial reports whether id is a special added token.
func (t *Tokenizer) IsSpecial(id int) bool {
	a, ok := t.addedByID[id]
	return ok && a.Special
}

// VocabSize is one more than the largest id: the number of embedding rows
// a model needs (Mistral 32000, Llama-3 128256).
func (t *Tokenizer) VocabSize() int { return t.vocabSize }

// BOS returns the beginning-of-sequence id, or -1. tokenizer_config.json's
// bos_token decides when present; else the post-processor's leading
// special token or a usual name.
func (t *Tokenizer) BOS() int { return t.bos }

// EOS returns the end-of-sequence id, or -1 (tokenizer_config.json's
// eos_token, else a usual name such as "</s>" or "<|end_of_text|>").
func (t *Tokenizer) EOS() int { return t.eos }

// Pad returns tokenizer_config.json's pad_token id, or -1.
func (t *Tokenizer) Pad() int { return t.pad }
