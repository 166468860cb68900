package gutenberg

import (
	"strings"
	"unicode"

	"github.com/mlbuild/mlbuild/internal/lazyre"
)

// Header styles reported per book.
const (
	styleNew  = "new"  // "*** START OF THE PROJECT GUTENBERG EBOOK ..." (2010s–today)
	styleMid  = "mid"  // "*** START OF THIS PROJECT GUTENBERG EBOOK ..." (2000s)
	styleOld  = "old"  // "*END*THE SMALL PRINT! ..." (1990s)
	styleNone = "none" // no recognizable header: the whole file is the body
)

var (
	// A START/END marker, matched on up to three joined lines so that a
	// marker wrapped over two lines is still found. The stars are optional
	// ("START OF THE PROJECT GUTENBERG EBOOK" alone on a line is seen too).
	startMarkRe = lazyre.New(`(?i)^[^\p{L}\p{N}]{0,6}\**\s*START\s+OF\s+(THE|THIS)\s+(?:COPYRIGHTED\s+)?PROJECT\s+GUTENBERG`)
	endMarkRe   = lazyre.New(`(?i)^[^\p{L}\p{N}]{0,6}\**\s*END\s+OF\s+(THE|THIS)\s+(?:COPYRIGHTED\s+)?PROJECT\s+GUTENBERG`)
	// markHeadRe is the cheap test for lines that may begin a marker.
	markHeadRe = lazyre.New(`(?i)^[^\p{L}\p{N}]{0,6}\**\s*(START|END)\b`)
	// "*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*"
	smallPrintEndRe = lazyre.New(`(?i)^\W{0,6}END\W{0,6}THE\s+SMALL\s+PRINT`)
	// "***START**THE SMALL PRINT!**FOR PUBLIC DOMAIN ETEXTS**START***"
	smallPrintStartRe = lazyre.New(`(?i)^\W{0,6}START\W{0,6}THE\s+SMALL\s+PRINT`)
	// Lines that begin the footer even without an END marker.
	footerRes = []*lazyre.Regexp{
		lazyre.New(`(?i)^\W{0,6}End\s+of\s+(the\s+|this\s+)?Project\s+Gutenberg`),
		lazyre.New(`(?i)^\W{0,6}End\s+of\s+(the\s+|this\s+)?(E-?text|E-?book)\s+of\s+`),
		lazyre.New(`(?i)^\W{0,6}END\s+OF\s+(THE\s+|THIS\s+)?(E-?TEXT|E-?BOOK)\W*$`),
	}
	// Lines that begin a license section.
	licenseRes = []*lazyre.Regexp{
		lazyre.New(`(?i)^\W{0,6}START\s*:?\s*FULL\s+LICENSE`),
		lazyre.New(`(?i)^\W{0,6}THE\s+FULL\s+PROJECT\s+GUTENBERG(-tm|™)?\s+LICENSE`),
		smallPrintStartRe,
	}
	// Header lines that only Project Gutenberg's boilerplate contains; used
	// to guess where a header without markers ends.
	boilerplateLineRe = lazyre.New(`(?i)project\s+gutenberg|\be-?texts?\b|\bebooks?\b|gutenberg\.(org|net)|this\s+file\s+should\s+be\s+named|small\s+print|\bhttps?://|\bftp\b|\bwww\.|[\w.]+@[\w-]+\.\w|^\s*(title|author|release\s+date|posting\s+date|language|character\s+set\s+encoding|edition)\s*:`)

	titleFieldRe  = lazyre.New(`(?i)^\s*Title\s*:\s*(.*)$`)
	authorFieldRe = lazyre.New(`(?i)^\s*(?:Authors?|By)\s*:\s*(.*)$`)
	fieldRe       = lazyre.New(`^\s*[A-Z][A-Za-z ]{1,30}:`)
	// "The Project Gutenberg Etext of Huckleberry Finn, by Mark Twain",
	// "Project Gutenberg's The Adventures of Tom Sawyer, by Mark Twain".
	firstLineRe = lazyre.New(`(?i)^[\W_]*(?:the\s+)?project\s+gutenberg(?:(?:'s|’s)(?:\s+(?:e-?text|e-?book|electronic\s+text)\s+of)?|\s+(?:e-?text|e-?book|electronic\s+text)\s+of)\s+(.+?)\s*[*]*\s*$`)
	byRe        = lazyre.New(`(?i)^(.*?),?\s+by\s+(.+)$`)
	// "By Mark Twain", "BY" alone (the name follows on the next line).
	byLineRe = lazyre.New(`^(?:By|BY)(?:\s+(.+))?$`)
)

