package tokenizer

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// patternJSON is the {"String": ...} or {"Regex": ...} pattern object.
type patternJSON struct {
	String *string `json:"String"`
	Regex  *string `json:"Regex"`
}

func isNull(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s == "" || s == "null"
}

// componentType reads a component object's "type".
func componentType(raw json.RawMessage, field string) (string, error) {
	var t struct {
		Type *string `json:"type"`
	}
	if err := json.Unmarshal(raw, &t); err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	if t.Type == nil {
		return "", fmt.Errorf("%s: the component has no \"type\"", field)
	}
	return *t.Type, nil
}

func decodeInto(raw json.RawMessage, field string, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	return nil
}

// parseSequence parses the members of a Sequence component, listed under
// key, each with parse (which names it field.key[i] in errors).
func parseSequence[T any](raw json.RawMessage, field, key string, parse func(json.RawMessage, string) (T, error)) ([]T, error) {
	var s map[string]json.RawMessage
	if err := decodeInto(raw, field, &s); err != nil {
		return nil, err
	}
	var members []json.RawMessage
	if list, ok := s[key]; ok {
		if err := decodeInto(list, field+"."+key, &members); err != nil {
			return nil, err
		}
	}
	out := make([]T, 0, len(members))
	for i, r := range members {
		v, err := parse(r, fmt.Sprintf("%s.%s[%d]", field, key, i))
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// ---- normalizers ----

type normalizer interface {
	normalize(s string) string
}

type seqNormalizer []normalizer

func (n seqNormalizer) normalize(s string) string {
	for _, x := range n {
		s = x.normalize(s)
	}
	return s
}

// prependNormalizer prepends a string to any non-empty input.
type prependNormalizer string

func (p prependNormalizer) normalize(s string) string {
	if s == "" {
		return s
	}
	return string(p) + s
}

// replacement is a Replace component's rewrite, shared by the normalizer
// and the decoder of that name.
type replacement struct {
	from, to string
	re       *regexp.Regexp // when the pattern is a Regex
}

func (r replacement) apply(s string) string {
	if r.re != nil {
		return r.re.ReplaceAllLiteralString(s, r.to)
	}
	if r.from == "" {
		return s
	}
	return strings.ReplaceAll(s, r.from, r.to)
}

// parseReplace reads a Replace component: a String or Regex pattern and
// its replacement.
func parseReplace(raw json.RawMessage, field string) (replacement, error) {
	var r struct {
		Pattern patternJSON `json:"pattern"`
		Content string      `json:"content"`
	}
	if err := decodeInto(raw, field, &r); err != nil {
		return replacement{}, err
	}
	switch {
	case r.Pattern.String != nil:
		return replacement{from: *r.Pattern.String, to: r.Content}, nil
	case r.Pattern.Regex != nil:
		re, err := compileRegex(*r.Pattern.Regex)
		if err != nil {
			return replacement{}, fmt.Errorf("%s (Replace): %w", field, err)
		}
		return replacement{re: re, to: r.Content}, nil
	}
	return replacement{}, fmt.Errorf("%s (Replace): pattern needs String or Regex", field)
}

type replaceNormalizer struct{ replacement }

func (r replaceNormalizer) normalize(s string) string { return r.apply(s) }

type unicodeNormalizer struct{ form norm.Form }

func (u unicodeNormalizer) normalize(s string) string { return u.form.String(s) }

type lowercaseNormalizer struct{}

// normalize lowercases character by character as Rust's char::to_lowercase
// does: the simple mapping, except U+0130 which becomes "i\u0307".
func (lowercaseNormalizer) normalize(s string) string {
	return strings.Map(func(r rune) rune { return unicode.ToLower(r) }, strings.ReplaceAll(s, "\u0130", "i\u0307"))
}

type stripNormalizer struct{ left, right bool }

func (n stripNormalizer) normalize(s string) string {
	if n.left {
		s = strings.TrimLeftFunc(s, unicode.IsSpace)
	}
	if n.right {
		s = strings.TrimRightFunc(s, unicode.IsSpace)
	}
	return s
}

type stripAccentsNormalizer struct{}

func (stripAccentsNormalizer) normalize(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Me, r) || unicode.Is(unicode.Mc, r) {
			return -1
		}
		return r
	}, s)
}

