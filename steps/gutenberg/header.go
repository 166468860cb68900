package gutenberg

import (
	"regexp"
	"strings"
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
	// marker wrapped over two lines is still found.
	startMarkRe = regexp.MustCompile(`(?i)^[^\p{L}\p{N}]{0,6}\*+\s*START\s+OF\s+(THE|THIS)\s+PROJECT\s+GUTENBERG`)
	endMarkRe   = regexp.MustCompile(`(?i)^[^\p{L}\p{N}]{0,6}\*+\s*END\s+OF\s+(THE|THIS)\s+PROJECT\s+GUTENBERG`)
	// markHeadRe is the cheap test for lines that may begin a marker.
	markHeadRe = regexp.MustCompile(`(?i)^[^\p{L}\p{N}]{0,6}\*+\s*(START|END)\b`)
	// "*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*"
	smallPrintEndRe = regexp.MustCompile(`(?i)^\W{0,6}END\W{0,6}THE\s+SMALL\s+PRINT`)
	// "***START**THE SMALL PRINT!**FOR PUBLIC DOMAIN ETEXTS**START***"
	smallPrintStartRe = regexp.MustCompile(`(?i)^\W{0,6}START\W{0,6}THE\s+SMALL\s+PRINT`)
	// Lines that begin the footer even without an END marker.
	footerRes = []*regexp.Regexp{
		regexp.MustCompile(`(?i)^\W{0,6}End\s+of\s+(the\s+|this\s+)?Project\s+Gutenberg`),
		regexp.MustCompile(`(?i)^\W{0,6}End\s+of\s+(the\s+|this\s+)?(E-?text|E-?book)\s+of\s+`),
		regexp.MustCompile(`(?i)^\W{0,6}\*+\s*START:?\s*FULL\s+LICENSE`),
		regexp.MustCompile(`(?i)^\W{0,6}THE\s+FULL\s+PROJECT\s+GUTENBERG(-tm)?\s+LICENSE`),
		regexp.MustCompile(`(?i)^\W{0,6}START\s*:?\s*FULL\s+LICENSE`),
	}
	titleFieldRe  = regexp.MustCompile(`(?i)^\s*Title\s*:\s*(.*)$`)
	authorFieldRe = regexp.MustCompile(`(?i)^\s*(?:Authors?|By)\s*:\s*(.*)$`)
	fieldRe       = regexp.MustCompile(`^\s*[A-Z][A-Za-z ]{1,30}:`)
	// "The Project Gutenberg Etext of Huckleberry Finn, by Mark Twain",
	// "Project Gutenberg's The Adventures of Tom Sawyer, by Mark Twain".
	firstLineRe = regexp.MustCompile(`(?i)^[\W_]*(?:the\s+)?project\s+gutenberg(?:(?:'s|’s)(?:\s+(?:e-?text|e-?book|electronic\s+text)\s+of)?|\s+(?:e-?text|e-?book|electronic\s+text)\s+of)\s+(.+?)\s*[*]*\s*$`)
	byRe        = regexp.MustCompile(`(?i)^(.*?),?\s+by\s+(.+)$`)
)

// bounds is where the body lies within a book's lines, and what header
// style framed it.
type bounds struct {
	start, end int // body is lines[start:end]
	style      string
	footer     bool // a footer (END marker, "End of ..." line, license) was found
}

// markerAt reports whether a START or END marker begins at line i, and
// returns the index of the marker's last line and THE/THIS.
func markerAt(lines []string, i int, re *regexp.Regexp) (last int, which string, ok bool) {
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
			// The marker ends on the line that closes it with "***"; a
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
	if smallPrintStartRe.MatchString(line) {
		return true
	}
	for _, re := range footerRes {
		if re.MatchString(line) {
			return true
		}
	}
	return false
}

// findBounds locates the body between header and footer. The body starts
// after the last START marker (or end of the old "SMALL PRINT" section)
// that precedes the first END marker, so repeated markers are skipped, and
// it ends at the first footer line after that.
func findBounds(lines []string) bounds {
	b := bounds{start: 0, end: len(lines), style: styleNone}
	firstEnd := len(lines)
	for i := range lines {
		if _, _, ok := markerAt(lines, i, endMarkRe); ok {
			firstEnd = i
			break
		}
	}
	for i := 0; i < firstEnd; i++ {
		if last, which, ok := markerAt(lines, i, startMarkRe); ok {
			b.start = last + 1
			if which == "THE" {
				b.style = styleNew
			} else {
				b.style = styleMid
			}
			i = last
			continue
		}
		if smallPrintEndRe.MatchString(lines[i]) {
			b.start = i + 1
			if b.style == styleNone {
				b.style = styleOld
			}
		}
	}
	for i := b.start; i < len(lines); i++ {
		if i == firstEnd || isFooterLine(lines[i]) {
			b.end = i
			b.footer = true
			break
		}
	}
	return b
}

// meta is a book's title and author and where they came from.
type meta struct {
	title, author string
	source        string // "fields" (Title:/Author:), "first_line", "file_name"
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
			// "..., by" wrapped onto the next line.
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