// bounds is where the body lies within a book's lines, and what header
// style framed it.
type bounds struct {
	start, end int // body is lines[start:end]
	style      string
	marker     bool // a START marker or the end of an old SMALL PRINT header was found
	guessed    bool // no marker: the header's end was guessed from its boilerplate
	footer     bool // a footer (END marker, "End of ..." line, license) was found
	license    int  // lines of license text (SMALL PRINT, FULL LICENSE) outside the body
}

// markerAt reports whether a START or END marker begins at line i, and
// returns the index of the marker's last line and THE/THIS.
func markerAt(lines []string, i int, re *lazyre.Regexp) (last int, which string, ok bool) {
	if !markHeadRe.MatchString(lines[i]) {
		return 0, "", false
	}
	joined := strings.TrimSpace(lines[i])
	for j := i; j < len(lines) && j < i+3; j++ {
		if j > i {
			t := strings.TrimSpace(lines[j])
			if t == "" {
				break
			}
			joined += " " + t
		}
		if m := re.FindStringSubmatch(joined); m != nil {
			// The marker ends on the line that closes it with "*"; a
			// marker without closing stars ends where the match completed.
			last = j
			for k := j; k < len(lines) && k < i+3; k++ {
				t := strings.TrimSpace(lines[k])
				if t == "" {
					break
				}
				if strings.HasSuffix(t, "*") {
					last = k
					break
				}
			}
			return last, strings.ToUpper(m[1]), true
		}
	}
	return 0, "", false
}

func isFooterLine(line string) bool {
	for _, re := range footerRes {
		if re.MatchString(line) {
			return true
		}
	}
	return isLicenseLine(line)
}

func isLicenseLine(line string) bool {
	for _, re := range licenseRes {
		if re.MatchString(line) {
			return true
		}
	}
	return false
}

// findBounds locates the body between header and footer.
//
// With START markers, the body starts after the last START marker that
// precedes the first END marker (so a repeated START is skipped). Without
// them, an old "SMALL PRINT" header ends at its "*END*THE SMALL PRINT" line.
// Without either, the header is guessed to end after the last boilerplate
// line among the first lines of the file. The body ends at the first END
// marker or footer line ("End of the Project Gutenberg EBook ...", "End of
// Project Gutenberg's ...", "*** START: FULL LICENSE ***", an old SMALL
// PRINT placed at the end) after its start.
func findBounds(lines []string) bounds {
	n := len(lines)
	b := bounds{end: n, style: styleNone}
	firstStart := -1
	for i := range lines {
		if _, _, ok := markerAt(lines, i, startMarkRe); ok {
			firstStart = i
			break
		}
	}
	spStart, spEnd := -1, -1
	for i, l := range lines {
		if spStart < 0 && smallPrintStartRe.MatchString(l) {
			spStart = i
		}
		if smallPrintEndRe.MatchString(l) {
			spEnd = i
			break
		}
	}
	switch {
	case firstStart >= 0:
		firstEnd := n
		for i := firstStart + 1; i < n; i++ {
			if _, _, ok := markerAt(lines, i, endMarkRe); ok {
				firstEnd = i
				break
			}
		}
		for i := firstStart; i < firstEnd; i++ {
			if last, which, ok := markerAt(lines, i, startMarkRe); ok {
				b.start = last + 1
				if which == "THE" {
					b.style = styleNew
				} else {
					b.style = styleMid
				}
				i = last
			}
		}
		b.marker = true
		if spStart >= 0 && spStart < b.start && spEnd >= spStart && spEnd < b.start {
			b.license += spEnd - spStart + 1
		}
	case spEnd >= 0 && smallPrintInHeader(lines, spEnd):
		b.start = spEnd + 1
		b.style = styleOld
		b.marker = true
		from := spStart
		if from < 0 || from > spEnd {
			from = spEnd
		}
		b.license += spEnd - from + 1
	default:
		if spStart >= 0 || spEnd >= 0 {
			b.style = styleOld
		}
		b.start = guessHeaderEnd(lines)
		b.guessed = b.start > 0
	}
	for i := b.start; i < n; i++ {
		_, _, end := markerAt(lines, i, endMarkRe)
		if end || isFooterLine(lines[i]) {
			b.end = i
			b.footer = true
			break
		}
	}
	for i := b.end; i < n; i++ {
		if isLicenseLine(lines[i]) {
			b.license += n - i
			break
		}
	}
	return b
}

