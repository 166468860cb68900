package gutenberg

import (
	"math"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Boundary classes: where a chunk may end, and what ending there costs.
// Chunks end on paragraph boundaries (preferring those at section breaks),
// else at verse line ends, else at sentence ends; clause boundaries and
// finally any word boundary are last resorts for monstrous sentences.
const (
	bSection = iota
	bParagraph
	bLine
	bSentence
	bClause
	bWord
	nBoundaries
)

var boundaryNames = [nBoundaries]string{"section", "paragraph", "verse_line", "sentence", "clause", "word"}

var boundaryCost = [nBoundaries]int64{-1, 0, 3, 10, 100, 1000}

// token is one word of the book's text and what follows it.
type token struct {
	word  string
	sep   string // " ", "\n" (verse line) or "\n\n" (paragraph)
	class int    // boundary class of the position after the word
}

func tokenize(ps []textPara) []token {
	var toks []token
	for pi, p := range ps {
		for li, line := range p.lines {
			words := strings.Fields(line)
			for wi, w := range words {
				t := token{word: w, sep: " ", class: bWord}
				switch {
				case wi < len(words)-1:
				case li < len(p.lines)-1:
					t.sep, t.class = "\n", bLine
				case pi < len(ps)-1:
					t.sep, t.class = "\n\n", bParagraph
					if ps[pi+1].section {
						t.class = bSection
					}
				default:
					t.sep, t.class = "", bSection
				}
				toks = append(toks, t)
			}
		}
	}
	// Sentence and clause ends inside lines need the next word.
	for i := range toks {
		if toks[i].class < bSentence || i+1 >= len(toks) {
			continue
		}
		switch {
		case sentenceEnd(toks[i].word, toks[i+1].word):
			toks[i].class = bSentence
		case clauseEnd(toks[i].word, toks[i+1].word):
			toks[i].class = bClause
		}
	}
	return toks
}

const closers = "\"'”’»)]}_*"

var abbreviations = map[string]bool{
	"mr": true, "mrs": true, "ms": true, "dr": true, "st": true, "jr": true, "sr": true, "messrs": true,
	"mme": true, "mlle": true, "capt": true, "col": true, "gen": true, "lt": true, "rev": true, "hon": true,
	"prof": true, "gov": true, "esq": true, "vs": true, "viz": true, "i.e": true, "e.g": true, "no": true,
	"vol": true, "ch": true, "chap": true, "p": true, "pp": true, "co": true, "ft": true, "mt": true,
	"sgt": true, "maj": true, "cf": true, "ibid": true, "fig": true,
}

// sentenceEnd reports whether w ends a sentence, given the word after it.
func sentenceEnd(w, next string) bool {
	core := strings.TrimRight(w, closers)
	if core == "" {
		return false
	}
	last, _ := utf8.DecodeLastRuneInString(core)
	if !strings.ContainsRune(".!?…", last) {
		return false
	}
	if last == '.' {
		stem := strings.ToLower(strings.TrimLeft(strings.TrimSuffix(core, "."), "\"'“‘(["))
		if abbreviations[stem] {
			return false
		}
		if n := utf8.RuneCountInString(stem); n == 1 {
			r, _ := utf8.DecodeRuneInString(stem)
			if unicode.IsLetter(r) {
				return false // an initial: "G. Washington"
			}
		}
	}
	// Only the next word's first rune matters: an opening quote or
	// bracket, a capital, a digit or any other non-letter starts a
	// sentence; a lower-case (or uncased) letter does not.
	r, size := utf8.DecodeRuneInString(next)
	if size == 0 {
		return false // no next word
	}
	if strings.ContainsRune("\"'“‘«([_", r) {
		return true
	}
	return unicode.IsUpper(r) || unicode.IsDigit(r) || !unicode.IsLetter(r)
}

// clauseEnd reports whether w ends a clause: a comma, semicolon, colon or
// dash follows it.
func clauseEnd(w, next string) bool {
	core := strings.TrimRight(w, closers)
	if core == "" {
		return false
	}
	last, _ := utf8.DecodeLastRuneInString(core)
	if strings.ContainsRune(",;:—–", last) || strings.HasSuffix(core, "--") {
		return true
	}
	return next == "--" || next == "—" || next == "–"
}

// segment splits n tokens into chunks of minW..maxW words, minimizing the
// total cost of the boundaries the chunks end on. It returns the chunk
// ends (token positions) and, when the last stretch of the book is too
// short to be a chunk of its own and cannot be absorbed, tail > 0 words
// after the last end.
//
// The cost of a chunk depends only on where it ends, so the dynamic
// program over positions keeps, for each position, the cheapest reachable
// start within [i-maxW, i-minW] in a monotonic queue: linear time. Ties go
// to the earliest start (the longest chunk), which makes the result
// deterministic.
func segment(toks []token, minW, maxW int) (ends []int, tail int) {
	n := len(toks)
	if n == 0 {
		return nil, 0
	}
	const inf = math.MaxInt64 / 4
	dp := make([]int64, n+1)
	parent := make([]int32, n+1)
	for i := range dp {
		dp[i] = inf
	}
	dp[0] = 0
	queue := make([]int32, 0, 64)
	head := 0
	for i := 1; i <= n; i++ {
		if j := i - minW; j >= 0 && dp[j] < inf {
			for len(queue) > head && dp[queue[len(queue)-1]] > dp[j] {
				queue = queue[:len(queue)-1]
			}
			queue = append(queue, int32(j))
		}
		for len(queue) > head && int(queue[head]) < i-maxW {
			head++
		}
		if head > 1024 && head*2 > len(queue) {
			queue = append(queue[:0], queue[head:]...)
			head = 0
		}
		if len(queue) > head {
			j := queue[head]
			c := int64(0)
			if i < n {
				c = boundaryCost[toks[i-1].class]
			}
			dp[i] = dp[j] + c
			parent[i] = j
		}
	}
	end := n
	if dp[n] >= inf {
		// No split makes every chunk fit: the book ends in a tail shorter
		// than minW after the cheapest reachable position.
		best := -1
		for j := max(0, n-minW+1); j < n; j++ {
			if dp[j] < inf && (best < 0 || dp[j] < dp[best]) {
				best = j
			}
		}
		if best < 0 {
			best = 0
		}
		end, tail = best, n-best
	}
	for i := end; i > 0; i = int(parent[i]) {
		ends = append(ends, i)
	}
	for l, r := 0, len(ends)-1; l < r; l, r = l+1, r-1 {
		ends[l], ends[r] = ends[r], ends[l]
	}
	return ends, tail
}

// joinTokens renders toks as text.
func joinTokens(toks []token) string {
	var b strings.Builder
	for i, t := range toks {
		b.WriteString(t.word)
		if i < len(toks)-1 {
			b.WriteString(t.sep)
		}
	}
	return b.String()
}
