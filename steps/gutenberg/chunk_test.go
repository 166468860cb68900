package gutenberg

import (
	"fmt"
	"strings"
	"testing"
)

// paras builds text paragraphs of the given word counts, each made of
// sentences of sentLen words ("wN" words, sentences ending with ".").
func paras(sentLen int, counts ...int) []textPara {
	var ps []textPara
	k := 0
	for _, n := range counts {
		var words []string
		for i := 0; i < n; i++ {
			w := fmt.Sprintf("w%d", k)
			if i == 0 || (i%sentLen == 0) {
				w = fmt.Sprintf("W%d", k)
			}
			if (i+1)%sentLen == 0 || i == n-1 {
				w += "."
			}
			words = append(words, w)
			k++
		}
		ps = append(ps, textPara{lines: []string{strings.Join(words, " ")}})
	}
	return ps
}

func chunkSizes(ends []int) []int {
	var s []int
	prev := 0
	for _, e := range ends {
		s = append(s, e-prev)
		prev = e
	}
	return s
}

func classesAt(toks []token, ends []int) []string {
	var c []string
	for _, e := range ends[:len(ends)-1] {
		c = append(c, boundaryNames[toks[e-1].class])
	}
	return c
}

func TestSegmentParagraphBoundaries(t *testing.T) {
	toks := tokenize(paras(10, 100, 100, 100, 100, 100, 100, 100))
	ends, tail := segment(toks, 200, 500)
	if tail != 0 {
		t.Fatalf("tail %d", tail)
	}
	for i, s := range chunkSizes(ends) {
		if s < 200 || s > 500 || s%100 != 0 {
			t.Errorf("chunk %d has %d words", i, s)
		}
	}
	for _, c := range classesAt(toks, ends) {
		if c != "paragraph" {
			t.Errorf("boundary %s", c)
		}
	}
}

func TestSegmentPrefersSections(t *testing.T) {
	ps := paras(10, 150, 150, 150, 150, 150, 150)
	ps[3].section = true // a chapter starts at word 450
	toks := tokenize(ps)
	ends, _ := segment(toks, 200, 500)
	found := false
	for _, e := range ends {
		if e == 450 {
			found = true
		}
	}
	if !found {
		t.Errorf("ends %v do not include the section break at 450", ends)
	}
}

func TestSegmentLongParagraphSplitsAtSentences(t *testing.T) {
	toks := tokenize(paras(25, 1200))
	ends, tail := segment(toks, 200, 500)
	if tail != 0 {
		t.Fatalf("tail %d", tail)
	}
	for i, e := range ends[:len(ends)-1] {
		if toks[e-1].class != bSentence {
			t.Errorf("chunk %d ends at %s (%q)", i, boundaryNames[toks[e-1].class], toks[e-1].word)
		}
	}
	for _, s := range chunkSizes(ends) {
		if s < 200 || s > 500 {
			t.Errorf("sizes %v", chunkSizes(ends))
		}
	}
}

func TestSegmentMonstrousSentence(t *testing.T) {
	// One sentence of 1000 words with commas every 50: split at clauses.
	var words []string
	for i := 0; i < 1000; i++ {
		w := "word"
		if i%50 == 49 {
			w += ","
		}
		words = append(words, w)
	}
	toks := tokenize([]textPara{{lines: []string{strings.Join(words, " ") + "."}}})
	ends, tail := segment(toks, 200, 500)
	if tail != 0 || len(ends) < 2 {
		t.Fatalf("ends %v tail %d", ends, tail)
	}
	for _, c := range classesAt(toks, ends) {
		if c != "clause" {
			t.Errorf("boundary %s", c)
		}
	}
	// Without any punctuation, any word boundary will do.
	toks = tokenize([]textPara{{lines: []string{strings.Repeat("word ", 1000)}}})
	ends, tail = segment(toks, 200, 500)
	if tail != 0 {
		t.Fatalf("tail %d", tail)
	}
	for _, s := range chunkSizes(ends) {
		if s < 200 || s > 500 {
			t.Errorf("sizes %v", chunkSizes(ends))
		}
	}
}

func TestSegmentTail(t *testing.T) {
	// 150 words: shorter than min, one tail.
	ends, tail := segment(tokenize(paras(10, 150)), 200, 500)
	if len(ends) != 0 || tail != 150 {
		t.Errorf("ends %v tail %d", ends, tail)
	}
	// 520 words in paragraphs of 260: two chunks, no tail.
	ends, tail = segment(tokenize(paras(10, 260, 260)), 200, 500)
	if fmt.Sprint(chunkSizes(ends)) != "[260 260]" || tail != 0 {
		t.Errorf("ends %v tail %d", ends, tail)
	}
	// A short last paragraph is merged into the previous chunk when that fits.
	ends, tail = segment(tokenize(paras(10, 300, 100)), 200, 500)
	if fmt.Sprint(chunkSizes(ends)) != "[400]" || tail != 0 {
		t.Errorf("ends %v tail %d", ends, tail)
	}
	// 250 words cannot make chunks of 200..210: a tail is left.
	ends, tail = segment(tokenize(paras(10, 250)), 200, 210)
	if len(ends) != 1 || tail == 0 || ends[0]+tail != 250 {
		t.Errorf("ends %v tail %d", ends, tail)
	}
	// min == max works by splitting anywhere.
	ends, tail = segment(tokenize(paras(7, 300)), 100, 100)
	if fmt.Sprint(chunkSizes(ends)) != "[100 100 100]" || tail != 0 {
		t.Errorf("ends %v tail %d", ends, tail)
	}
}

func TestSentenceEnd(t *testing.T) {
	tests := []struct {
		w, next string
		want    bool
	}{
		{"end.", "The", true},
		{"end.”", "“Yes", true},
		{"end!", "but", false},
		{"Mr.", "Walters", false},
		{"G.", "Washington", false},
		{"what?”", "said", false},
		{"1771.", "DEAR", true},
		{"word", "Next", false},
		{"done.)", "And", true},
		// Only the next word's first rune decides.
		{"end.", "", false},
		{"end.", "1850", true},
		{"end.", "—and", true},
		{"end.", "(see", true},
		{"end.", "\xffbad", true}, // U+FFFD is not a letter
		{"end.", "ǅ", false},      // title case, not upper case
		{"end.", "日本", false},     // an uncased letter
	}
	for _, tc := range tests {
		if got := sentenceEnd(tc.w, tc.next); got != tc.want {
			t.Errorf("sentenceEnd(%q, %q) = %v", tc.w, tc.next, got)
		}
	}
}

func TestJoinTokens(t *testing.T) {
	ps := []textPara{{lines: []string{"a b"}}, {lines: []string{"c", "d e"}}}
	if got := joinTokens(tokenize(ps)); got != "a b\n\nc\nd e" {
		t.Errorf("got %q", got)
	}
}