// smallPrintInHeader reports whether the SMALL PRINT that ends at line e
// is a header (the book follows it) rather than a footer placed after the
// book, as some 1990s files have it: no footer line comes before it, and
// at least as much text follows it as precedes it.
func smallPrintInHeader(lines []string, e int) bool {
	before, after := 0, 0
	for i := 0; i < e; i++ {
		l := lines[i]
		if smallPrintStartRe.MatchString(l) {
			break
		}
		if isFooterLine(l) {
			return false
		}
		if strings.TrimSpace(l) != "" {
			before++
		}
	}
	for _, l := range lines[e+1:] {
		if strings.TrimSpace(l) != "" {
			after++
		}
	}
	return after > 0 && after >= before
}

// guessHeaderEnd returns the index of the first line after the paragraph
// holding the last boilerplate line among the first 600 lines (stopping at
// a footer line), or 0 when there is none.
func guessHeaderEnd(lines []string) int {
	last := -1
	for i := 0; i < len(lines) && i < 600; i++ {
		if isFooterLine(lines[i]) {
			break
		}
		if boilerplateLineRe.MatchString(lines[i]) {
			last = i
		}
	}
	if last < 0 {
		return 0
	}
	i := last + 1
	for i < len(lines) && strings.TrimSpace(lines[i]) != "" {
		i++
	}
	return i
}

// meta is a book's title and author and where they came from.
type meta struct {
	title, author string
	source        string // "fields" (Title:/Author:), "first_line", "file_name"; "+front_matter" when refined from the title page
}

// findMeta reads the title and author from the header: the "Title:" and
// "Author:" fields when present, else the old first line "The Project
// Gutenberg Etext of TITLE, by AUTHOR" (possibly wrapped after "by").
func findMeta(header []string, fallbackTitle string) meta {
	var m meta
	for i := 0; i < len(header); i++ {
		line := header[i]
		if sm := titleFieldRe.FindStringSubmatch(line); sm != nil && m.title == "" {
			m.title = fieldValue(sm[1], header, i)
		} else if sm := authorFieldRe.FindStringSubmatch(line); sm != nil && m.author == "" {
			m.author = fieldValue(sm[1], header, i)
		}
	}
	if m.title != "" {
		m.source = "fields"
	}
	if m.title == "" || m.author == "" {
		for i, line := range header {
			sm := firstLineRe.FindStringSubmatch(line)
			if sm == nil {
				continue
			}
			rest := strings.TrimSpace(sm[1])
			// "..., by" wrapped onto the next line, or "TITLE, by" with
			// the author alone on the next line.
			low := strings.ToLower(rest)
			if (strings.HasSuffix(low, " by") || strings.HasSuffix(low, ",by")) && i+1 < len(header) {
				rest += " " + strings.TrimSpace(header[i+1])
			}
			rest = strings.Trim(rest, " *")
			t, a := rest, ""
			if bm := byRe.FindStringSubmatch(rest); bm != nil {
				t, a = bm[1], bm[2]
			}
			t = strings.Trim(strings.TrimSpace(t), ",;:")
			a = strings.Trim(strings.TrimSpace(a), ",;:*")
			if m.title == "" && t != "" {
				m.title = t
				m.source = "first_line"
			}
			if m.author == "" {
				m.author = a
			}
			break
		}
	}
	if m.title == "" {
		m.title = fallbackTitle
		m.source = "file_name"
	}
	m.title = collapseSpaces(m.title)
	m.author = collapseSpaces(m.author)
	return m
}

