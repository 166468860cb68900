package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// Hand-written equivalents of the pre-tokenizer regexes that Go's regexp
// cannot run (they use the lookahead \s+(?!\S)). Each scanner reproduces
// the regex's leftmost-first alternation with backtracking exactly, so the
// words it emits are those of Hugging Face's (Oniguruma) find_iter:
//
//   Llama-3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//   GPT-2:   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// \s is Unicode White_Space (unicode.IsSpace), \p{L} unicode.IsLetter and
// \p{N} unicode.IsNumber. A byte that is not valid UTF-8 (impossible in
// Hugging Face, whose input is a Rust str) counts as one "other" character.

const (
	clsL = 1 << iota
	clsN
	clsS
)

var asciiClass [utf8.RuneSelf]uint8

func init() {
	for c := 0; c < utf8.RuneSelf; c++ {
		r := rune(c)
		switch {
		case unicode.IsLetter(r):
			asciiClass[c] = clsL
		case unicode.IsNumber(r):
			asciiClass[c] = clsN
		case unicode.IsSpace(r):
			asciiClass[c] = clsS
		}
	}
}

// classAt returns the class bits and the byte width of the character at s[i].
func classAt(s string, i int) (r rune, cls uint8, n int) {
	c := s[i]
	if c < utf8.RuneSelf {
		return rune(c), asciiClass[c], 1
	}
	r, n = utf8.DecodeRuneInString(s[i:])
	switch {
	case unicode.IsLetter(r):
		cls = clsL
	case unicode.IsNumber(r):
		cls = clsN
	case unicode.IsSpace(r):
		cls = clsS
	}
	return r, cls, n
}

// scanClass returns the end of the run of characters of class cls that
// starts at i (i itself when there is none), and how many characters it
// holds, stopping after max characters when max > 0.
func scanClass(s string, i int, cls uint8, max int) int {
	count := 0
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if asciiClass[c] != cls {
				return i
			}
			i++
		} else {
			_, k, n := classAt(s, i)
			if k != cls {
				return i
			}
			i += n
		}
		count++
		if max > 0 && count == max {
			return i
		}
	}
	return i
}

// scanOther returns the end of the run of characters that are neither
// whitespace, letters nor numbers ([^\s\p{L}\p{N}]+) starting at i.
func scanOther(s string, i int) int { return scanClass(s, i, 0, 0) }

// contraction matches 's|'t|'re|'ve|'m|'ll|'d at s[i] (which holds the
// apostrophe) and returns the match end, or -1. With fold, ASCII letters
// match either case and 's' also matches U+017F (ſ), as Oniguruma's (?i)
// case folding does.
func contraction(s string, i int, fold bool) int {
	j := i + 1
	if j >= len(s) {
		return -1
	}
	lower := func(c byte) byte {
		if fold && c >= 'A' && c <= 'Z' {
			return c + 'a' - 'A'
		}
		return c
	}
	c := lower(s[j])
	switch c {
	case 's', 't', 'm', 'd':
		return j + 1
	case 'r', 'v':
		if j+1 < len(s) && lower(s[j+1]) == 'e' {
			return j + 2
		}
	case 'l':
		if j+1 < len(s) && lower(s[j+1]) == 'l' {
			return j + 2
		}
	case 0xC5: // ſ is C5 BF
		if fold && j+1 < len(s) && s[j+1] == 0xBF {
			return j + 2
		}
	}
	return -1
}

// whitespaceTail handles the whitespace alternatives shared by both
// patterns for a run of whitespace starting at i: \s*[\r\n]+ (when
// newlines is set), then \s+(?!\S), then \s+.
func whitespaceTail(s string, i int, newlines bool) int {
	j, lastNL, lastStart := i, -1, i
	for j < len(s) {
		c := s[j]
		if c < utf8.RuneSelf {
			if asciiClass[c] != clsS {
				break
			}
			if c == '\r' || c == '\n' {
				lastNL = j
			}
			lastStart = j
			j++
			continue
		}
		_, cls, n := classAt(s, j)
		if cls != clsS {
			break
		}
		lastStart = j
		j += n
	}
	if newlines && lastNL >= 0 {
		return lastNL + 1 // \s*[\r\n]+ backtracks to the last newline
	}
	if j == len(s) {
		return j // \s+(?!\S) at the end of the text
	}
	if lastStart > i {
		return lastStart // \s+(?!\S) gives back the last whitespace character
	}
	return j // \s+
}

// llama3Match returns the end of the match that starts at i (< len(s)).
// maxDigits is 3 for Llama-3 (\p{N}{1,3}) and 1 for Qwen2-style (\p{N}).
func llama3Match(s string, i int, maxDigits int) int {
	r, cls, n := classAt(s, i)
	// (?i:'s|'t|'re|'ve|'m|'ll|'d)
	if r == '\'' {
		if e := contraction(s, i, true); e > 0 {
			return e
		}
	}
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if cls == clsL {
		return scanClass(s, i+n, clsL, 0)
	}
	if r != '\r' && r != '\n' && cls != clsN && i+n < len(s) {
		if _, c2, n2 := classAt(s, i+n); c2 == clsL {
			return scanClass(s, i+n+n2, clsL, 0)
		}
	}
	// \p{N}{1,3}
	if cls == clsN {
		if maxDigits == 1 {
			return i + n
		}
		return scanClass(s, i+n, clsN, maxDigits-1)
	}
	//  ?[^\s\p{L}\p{N}]+[\r\n]*
	j := i
	if r == ' ' {
		j++
	}
	if k := scanOther(s, j); k > j {
		for k < len(s) && (s[k] == '\r' || s[k] == '\n') {
			k++
		}
		return k
	}
	// Only whitespace is left: \s*[\r\n]+|\s+(?!\S)|\s+
	return whitespaceTail(s, i, true)
}

// gpt2Match returns the end of the GPT-2 pattern's match starting at i.
func gpt2Match(s string, i int) int {
	r, cls, n := classAt(s, i)
	if r == '\'' {
		if e := contraction(s, i, false); e > 0 {
			return e
		}
	}
	// ' '?\p{L}+ | ' '?\p{N}+ | ' '?[^\s\p{L}\p{N}]+
	if cls == clsL || cls == clsN {
		return scanClass(s, i+n, cls, 0)
	}
	if cls == 0 {
		return scanOther(s, i+n)
	}
	if r == ' ' && i+1 < len(s) {
		if _, c2, n2 := classAt(s, i+1); c2 != clsS {
			return scanClass(s, i+1+n2, c2, 0)
		}
	}
	return whitespaceTail(s, i, false)
}

// llama3Split calls emit with the bounds of every match of the Llama-3
// pattern in s. The pattern matches at every position, so the matches tile s.
func llama3Split(s string, emit func(start, end int)) {
	for i := 0; i < len(s); {
		e := llama3Match(s, i, 3)
		emit(i, e)
		i = e
	}
}

// qwen2Split is llama3Split with single digits (\p{N} instead of \p{N}{1,3}).
func qwen2Split(s string, emit func(start, end int)) {
	for i := 0; i < len(s); {
		e := llama3Match(s, i, 1)
		emit(i, e)
		i = e
	}
}

// gpt2Split calls emit with the bounds of every match of the GPT-2 pattern.
func gpt2Split(s string, emit func(start, end int)) {
	for i := 0; i < len(s); {
		e := gpt2Match(s, i)
		emit(i, e)
		i = e
	}
}
