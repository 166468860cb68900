package gutenberg

import (
	"strings"
	"unicode"

	"github.com/mlbuild/mlbuild/internal/lazyre"
)

// The rules in this file recognize the front matter and apparatus that
// editions of a book carry besides a "CONTENTS" list: chapter-summary
// lists, page-numbered lists of illustrations, epigraphs, transcribers'
// lists of corrections, the navigation lines of text made from HTML, and
// chapter titles wrapped over several lines.

var (
	// A navigation item of text converted from HTML: "Next Chapter",
	// "Contents", "Back to Top", "Chapter II", "<< Previous".
	navItem = `(?:[\[(<«‹*•]|&lt;|<<)*\s*(?:(?:next|previous|prev|back|forward|home|top|up|index|contents|table\s+of\s+contents|main\s+page)(?:\s+(?:chapter|page|section|part|book))?|(?:chapter|book|part|section|vol\.?|volume|letter)\s+(?:[ivxlcdm]+|\d+)\.?|(?:back|return|go)\s+to\s+(?:the\s+)?(?:top|contents|index|start|beginning|table\s+of\s+contents|chapter\s+(?:[ivxlcdm]+|\d+)))\s*(?:[\])>»›]|&gt;|>>)*`
	// A line of two or more navigation items and separators only.
	navLineRe = lazyre.New(`(?i)^\s*` + navItem + `(?:\s*(?:[|•·/:]|::|--?|—|\s)\s*` + navItem + `)+\s*$`)
	// A breadcrumb trail: "Home > Books > Twain".
	breadcrumbRe = lazyre.New(`(?i)^\s*home\s*(?:>|»|›|/|::)\s*\S`)
	// One navigation item on a line of its own, between arrows or brackets
	// ("[ Next ]", "<< Previous", "Back to Contents").
	navAloneRe = lazyre.New(`(?i)^\s*(?:(?:[\[(<«‹]|&lt;|<<)+\s*(?:next|previous|prev|back|home|top|up|index|contents)(?:\s+(?:chapter|page|section))?\s*(?:[\])>»›]|&gt;|>>)*|(?:next|previous|prev)(?:\s+(?:chapter|page|section))?\s*(?:[\])>»›]|&gt;|>>)+|(?:[\[(<«‹]|&lt;|<<)*\s*(?:back|return|go)\s+to\s+(?:the\s+)?(?:top|contents|index|start|beginning|table\s+of\s+contents)\s*(?:[\])>»›]|&gt;|>>)*)\s*$`)

	// An epigraph's attribution: a dash, then a name or a source
	// ("--Old Almanac.", "—Pudd'nhead Wilson's Calendar.", "— _Hamlet_").
	attributionRe = lazyre.New(`^(?:—|―|–|--?)\s*[_*]?[\p{Lu}\p{N}][^!?]{0,70}$`)

	// A page-numbered list entry: "Portrait of Franklin vii", "The Wharf
	// at Evening 23", "Map of the River ... _Facing page_ 12",
	// "Frontispiece".
	pageEntryRe = lazyre.New(`^(.{2,90}?)[\s.]+(?:\d{1,4}|[ivxlcdm]{1,7}|_?(?:Frontispiece|Facing\s+(?:page|p\.)\s*\d{1,4})_?|(?:to\s+)?face\s+(?:page|p\.)\s*\d{1,4})\.?$`)

	// A transcriber's correction: "Page 92: Changed propesed to
	// proposed", "p. 41: added missing period", "Pg 7, "recieve" to
	// "receive"".
	correctionLineRe = lazyre.New(`(?i)^(?:page|pg\.?|p\.)\s*\d{1,4}\s*(?:,?\s*line\s*\d+\s*)?[,:.)-]?\s*(?:changed|corrected|replaced|added|removed|deleted|inserted|amended|fixed|typo|spelling|punctuation|missing|["“'‘_]|for\s.{1,60}?\sread\s|.{1,60}?\s(?:->|→|=>|to|corrected\s+to|changed\s+to)\s)`)
	// A transcriber's remark about the text: "Obvious printer's errors have
	// been silently corrected.", "Spelling and hyphenation have been
	// retained as in the original."
	noteProseRe = lazyre.New(`(?i)(?:\b(?:obvious|typographical|typographic|printer['’]?s|printing|minor|punctuation|spelling)\s+(?:and\s+\w+\s+)?(?:errors?|mistakes?|inconsistencies|typos)\b.{0,40}\b(?:corrected|fixed|repaired|retained|preserved|left|changed|silently)\b|\b(?:spelling|hyphenation|punctuation|capitali[sz]ation|archaic\s+spellings?)\b.{0,60}\b(?:(?:has|have)\s+been|was|were|are|is)\s+(?:retained|preserved|left|kept|standardi[sz]ed|normali[sz]ed|made\s+consistent)\b)`)
	// Headings of a transcriber's list of corrections.
	correctionsHeadingRe = lazyre.New(`(?i)^(?:(?:list\s+of\s+)?(?:typographical\s+)?(?:errors|corrections|errata|changes)(?:\s+(?:corrected|made|noted|to\s+the\s+(?:text|original)))?(?:\s+in\s+this\s+(?:edition|e-?text|e-?book))?|notes?\s+on\s+the\s+(?:text|transcription)|transcription\s+notes?|changes\s+made\s+to\s+the\s+(?:text|original))[.:]?$`)
)