// refineMeta improves a title and author read from an old first line
// ("Huckleberry Finn by Twain/Clemens") with the book's own title page,
// the front matter that precedes its first heading: an all-capitals line
// that contains the short title ("THE ADVENTURES OF HUCKLEBERRY FINN"), and
// a "BY" line naming an author who shares a name with the header's.
func refineMeta(m meta, front []string) meta {
	refined := false
	if m.source == "first_line" && m.title != "" {
		want := strings.ToUpper(m.title)
		for _, l := range front {
			t := collapseSpaces(l)
			if t != strings.ToUpper(t) || len(t) <= len(want) || !strings.Contains(t, want) {
				continue
			}
			m.title = titleCase(t)
			refined = true
			break
		}
	}
	if m.author == "" || strings.ContainsAny(m.author, "/&") || len(strings.Fields(m.author)) == 1 {
		for i, l := range front {
			t := collapseSpaces(l)
			bm := byLineRe.FindStringSubmatch(t)
			if bm == nil {
				continue
			}
			name := bm[1]
			if name == "" {
				for j := i + 1; j < len(front) && j < i+3; j++ {
					if s := collapseSpaces(front[j]); s != "" {
						name = s
						break
					}
				}
			}
			name = strings.Trim(name, " ,.;:*")
			if name == "" || len(strings.Fields(name)) > 6 || !sharesName(name, m.author) {
				continue
			}
			if name == strings.ToUpper(name) {
				name = titleCase(name)
			}
			m.author = name
			refined = true
			break
		}
	}
	if refined {
		m.source += "+front_matter"
	}
	return m
}

// sharesName reports whether name has a word of author (any word when
// author is empty).
func sharesName(name, author string) bool {
	if author == "" {
		return true
	}
	split := func(s string) []string {
		return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) })
	}
	have := map[string]bool{}
	for _, w := range split(author) {
		if len(w) > 2 {
			have[w] = true
		}
	}
	for _, w := range split(name) {
		if have[w] {
			return true
		}
	}
	return false
}

var smallWords = map[string]bool{"a": true, "an": true, "and": true, "as": true, "at": true, "by": true, "for": true, "in": true, "of": true, "on": true, "or": true, "the": true, "to": true, "with": true}

// titleCase turns "THE ADVENTURES OF HUCKLEBERRY FINN" into "The
// Adventures of Huckleberry Finn".
func titleCase(s string) string {
	words := strings.Fields(strings.ToLower(s))
	for i, w := range words {
		if i > 0 && smallWords[w] {
			continue
		}
		r := []rune(w)
		for k, c := range r {
			if unicode.IsLetter(c) {
				r[k] = unicode.ToUpper(c)
				break
			}
		}
		words[i] = string(r)
	}
	return strings.Join(words, " ")
}

// fieldValue returns a header field's value with its indented
// continuation lines ("Title: The Adventures of Tom Sawyer,\n
// Complete").
func fieldValue(first string, lines []string, i int) string {
	v := strings.TrimSpace(first)
	for j := i + 1; j < len(lines) && j < i+4; j++ {
		l := lines[j]
		t := strings.TrimSpace(l)
		if t == "" || !strings.HasPrefix(l, " ") || fieldRe.MatchString(l) || strings.HasPrefix(t, "*") {
			break
		}
		v += " " + t
	}
	return v
}

func collapseSpaces(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
