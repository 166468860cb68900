package eval

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/mlbuild/mlbuild/steps"
	"github.com/mlbuild/mlbuild/steps/trainingdata"
)

// minCopiedWords is the shortest answer sentence, in words, that the
// persona measures count: shorter ones ("Thank you.") are copied from
// anywhere by chance.
const minCopiedWords = 5

// corpus is the training text the copied-sentence measure searches: every
// training record's text, normalised as sentences are (normalizeText),
// each with a space at both ends; nil without training sets.
type corpus []string

// readCorpus reads the text of every record of the training sets.
func readCorpus(step string, files []steps.InputFile) (corpus, error) {
	var c corpus
	for _, f := range files {
		err := steps.ReadJSONL(f.Path, func(line int, raw []byte) error {
			var rec trainingdata.Record
			if err := json.Unmarshal(raw, &rec); err != nil {
				return fmt.Errorf("line %d: %w", line, err)
			}
			c = append(c, " "+normalizeText(rec.Text)+" ")
			return nil
		})
		if err != nil {
			name := f.Name
			if name == "" {
				name = f.Path
			}
			return nil, fmt.Errorf("%s: training set %s: %v", step, name, unwrapPath(err, f.Path, name))
		}
	}
	return c, nil
}

// contains reports whether the normalised sentence occurs in a record,
// as whole words.
func (c corpus) contains(sentence string) bool {
	padded := " " + sentence + " "
	for _, t := range c {
		if strings.Contains(t, padded) {
			return true
		}
	}
	return false
}

// curve is a training run's loss chart for report.html.
type curve struct {
	Name string // the input as the pipeline names it
	PNG  []byte
}

// readCurves reads loss.png from each training-curves folder.
func readCurves(step string, dirs []steps.InputFile) ([]curve, error) {
	var out []curve
	for _, d := range dirs {
		name := d.Name
		if name == "" {
			name = d.Path
		}
		png, err := os.ReadFile(filepath.Join(d.Path, "loss.png"))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: training_curves %s has no loss.png (give a training step's curves output, e.g. qlora_train.NAME.curves)", step, name)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: training_curves %s: %v", step, name, unwrapPath(err, d.Path, name))
		}
		out = append(out, curve{Name: name, PNG: png})
	}
	return out, nil
}

// personaStats are the persona measures over a model's answers.
type personaStats struct {
	answers, words       int
	distinct1, distinct2 float64
	sentences            int // of minCopiedWords words or more
	repeated, copied     int // sentences said more than once; found in training
	haveCorpus           bool
}

// persona computes the persona measures of answers (blank ones are left
// out): distinct-1 and distinct-2, the number of distinct word unigrams
// and bigrams (lower-cased, punctuation stripped; bigrams within an
// answer) over their total; and, over the answers' sentences of
// minCopiedWords words or more (normalised: lower-cased, punctuation
// dropped, white space collapsed), the number that occur more than once
// among all answers' sentences and the number found verbatim in c.
func persona(answers []string, c corpus) personaStats {
	st := personaStats{haveCorpus: c != nil}
	uni, bi := map[string]bool{}, map[string]bool{}
	nBi := 0
	count := map[string]int{}
	var sents []string
	for _, a := range answers {
		if strings.TrimSpace(a) == "" {
			continue
		}
		st.answers++
		ws := strings.Fields(normalizeText(a))
		for i, w := range ws {
			uni[w] = true
			st.words++
			if i > 0 {
				bi[ws[i-1]+" "+w] = true
				nBi++
			}
		}
		for _, s := range splitSentences(a) {
			n := normalizeText(s)
			if len(strings.Fields(n)) < minCopiedWords {
				continue
			}
			sents = append(sents, n)
			count[n]++
		}
	}
	if st.words > 0 {
		st.distinct1 = float64(len(uni)) / float64(st.words)
	}
	if nBi > 0 {
		st.distinct2 = float64(len(bi)) / float64(nBi)
	}
	st.sentences = len(sents)
	for _, n := range sents {
		if count[n] > 1 {
			st.repeated++
		}
		if c != nil && c.contains(n) {
			st.copied++
		}
	}
	return st
}

// splitSentences splits text after ".", "!", "?" and line breaks.
func splitSentences(text string) []string {
	var out []string
	start := 0
	for i, r := range text {
		if r == '.' || r == '!' || r == '?' || r == '\n' {
			if s := strings.TrimSpace(text[start : i+1]); s != "" {
				out = append(out, s)
			}
			start = i + 1
		}
	}
	if s := strings.TrimSpace(text[start:]); s != "" {
		out = append(out, s)
	}
	return out
}

// normalizeText lower-cases text, turns everything but letters, digits and
// apostrophes into spaces and collapses white space, so that sentences
// compare by their words.
func normalizeText(text string) string {
	var b strings.Builder
	space := true
	for _, r := range text {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '\'':
			b.WriteRune(unicode.ToLower(r))
			space = false
		case !space:
			b.WriteByte(' ')
			space = true
		}
	}
	return strings.TrimSpace(b.String())
}