// isNavigation reports whether every line of a paragraph is a
// navigation line of text made from HTML.
func isNavigation(lines []string) bool {
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if !navLineRe.MatchString(t) && !breadcrumbRe.MatchString(t) && !navAloneRe.MatchString(t) {
			return false
		}
	}
	return true
}

// titleSmallWords are the words title case leaves in lower case.
var titleSmallWords = map[string]bool{
	"a": true, "an": true, "the": true, "and": true, "but": true, "or": true, "nor": true, "for": true,
	"so": true, "yet": true, "of": true, "in": true, "on": true, "at": true, "to": true, "by": true,
	"from": true, "with": true, "as": true, "into": true, "upon": true, "over": true, "off": true,
	"up": true, "out": true, "his": true, "her": true, "its": true, "their": true, "our": true,
	"is": true, "was": true, "who": true, "how": true, "what": true, "that": true, "which": true,
}

// titleCaseRatio is the share of words, other than the small ones title
// case leaves in lower case, that start with a capital.
func titleCaseRatio(words []string) float64 {
	up, n := 0, 0
	for _, w := range words {
		r, ok := firstLetter(w)
		if !ok {
			continue
		}
		if unicode.IsLower(r) && titleSmallWords[wordCore(w)] {
			continue
		}
		n++
		if unicode.IsUpper(r) {
			up++
		}
	}
	if n == 0 {
		return 0
	}
	return float64(up) / float64(n)
}

// summarySplitRe splits a chapter summary into its topics.
var summarySplitRe = lazyre.New(`\s*(?:--|—|―)\s*`)

// isSummary reports whether a paragraph is a chapter summary: three or
// more (two right after a heading) short title-like topics joined by
// dashes ("Description of Jerusalem--Solomon's Temple--The Church of the
// Holy Sepulchre"), none but the last ending a sentence.
func isSummary(lines []string, afterHeading bool) bool {
	if len(lines) > 8 {
		return false
	}
	text := collapseSpaces(strings.Join(lines, " "))
	if startsWithQuote(text) {
		return false
	}
	topics := summarySplitRe.Re().Split(text, -1)
	if len(topics) < 3 && !(afterHeading && len(topics) == 2) {
		return false
	}
	var all []string
	for i, t := range topics {
		words := strings.Fields(t)
		if len(words) == 0 || len(words) > 12 {
			return false
		}
		if i < len(topics)-1 && endsSentence(t) {
			return false
		}
		all = append(all, words...)
	}
	return len(all) <= 90 && titleCaseRatio(all) >= 0.7
}

// isTitleParagraph reports whether a paragraph after a chapter heading is
// the chapter's title, on one line or wrapped over up to four: no
// lower-case letters ("THE OLD PRINT SHOP, AND THE MASTER / WHO NEVER
// SLEPT"), or title case throughout and not a sentence ("How the Young
// Apprentice Went to the Fair and / Came Home Without His Shoes").
func isTitleParagraph(lines []string) bool {
	if len(lines) > 4 {
		return false
	}
	text := collapseSpaces(strings.Join(lines, " "))
	words := strings.Fields(text)
	if len(words) == 0 || len(words) > 30 || startsWithQuote(text) || !hasAlnum(text) {
		return false
	}
	if strings.HasSuffix(text, "!") || strings.HasSuffix(text, "?") {
		return false
	}
	upper := true
	for _, r := range text {
		if unicode.IsLower(r) {
			upper = false
			break
		}
	}
	if upper {
		return true
	}
	if len(words) < 2 || strings.ContainsAny(strings.TrimRight(text, "."), ".!?;") {
		return false
	}
	ratio := titleCaseRatio(words)
	if strings.HasSuffix(text, ".") {
		return len(words) >= 3 && ratio >= 0.9
	}
	return ratio >= 0.75
}