func parseNormalizer(raw json.RawMessage, field string) (normalizer, error) {
	if isNull(raw) {
		return nil, nil
	}
	typ, err := componentType(raw, field)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "Sequence":
		members, err := parseSequence(raw, field, "normalizers", parseNormalizer)
		if err != nil {
			return nil, err
		}
		var out seqNormalizer
		for _, n := range members {
			if n != nil {
				out = append(out, n)
			}
		}
		if len(out) == 0 {
			return nil, nil
		}
		if len(out) == 1 {
			return out[0], nil
		}
		return out, nil
	case "Prepend":
		var p struct {
			Prepend string `json:"prepend"`
		}
		if err := decodeInto(raw, field, &p); err != nil {
			return nil, err
		}
		return prependNormalizer(p.Prepend), nil
	case "Replace":
		r, err := parseReplace(raw, field)
		if err != nil {
			return nil, err
		}
		return replaceNormalizer{r}, nil
	case "NFC":
		return unicodeNormalizer{norm.NFC}, nil
	case "NFD":
		return unicodeNormalizer{norm.NFD}, nil
	case "NFKC":
		return unicodeNormalizer{norm.NFKC}, nil
	case "NFKD":
		return unicodeNormalizer{norm.NFKD}, nil
	case "Lowercase":
		return lowercaseNormalizer{}, nil
	case "Strip":
		var s struct {
			Left  bool `json:"strip_left"`
			Right bool `json:"strip_right"`
		}
		if err := decodeInto(raw, field, &s); err != nil {
			return nil, err
		}
		return stripNormalizer{s.Left, s.Right}, nil
	case "StripAccents":
		return stripAccentsNormalizer{}, nil
	}
	return nil, unsupported(field, typ, "Sequence", "Prepend", "Replace", "NFC", "NFD", "NFKC", "NFKD", "Lowercase", "Strip", "StripAccents")
}

// compileRegex compiles a Hugging Face (Oniguruma) regex with Go's RE2
// engine, first widening \s to Unicode White_Space and \d to \p{Nd} as
// Oniguruma reads them. Lookaround and backreferences cannot be compiled.
func compileRegex(pat string) (*regexp.Regexp, error) {
	const ws = `\t\n\v\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}`
	var b strings.Builder
	inClass := false
	for i := 0; i < len(pat); i++ {
		c := pat[i]
		if c == '\\' && i+1 < len(pat) {
			d := pat[i+1]
			i++
			switch {
			case d == 's' && inClass:
				b.WriteString(ws)
			case d == 's':
				b.WriteString("[" + ws + "]")
			case d == 'S' && !inClass:
				b.WriteString("[^" + ws + "]")
			case d == 'd':
				b.WriteString(`\p{Nd}`)
			default:
				b.WriteByte('\\')
				b.WriteByte(d)
			}
			continue
		}
		switch c {
		case '[':
			if !inClass {
				inClass = true
				b.WriteByte(c)
				// A ']' right after '[' or '[^' is a literal.
				if i+1 < len(pat) && pat[i+1] == '^' {
					b.WriteByte('^')
					i++
				}
				if i+1 < len(pat) && pat[i+1] == ']' {
					b.WriteString(`\]`)
					i++
				}
				continue
			}
		case ']':
			inClass = false
		}
		b.WriteByte(c)
	}
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, fmt.Errorf("regex %q cannot be compiled by Go's regexp (no lookaround or backreferences): %w", pat, err)
	}
	return re, nil
}

// ---- pre-tokenizers ----

// preTokenizer splits one text segment into words for the model; emit is
// called with each word in order.
type preTokenizer interface {
	// split cuts s into words; first says that s begins at the start of
	// the input text, and emit receives the same for each word.
	split(s string, first bool, emit func(w string, first bool))
}

// splitBehavior is Hugging Face's SplitDelimiterBehavior.
type splitBehavior int

const (
	behaviorIsolated splitBehavior = iota
	behaviorRemoved
	behaviorMergedWithPrevious
	behaviorMergedWithNext
	behaviorContiguous
)

// splitPreTokenizer splits on a pattern and treats the matches according
// to the behavior.
type splitPreTokenizer struct {
	find     func(s string, emit func(start, end int))
	behavior splitBehavior
	invert   bool
}

type span struct {
	start, end int
	match      bool
}

