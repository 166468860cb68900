package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// decoder is one step of Hugging Face's decoder chain: it rewrites the list
// of token strings, and the final list is concatenated.
type decoder interface {
	decodeChain(tokens []string) []string
}

type seqDecoder []decoder

func (d seqDecoder) decodeChain(tokens []string) []string {
	for _, x := range d {
		tokens = x.decodeChain(tokens)
	}
	return tokens
}

type replaceDecoder struct{ replacement }

func (d replaceDecoder) decodeChain(tokens []string) []string {
	for i, t := range tokens {
		tokens[i] = d.apply(t)
	}
	return tokens
}

// byteFallbackDecoder turns runs of <0xNN> tokens into the bytes they stand
// for; a run that is not valid UTF-8 becomes one U+FFFD per byte token.
type byteFallbackDecoder struct{}

func parseByteToken(t string) (byte, bool) {
	if len(t) != 6 || !strings.HasPrefix(t, "<0x") || t[5] != '>' {
		return 0, false
	}
	hex := func(c byte) (byte, bool) {
		switch {
		case c >= '0' && c <= '9':
			return c - '0', true
		case c >= 'a' && c <= 'f':
			return c - 'a' + 10, true
		case c >= 'A' && c <= 'F':
			return c - 'A' + 10, true
		}
		return 0, false
	}
	lo, ok := hex(t[4])
	if !ok {
		return 0, false
	}
	if t[3] == '+' { // Rust's u8::from_str_radix accepts a sign
		return lo, true
	}
	hi, ok := hex(t[3])
	if !ok {
		return 0, false
	}
	return hi<<4 | lo, true
}

func (byteFallbackDecoder) decodeChain(tokens []string) []string {
	out := make([]string, 0, len(tokens))
	var pending []byte
	flush := func() {
		if len(pending) == 0 {
			return
		}
		if utf8.Valid(pending) {
			out = append(out, string(pending))
		} else {
			for range pending {
				out = append(out, "\uFFFD")
			}
		}
		pending = pending[:0]
	}
	for _, t := range tokens {
		if b, ok := parseByteToken(t); ok {
			pending = append(pending, b)
			continue
		}
		flush()
		out = append(out, t)
	}
	flush()
	return out
}

type fuseDecoder struct{}

func (fuseDecoder) decodeChain(tokens []string) []string {
	return []string{strings.Join(tokens, "")}
}

// stripDecoder removes up to start leading and stop trailing occurrences
// of content from each token.
type stripDecoder struct {
	content     rune
	start, stop int
}

func (d stripDecoder) decodeChain(tokens []string) []string {
	for i, t := range tokens {
		rs := []rune(t)
		lo := 0
		for lo < d.start && lo < len(rs) && rs[lo] == d.content {
			lo++
		}
		hi := len(rs)
		for k := 0; k < d.stop && hi > 0 && rs[hi-1] == d.content; k++ {
			hi--
		}
		if hi < lo {
			hi = lo
		}
		tokens[i] = string(rs[lo:hi])
	}
	return tokens
}

// byteLevelDecoder maps GPT-2 stand-in characters back to bytes (a token
// with a character outside the alphabet is kept as its UTF-8 bytes) and
// decodes the whole as lossy UTF-8.
type byteLevelDecoder struct{}

func (byteLevelDecoder) decodeChain(tokens []string) []string {
	var raw []byte
	for _, t := range tokens {
		var ok bool
		if raw, ok = byteLevelDecodeToken(raw, t); !ok {
			raw = append(raw, t...)
		}
	}
	return []string{string(appendLossy(nil, raw))}
}

// metaspaceDecoder turns the replacement character back into spaces; in
// the first token it is dropped instead unless the scheme is "never".
type metaspaceDecoder struct {
	replacement  rune
	prependNever bool
}

func (d metaspaceDecoder) decodeChain(tokens []string) []string {
	for i, t := range tokens {
		drop := i == 0 && !d.prependNever
		tokens[i] = strings.Map(func(r rune) rune {
			if r != d.replacement {
				return r
			}
			if drop {
				return -1
			}
			return ' '
		}, t)
	}
	return tokens
}