// epigraphLen returns how many paragraphs from i form an epigraph: a short
// quotation (prose or verse) whose last line, or the paragraph after it,
// is an attribution ("--Old Almanac."). 0 when there is none.
func epigraphLen(ps []para, i int) int {
	p := ps[i]
	if len(p.lines) > 10 || len(strings.Fields(strings.Join(p.lines, " "))) > 90 {
		return 0
	}
	if isAttribution(p.lines[len(p.lines)-1]) && len(p.lines) >= 2 && !isAttribution(p.lines[0]) {
		return 1
	}
	if i+1 < len(ps) && len(ps[i+1].lines) == 1 && isAttribution(ps[i+1].lines[0]) && !isAttribution(p.lines[0]) &&
		len(p.lines) <= 8 {
		return 2
	}
	return 0
}

// isAttribution reports whether a line is an epigraph's attribution: a
// dash and a capitalized name or source of at most ten words.
func isAttribution(l string) bool {
	t := strings.TrimSpace(l)
	if !attributionRe.MatchString(t) {
		return false
	}
	words := strings.Fields(strings.TrimLeft(t, "—―–- "))
	if len(words) == 0 || len(words) > 10 || titleRatio(words) < 0.5 {
		return false
	}
	// Lower case only for the small words of a title, a Roman numeral or
	// an abbreviation of a source's parts ("Proverbs xvi. 18", "Hamlet,
	// act iii. sc. 1"): "--Nowhere, sir." is dialogue.
	for _, w := range words {
		r, ok := firstLetter(w)
		if !ok || !unicode.IsLower(r) {
			continue
		}
		c := wordCore(w)
		if !titleSmallWords[c] && !romanLowerRe.MatchString(c) && !sourcePartRe.MatchString(strings.Trim(w, "_*,;")) {
			return false
		}
	}
	return true
}

var (
	romanLowerRe = lazyre.New(`^[ivxlc]{1,7}$`)
	sourcePartRe = lazyre.New(`^(?:act|sc\.|scene|ch\.|chap\.|p\.|pp\.|v\.|vv\.|l\.|ll\.|bk\.|book|canto|st\.|stanza|line|lines)$`)
)

// isPageEntry reports whether a line is an entry of a page-numbered list
// ("Portrait of Franklin vii", "The Wharf at Evening 23"): title-like text
// that does not end a sentence, then a page number.
func isPageEntry(l string) bool {
	t := collapseSpaces(strings.TrimSpace(l))
	m := pageEntryRe.FindStringSubmatch(t)
	if m == nil {
		return false
	}
	words := strings.Fields(m[1])
	if len(words) == 0 || len(words) > 14 || endsSentence(m[1]) || startsWithQuote(m[1]) {
		return false
	}
	return titleCaseRatio(words) >= 0.6
}

// isPageList reports whether a paragraph of several lines is a
// page-numbered list: most lines are entries, and the rest short
// title-like lines (wrapped entries, "PAGE" column heads).
func isPageList(lines []string) bool {
	if len(lines) < 2 {
		return false
	}
	n := 0
	for _, l := range lines {
		t := strings.TrimSpace(l)
		switch {
		case isPageEntry(t):
			n++
		case strings.EqualFold(t, "page") || strings.EqualFold(t, "pages"):
		case len(strings.Fields(t)) <= 8 && !endsSentence(t) && titleCaseRatio(strings.Fields(t)) >= 0.6:
		default:
			return false
		}
	}
	return n*2 >= len(lines) && n >= 2
}

// pageListRun returns how many consecutive one-line paragraphs from i are
// page-numbered entries, when there are at least three; else 0.
func pageListRun(ps []para, i int) int {
	n := 0
	for i+n < len(ps) && len(ps[i+n].lines) == 1 && isPageEntry(ps[i+n].lines[0]) {
		n++
	}
	if n < 3 {
		return 0
	}
	return n
}

// isCorrections reports whether a paragraph is a transcriber's list of
// corrections or remark about them: most lines are corrections ("Page 92:
// Changed propesed to proposed"), or it is a short remark ("Obvious
// printer's errors have been silently corrected.").
func isCorrections(lines []string) bool {
	n := 0
	for _, l := range lines {
		if correctionLineRe.MatchString(strings.TrimSpace(l)) {
			n++
		}
	}
	if n > 0 && n*2 >= len(lines) {
		return true
	}
	return len(lines) <= 4 && len(strings.Fields(strings.Join(lines, " "))) <= 50 && noteProseRe.MatchString(collapseSpaces(strings.Join(lines, " ")))
}