func (p *splitPreTokenizer) split(s string, first bool, emit func(string, bool)) {
	if p.behavior == behaviorIsolated {
		// Matches and the gaps between them are all words: no bookkeeping.
		last := 0
		p.find(s, func(start, end int) {
			if start > last {
				emit(s[last:start], first && last == 0)
			}
			if end > start {
				emit(s[start:end], first && start == 0)
			}
			last = end
		})
		if last < len(s) {
			emit(s[last:], first && last == 0)
		}
		return
	}
	var spans []span
	last := 0
	p.find(s, func(start, end int) {
		if start > last {
			spans = append(spans, span{last, start, p.invert})
		}
		spans = append(spans, span{start, end, !p.invert})
		last = end
	})
	if last < len(s) {
		spans = append(spans, span{last, len(s), p.invert})
	}
	var out []span
	switch p.behavior {
	case behaviorRemoved:
		for _, sp := range spans {
			if !sp.match {
				out = append(out, sp)
			}
		}
	case behaviorContiguous:
		prev := false
		for _, sp := range spans {
			if sp.match == prev && len(out) > 0 {
				out[len(out)-1].end = sp.end
			} else {
				out = append(out, sp)
			}
			prev = sp.match
		}
	case behaviorMergedWithPrevious:
		prev := false
		for _, sp := range spans {
			if sp.match && !prev && len(out) > 0 {
				out[len(out)-1].end = sp.end
			} else {
				out = append(out, sp)
			}
			prev = sp.match
		}
	case behaviorMergedWithNext:
		prev := false
		for i := len(spans) - 1; i >= 0; i-- {
			sp := spans[i]
			if sp.match && !prev && len(out) > 0 {
				out[len(out)-1].start = sp.start
			} else {
				out = append(out, sp)
			}
			prev = sp.match
		}
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	for _, sp := range out {
		if sp.end > sp.start {
			emit(s[sp.start:sp.end], first && sp.start == 0)
		}
	}
}

// byteLevelPreTokenizer optionally prefixes a space and splits with the
// GPT-2 pattern; unless raw, it then maps every byte to its GPT-2 stand-in.
// In raw mode (ByteLevel is the last pre-tokenizer) the mapping is left to
// the model, whose vocabulary is keyed by the raw bytes instead.
type byteLevelPreTokenizer struct {
	addPrefixSpace bool
	useRegex       bool
	raw            bool
}

func (p *byteLevelPreTokenizer) split(s string, first bool, emit func(string, bool)) {
	if p.addPrefixSpace && !strings.HasPrefix(s, " ") {
		s = " " + s
	}
	enc := func(w string) string {
		if p.raw {
			return w
		}
		return byteLevelEncode(w)
	}
	if !p.useRegex {
		emit(enc(s), first)
		return
	}
	gpt2Split(s, func(start, end int) {
		emit(enc(s[start:end]), first && start == 0)
	})
}

// metaspacePreTokenizer replaces spaces with the replacement character and
// prepends one (always, or only to the first segment).
type metaspacePreTokenizer struct {
	replacement string
	prepend     string // "always", "first", "never"
	splitWords  bool
}

func (p *metaspacePreTokenizer) split(s string, first bool, emit func(string, bool)) {
	s = strings.ReplaceAll(s, " ", p.replacement)
	if !strings.HasPrefix(s, p.replacement) && (p.prepend == "always" || p.prepend == "first" && first) {
		s = p.replacement + s
	}
	if !p.splitWords {
		emit(s, first)
		return
	}
	// Split before each replacement character, keeping it with the word
	// that follows (MergedWithNext).
	start := 0
	for i := 1; i < len(s); i++ {
		if strings.HasPrefix(s[i:], p.replacement) {
			emit(s[start:i], first && start == 0)
			start = i
		}
	}
	if start < len(s) {
		emit(s[start:], first && start == 0)
	}
}

const (
	llama3Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	qwen2Pattern  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	gpt2Pattern   = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
)

// parsePreTokenizer reads a pre-tokenizer and flattens Sequences into the
// returned list.
func parsePreTokenizer(raw json.RawMessage, field string) ([]preTokenizer, error) {
	if isNull(raw) {
		return nil, nil
	}
	typ, err := componentType(raw, field)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "Sequence":
		members, err := parseSequence(raw, field, "pretokenizers", parsePreTokenizer)
		if err != nil {
			return nil, err
		}
		var out []preTokenizer
		for _, p := range members {
			out = append(out, p...)
		}
		return out, nil
	case "Split":
		var s struct {
			Pattern  patternJSON `json:"pattern"`
			Behavior string      `json:"behavior"`
			Invert   bool        `json:"invert"`
		}
		if err := decodeInto(raw, field, &s); err != nil {
			return nil, err
		}
		p := &splitPreTokenizer{invert: s.Invert}
		switch s.Behavior {
		case "Isolated":
			p.behavior = behaviorIsolated
		case "Removed":
			p.behavior = behaviorRemoved
		case "MergedWithPrevious":
			p.behavior = behaviorMergedWithPrevious
		case "MergedWithNext":
			p.behavior = behaviorMergedWithNext
		case "Contiguous":
			p.behavior = behaviorContiguous
		default:
			return nil, fmt.Errorf("%s (Split): behavior %q is not one of Isolated, Removed, MergedWithPrevious, MergedWithNext, Contiguous", field, s.Behavior)
		}
		// With Isolated every match and every gap is its own word, so
		// invert changes nothing; the other behaviors read it per span.
		switch {
		case s.Pattern.String != nil:
			lit := *s.Pattern.String
			if lit == "" {
				// An empty pattern matches between all characters.
				re := regexp.MustCompile("")
				p.find = func(str string, emit func(int, int)) {
					for _, m := range re.FindAllStringIndex(str, -1) {
						emit(m[0], m[1])
					}
				}
				break
			}
			p.find = func(str string, emit func(int, int)) {
				for off := 0; ; {
					i := strings.Index(str[off:], lit)
					if i < 0 {
						return
					}
					emit(off+i, off+i+len(lit))
					off += i + len(lit)
				}
			}
		case s.Pattern.Regex != nil:
			switch *s.Pattern.Regex {
			case llama3Pattern:
				p.find = llama3Split
			case qwen2Pattern:
				p.find = qwen2Split
			case gpt2Pattern:
				p.find = gpt2Split
			default:
				re, err := compileRegex(*s.Pattern.Regex)
				if err != nil {
					return nil, fmt.Errorf("%s (Split): %w; only the Llama-3, Qwen2 and GPT-2 patterns with lookahead are built in", field, err)
				}
				p.find = func(str string, emit func(int, int)) {
					for _, m := range re.FindAllStringIndex(str, -1) {
						emit(m[0], m[1])
					}
				}
			}
		default:
			return nil, fmt.Errorf("%s (Split): pattern needs String or Regex", field)
		}
		return []preTokenizer{p}, nil
	case "ByteLevel":
		var b struct {
			AddPrefixSpace *bool `json:"add_prefix_space"`
			UseRegex       *bool `json:"use_regex"`
		}
		if err := decodeInto(raw, field, &b); err != nil {
			return nil, err
		}
		return []preTokenizer{&byteLevelPreTokenizer{
			addPrefixSpace: b.AddPrefixSpace == nil || *b.AddPrefixSpace,
			useRegex:       b.UseRegex == nil || *b.UseRegex,
		}}, nil
	case "Metaspace":
		var m struct {
			Replacement    *string `json:"replacement"`
			PrependScheme  *string `json:"prepend_scheme"`
			AddPrefixSpace *bool   `json:"add_prefix_space"`
			Split          *bool   `json:"split"`
		}
		if err := decodeInto(raw, field, &m); err != nil {
			return nil, err
		}
		p, err := newMetaspace(m.Replacement, m.PrependScheme, m.AddPrefixSpace, field)
		if err != nil {
			return nil, err
		}
		p.splitWords = m.Split == nil || *m.Split
		return []preTokenizer{p}, nil
	}
	return nil, unsupported(field, typ, "Sequence", "Split", "ByteLevel", "Metaspace")
}