func parseDecoder(raw json.RawMessage, field string) (decoder, error) {
	if isNull(raw) {
		return nil, nil
	}
	typ, err := componentType(raw, field)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "Sequence":
		members, err := parseSequence(raw, field, "decoders", parseDecoder)
		if err != nil {
			return nil, err
		}
		var out seqDecoder
		for _, d := range members {
			if d != nil {
				out = append(out, d)
			}
		}
		return out, nil
	case "Replace":
		r, err := parseReplace(raw, field)
		if err != nil {
			return nil, err
		}
		return replaceDecoder{r}, nil
	case "ByteFallback":
		return byteFallbackDecoder{}, nil
	case "Fuse":
		return fuseDecoder{}, nil
	case "Strip":
		var s struct {
			Content string `json:"content"`
			Start   int    `json:"start"`
			Stop    int    `json:"stop"`
		}
		if err := decodeInto(raw, field, &s); err != nil {
			return nil, err
		}
		if utf8.RuneCountInString(s.Content) != 1 || s.Start < 0 || s.Stop < 0 {
			return nil, fmt.Errorf("%s (Strip): want one content character and non-negative start and stop", field)
		}
		r, _ := utf8.DecodeRuneInString(s.Content)
		return stripDecoder{content: r, start: s.Start, stop: s.Stop}, nil
	case "ByteLevel":
		return byteLevelDecoder{}, nil
	case "Metaspace":
		var m struct {
			Replacement    *string `json:"replacement"`
			PrependScheme  *string `json:"prepend_scheme"`
			AddPrefixSpace *bool   `json:"add_prefix_space"`
		}
		if err := decodeInto(raw, field, &m); err != nil {
			return nil, err
		}
		p, err := newMetaspace(m.Replacement, m.PrependScheme, m.AddPrefixSpace, field)
		if err != nil {
			return nil, err
		}
		r, _ := utf8.DecodeRuneInString(p.replacement)
		return metaspaceDecoder{replacement: r, prependNever: p.prepend == "never"}, nil
	}
	return nil, unsupported(field, typ, "Sequence", "Replace", "ByteFallback", "Fuse", "Strip", "ByteLevel", "Metaspace")
}

// maxHeldIDs bounds how many ids a StreamDecoder holds back waiting for
// an incomplete character.
const maxHeldIDs = 16

// StreamDecoder turns ids into text one at a time, as they are generated.
// It emits text only once it is complete: a character split across several
// byte tokens comes out when its last byte arrives. It follows Hugging
// Face's DecodeStream: the ids since the last emitted boundary are decoded
// again with each new id, so decoders that look at neighbours (Strip,
// Metaspace) behave as in a full Decode. Not safe for concurrent use.
type StreamDecoder struct {
	t           *Tokenizer
	skipSpecial bool
	ids         []int
	prefix      string
	prefixIndex int
}

// NewStreamDecoder starts a stream; skipSpecial drops special tokens such
// as EOS from the text.
func (t *Tokenizer) NewStreamDecoder(skipSpecial bool) *StreamDecoder {
	return &StreamDecoder{t: t, skipSpecial: skipSpecial}
}

// NewStreamDecoderAfter starts a stream that continues the text of
// context (the prompt's ids): the first id is not the start of a decode,
// so decoders that treat the start specially (Metaspace and Strip drop a
// leading space there) leave it alone, and what the stream emits is the
// decode of context+ids minus the decode of context, as in Hugging Face's
// DecodeStream given the prompt as its prefill. The context's own text is
// never emitted, except for a character its last ids leave incomplete
// (that comes out with the id that completes it).
func (t *Tokenizer) NewStreamDecoderAfter(context []int, skipSpecial bool) *StreamDecoder {
	d := t.NewStreamDecoder(skipSpecial)
	if len(context) == 0 {
		return d
	}
	d.ids = append(d.ids, context...)
	// The emitted boundary is the longest prefix of the context whose text
	// does not end in an incomplete character.
	for k := len(context); k >= max(0, len(context)-maxHeldIDs); k-- {
		if p := t.Decode(context[:k], skipSpecial); !strings.HasSuffix(p, "\uFFFD") || k == len(context)-maxHeldIDs {
			d.prefix, d.prefixIndex = p, k
			break
		}
	}
	return d
}

// Next adds one id and returns the text it completes ("" while a character
// is still incomplete). An error means the decoder chain rewrote text that
// was already emitted, which no llama-family tokenizer does.
func (d *StreamDecoder) Next(id int) (string, error) {
	if d.prefix == "" && len(d.ids) > 0 {
		if p := d.t.Decode(d.ids, d.skipSpecial); !strings.HasSuffix(p, "\uFFFD") {
			d.prefix = p
			d.prefixIndex = len(d.ids)
		}
	}
	d.ids = append(d.ids, id)
	s := d.t.Decode(d.ids, d.skipSpecial)
	// A character is at most 4 bytes, so a tail still invalid after many
	// more ids is garbage, not an unfinished character: emit it rather
	// than re-decoding an ever longer window.
	held := len(d.ids)-d.prefixIndex > maxHeldIDs
	if len(s) <= len(d.prefix) || strings.HasSuffix(s, "\uFFFD") && !held {
		return "", nil
	}
	if !strings.HasPrefix(s, d.prefix) {
		return "", fmt.Errorf("tokenizer: stream decode of id %d: text %q does not extend the text already emitted (%q)", id, s, d.prefix)
	}
	out := s[len(d.prefix):]
	newIndex := len(d.ids) - d.prefixIndex
	d.ids = append(d.ids[:0], d.ids[d.prefixIndex:]...)
	d.prefix = d.t.Decode(d.ids, d.skipSpecial)
	d.prefixIndex = newIndex
	return out, nil
}

// Flush returns the text still held back (an incomplete character comes
// out as U+FFFD) and resets the stream.
func (d *StreamDecoder) Flush() string {
	s := d.t.Decode(d.ids, d.skipSpecial)
	var out string
	if len(s) > len(d.prefix) && strings.HasPrefix(s, d.prefix) {
		out = s[len(d.prefix):]
	}
	d.ids, d.prefix, d.prefixIndex = d.ids[:0], "", 0
	return out
}
