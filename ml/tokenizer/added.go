package tokenizer

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// addedToken is one entry of tokenizer.json's added_tokens.
type addedToken struct {
	addedTokenJSON
	// pattern is what is matched and what decoding shows: the content, or
	// its normalized form for a normalized token.
	pattern string
}

// addedMatcher finds added tokens in a text: leftmost-longest,
// non-overlapping matches (the reference uses an Aho-Corasick automaton in
// that mode), then the single_word, lstrip and rstrip rules.
type addedMatcher struct {
	nodes []trieNode
	first [256]bool
	// oneFirst is the first byte shared by all tokens, or -1: then
	// candidates are found with strings.IndexByte.
	oneFirst int
}

type trieNode struct {
	edges []trieEdge
	tok   *addedToken
}

type trieEdge struct {
	b  byte
	to int32
}

func newAddedMatcher(toks []*addedToken) *addedMatcher {
	if len(toks) == 0 {
		return nil
	}
	m := &addedMatcher{nodes: []trieNode{{}}, oneFirst: -1}
	for _, t := range toks {
		p := t.pattern
		if p == "" {
			continue
		}
		m.first[p[0]] = true
		n := int32(0)
	bytes:
		for i := 0; i < len(p); i++ {
			for _, e := range m.nodes[n].edges {
				if e.b == p[i] {
					n = e.to
					continue bytes
				}
			}
			m.nodes = append(m.nodes, trieNode{})
			next := int32(len(m.nodes) - 1)
			m.nodes[n].edges = append(m.nodes[n].edges, trieEdge{p[i], next})
			n = next
		}
		m.nodes[n].tok = t
	}
	if len(m.nodes) == 1 {
		return nil
	}
	firsts := 0
	for b, ok := range m.first {
		if ok {
			firsts++
			m.oneFirst = b
		}
	}
	if firsts != 1 {
		m.oneFirst = -1
	}
	return m
}

// longestAt returns the longest token that starts at s[i], or nil.
func (m *addedMatcher) longestAt(s string, i int) (*addedToken, int) {
	var best *addedToken
	end := 0
	n := int32(0)
	for j := i; j < len(s); j++ {
		next := int32(-1)
		for _, e := range m.nodes[n].edges {
			if e.b == s[j] {
				next = e.to
				break
			}
		}
		if next < 0 {
			break
		}
		n = next
		if t := m.nodes[n].tok; t != nil {
			best, end = t, j+1
		}
	}
	return best, end
}

// segment is a piece of text between added tokens (tok nil) or an added
// token's span.
type segment struct {
	start, end int
	tok        *addedToken
}

// split cuts s at the added tokens it holds. It returns nil when there is
// none, so that the caller can take the whole text as one piece.
func (m *addedMatcher) split(s string) []segment {
	var segs []segment
	startOffset := 0
	for i := 0; i < len(s); {
		if m.oneFirst >= 0 {
			k := strings.IndexByte(s[i:], byte(m.oneFirst))
			if k < 0 {
				break
			}
			i += k
		} else if !m.first[s[i]] {
			i++
			continue
		}
		tok, stop := m.longestAt(s, i)
		if tok == nil {
			i++
			continue
		}
		start := i
		i = stop
		if tok.SingleWord {
			startSpace := start == 0 || !endsWithWord(s[:start])
			stopSpace := stop == len(s) || !startsWithWord(s[stop:])
			if !startSpace || !stopSpace {
				continue
			}
		}
		if tok.LStrip {
			start = max(len(strings.TrimRightFunc(s[:start], unicode.IsSpace)), startOffset)
		}
		if tok.RStrip {
			stop += len(s[stop:]) - len(strings.TrimLeftFunc(s[stop:], unicode.IsSpace))
		}
		if startOffset < start {
			segs = append(segs, segment{startOffset, start, nil})
		}
		segs = append(segs, segment{start, stop, tok})
		startOffset = stop
	}
	if segs == nil {
		return nil
	}
	if startOffset < len(s) {
		segs = append(segs, segment{startOffset, len(s), nil})
	}
	return segs
}

// isWordChar is Rust regex's Unicode \w: Alphabetic, marks, decimal
// digits, connector punctuation and join controls.
func isWordChar(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsMark(r) || unicode.Is(unicode.Nd, r) || unicode.Is(unicode.Nl, r) ||
		unicode.Is(unicode.Pc, r) || unicode.Is(unicode.Other_Alphabetic, r) || unicode.Is(unicode.Join_Control, r)
}

func endsWithWord(s string) bool {
	r, n := utf8.DecodeLastRuneInString(s)
	return n > 0 && isWordChar(r)
}

func startsWithWord(s string) bool {
	r, n := utf8.DecodeRuneInString(s)
	return n > 0 && isWordChar(r)
}