func newMetaspace(replacement, scheme *string, addPrefixSpace *bool, field string) (*metaspacePreTokenizer, error) {
	p := &metaspacePreTokenizer{replacement: "▁", prepend: "always", splitWords: true}
	if replacement != nil {
		if n := len([]rune(*replacement)); n != 1 {
			return nil, fmt.Errorf("%s (Metaspace): replacement %q must be one character", field, *replacement)
		}
		p.replacement = *replacement
	}
	if scheme != nil {
		p.prepend = *scheme
	}
	switch p.prepend {
	case "always", "never", "first":
	default:
		return nil, fmt.Errorf("%s (Metaspace): prepend_scheme %q is not one of always, first, never", field, p.prepend)
	}
	if addPrefixSpace != nil && !*addPrefixSpace {
		if p.prepend != "never" && scheme != nil {
			return nil, fmt.Errorf("%s (Metaspace): add_prefix_space does not match declared prepend_scheme", field)
		}
		p.prepend = "never"
	}
	return p, nil
}

// ---- post-processors ----

// postProcessor is what add_special_tokens adds around the encoded text.
type postProcessor struct {
	// template is the single-sequence template: ids to insert, with a nil
	// entry standing for the sequence itself.
	template [][]int
	prefix   []int // the ids before the (only) sequence
	suffix   []int // the ids after it
	general  bool  // the sequence appears other than exactly once
}

func (p *postProcessor) apply(dst []int, seq []int) []int {
	if !p.general {
		dst = append(dst, p.prefix...)
		dst = append(dst, seq...)
		return append(dst, p.suffix...)
	}
	for _, piece := range p.template {
		if piece == nil {
			dst = append(dst, seq...)
		} else {
			dst = append(dst, piece...)
		}
	}
	return dst
}

func newPostProcessor(template [][]int) *postProcessor {
	p := &postProcessor{template: template}
	seqs := 0
	for _, piece := range template {
		switch {
		case piece == nil:
			seqs++
		case seqs == 0:
			p.prefix = append(p.prefix, piece...)
		default:
			p.suffix = append(p.suffix, piece...)
		}
	}
	p.general = seqs != 1
	return p
}

func parsePostProcessor(raw json.RawMessage, field string) (*postProcessor, error) {
	if isNull(raw) {
		return nil, nil
	}
	typ, err := componentType(raw, field)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "ByteLevel":
		return nil, nil // only adjusts offsets
	case "TemplateProcessing":
		var tp struct {
			Single []struct {
				SpecialToken *struct {
					ID string `json:"id"`
				} `json:"SpecialToken"`
				Sequence *struct {
					ID string `json:"id"`
				} `json:"Sequence"`
			} `json:"single"`
			SpecialTokens map[string]struct {
				IDs []int `json:"ids"`
			} `json:"special_tokens"`
		}
		if err := decodeInto(raw, field, &tp); err != nil {
			return nil, err
		}
		var template [][]int
		for i, it := range tp.Single {
			switch {
			case it.SpecialToken != nil:
				st, ok := tp.SpecialTokens[it.SpecialToken.ID]
				if !ok {
					return nil, fmt.Errorf("%s (TemplateProcessing): single[%d] names special token %q, which special_tokens lacks", field, i, it.SpecialToken.ID)
				}
				ids := []int{}
				for _, id := range st.IDs {
					if id < 0 {
						return nil, fmt.Errorf("%s (TemplateProcessing): special token %q has negative id %d", field, it.SpecialToken.ID, id)
					}
					ids = append(ids, id)
				}
				template = append(template, ids)
			case it.Sequence != nil:
				template = append(template, nil)
			default:
				return nil, fmt.Errorf("%s (TemplateProcessing): single[%d] is neither SpecialToken nor Sequence", field, i)
			}
		}
		return newPostProcessor(template), nil
	case "BertProcessing", "RobertaProcessing":
		var bp struct {
			Sep []json.RawMessage `json:"sep"`
			Cls []json.RawMessage `json:"cls"`
		}
		if err := decodeInto(raw, field, &bp); err != nil {
			return nil, err
		}
		pair := func(name string, v []json.RawMessage) ([]int, error) {
			var id int
			if len(v) != 2 || json.Unmarshal(v[1], &id) != nil || id < 0 {
				return nil, fmt.Errorf("%s (%s): %s must be [token, id]", field, typ, name)
			}
			return []int{id}, nil
		}
		cls, err := pair("cls", bp.Cls)
		if err != nil {
			return nil, err
		}
		sep, err := pair("sep", bp.Sep)
		if err != nil {
			return nil, err
		}
		return newPostProcessor([][]int{cls, nil, sep}), nil
	case "Sequence":
		members, err := parseSequence(raw, field, "processors", parsePostProcessor)
		if err != nil {
			return nil, err
		}
		var out *postProcessor
		for _, p := range members {
			if p != nil {
				if out != nil {
					return nil, fmt.Errorf("%s (Sequence): more than one processor that adds tokens is not supported", field)
				}
				out = p
			}
		}
		return out, nil
	}
	return nil, unsupported(field, typ, "TemplateProcessing", "ByteLevel", "BertProcessing", "RobertaProcessing", "Sequence")
}
