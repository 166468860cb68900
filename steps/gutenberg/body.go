package gutenberg

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mlbuild/mlbuild/internal/lazyre"
)

// para is one paragraph of the body as the file has it: consecutive
// non-blank lines.
type para struct {
	lines  []string // right-trimmed, indentation kept
	blanks int      // blank lines before it; the body's first paragraph gets startBlanks
}

// startBlanks is how many blank lines the body's first paragraph counts as
// following: a paragraph that opens the body opens a section.
const startBlanks = 100

func splitParas(lines []string) []para {
	var out []para
	blanks := startBlanks
	var cur []string
	flush := func() {
		if cur != nil {
			out = append(out, para{lines: cur, blanks: blanks})
			cur, blanks = nil, 0
		}
	}
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			flush()
			blanks++
			continue
		}
		cur = append(cur, strings.TrimRight(l, " "))
	}
	flush()
	return out
}

// textPara is a paragraph kept for chunking.
type textPara struct {
	// lines are the paragraph's lines, each its words joined by single
	// spaces: one line for prose (hard wraps joined), several for verse.
	lines   []string
	section bool // a section break (a dropped heading, table of contents, separator) precedes it
}

// count is how many items of one kind were dropped and how many words they held.
type count struct {
	Items int `json:"items"`
	Words int `json:"words"`
}

func (c *count) add(items int, text ...string) {
	c.Items += items
	for _, t := range text {
		c.Words += len(strings.Fields(t))
	}
}

// drops counts what was removed from a book's body, by reason.
type drops struct {
	FrontMatter      count `json:"front_matter"`      // title-page lines before the first heading
	TOC              count `json:"toc"`               // tables of contents, chapter-summary and page-numbered lists, indexes
	Headings         count `json:"headings"`          // chapter and section headings, with their titles and summaries
	Epigraphs        count `json:"epigraphs"`         // quotations with an attribution ("--Old Almanac.") at the head of the book or a chapter
	Navigation       count `json:"navigation"`        // navigation lines of text made from HTML ("Next Chapter | Contents")
	Separators       count `json:"separators"`        // "* * *" scene breaks
	Tables           count `json:"tables"`            // text tables drawn with | + - { }
	Illustrations    count `json:"illustrations"`     // [Illustration: ...] markers
	Footnotes        count `json:"footnotes"`         // footnote paragraphs ("[1] ...", "[Footnote ...]")
	FootnoteRefs     count `json:"footnote_refs"`     // inline "[1]" and "*" markers (counted as items only)
	TranscriberNotes count `json:"transcriber_notes"` // "Transcriber's Note" paragraphs
	Credits          count `json:"credits"`           // "Produced by ...", "E-text prepared by ..."
	Boilerplate      count `json:"boilerplate"`       // Project Gutenberg notices, URLs and e-mail addresses inside the body
	Tail             count `json:"tail"`              // a book's last words too few for a chunk
}

func (d *drops) addAll(o drops) {
	for _, p := range [][2]*count{
		{&d.FrontMatter, &o.FrontMatter}, {&d.TOC, &o.TOC}, {&d.Headings, &o.Headings},
		{&d.Epigraphs, &o.Epigraphs}, {&d.Navigation, &o.Navigation},
		{&d.Separators, &o.Separators}, {&d.Tables, &o.Tables}, {&d.Illustrations, &o.Illustrations}, {&d.Footnotes, &o.Footnotes},
		{&d.FootnoteRefs, &o.FootnoteRefs}, {&d.TranscriberNotes, &o.TranscriberNotes}, {&d.Credits, &o.Credits},
		{&d.Boilerplate, &o.Boilerplate}, {&d.Tail, &o.Tail},
	} {
		p[0].Items += p[1].Items
		p[0].Words += p[1].Words
	}
}

func (d *drops) words() int {
	n := 0
	for _, c := range []count{d.FrontMatter, d.TOC, d.Headings, d.Epigraphs, d.Navigation, d.Separators, d.Tables, d.Illustrations, d.Footnotes,
		d.FootnoteRefs, d.TranscriberNotes, d.Credits, d.Boilerplate, d.Tail} {
		n += c.Words
	}
	return n
}

const numeral = `[IVXLCDM]+|[ivxlcdm]+|\d+|(?i:the\s+)?(?i:last|first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|thirteenth|fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty(?:[\s-]+(?:one|two|three|four|five|six|seven|eight|nine|first|second|third|fourth|fifth|sixth|seventh|eighth|ninth))?|thirty|forty|fifty)`

const headWord = `CHAPTER|Chapter|CHAP\.|Chap\.|BOOK|Book|PART|Part|VOLUME|Volume|VOL\.|Vol\.|SECTION|Section|STAVE|Stave|CANTO|Canto|LETTER|Letter|EPISODE|Episode`

var (
	// "CHAPTER I.", "Chapter XII", "CHAPTER THE LAST", "BOOK ONE—THE
	// PAST", "CHAPTER I. Y-o-u-u Tom—Aunt Polly ...". After the numeral
	// comes the end of the line or punctuation, so that "Part of the ..."
	// and "Book I bought" are prose.
	chapterRe = lazyre.New(`^(` + headWord + `)\s+(` + numeral + `)(?:\s*$|\s*[.:—–-]|\s+[-—–])`)
	// "CHAPTER I THE BOY WHO ..." in capitals throughout.
	chapterCapsRe = lazyre.New(`^(` + headWord + `)\s+(` + numeral + `)\s+[^\p{Ll}]+$`)
	// A Roman or Arabic numeral alone on a line: "XII.", "IV", "12.".
	numeralAloneRe = lazyre.New(`^(?:[IVXLCDM]{1,8}|[ivxlcdm]{1,8}\.|\d{1,3})\.?$`)
	// Section headings that are a known word alone on a line.
	sectionRe = lazyre.New(`(?i)^(?:(?:THE\s+)?AUTHOR['’]?S['’]?\s+)?(?:PREFACE(?:\s+TO\s+.{1,40})?|INTRODUCTION|INTRODUCTORY(?:\s+NOTE|\s+REMARKS)?|PREFATORY\s+NOTE|FOREWORD|PROLOGUE|EPILOGUE|CONCLUSION|AFTERWORD|APPENDIX(?:\s+[A-Z0-9]{1,4})?|NOTES|FOOTNOTES|ENDNOTES|THE\s+END|FINIS|NOTICE|EXPLANATORY|DEDICATION|GLOSSARY|POSTSCRIPT|ADVERTISEMENT)[.:]?$`)
	// Headings of lists that are dropped whole: tables of contents, lists
	// of illustrations, indexes.
	tocHeadingRe = lazyre.New(`(?i)^(?:(?:TABLE\s+OF\s+)?CONTENTS|(?:LIST\s+OF\s+)?ILLUSTRATIONS|LIST\s+OF\s+(?:PLATES|MAPS|FIGURES)|INDEX)[.:]?$`)
	// A line of a table of contents that ends with a page number.
	pageNumberRe = lazyre.New(`(?:\.\s*){3,}\s*\d*\s*$|\s{2,}(?:\d{1,4}|[ivxlcdm]{1,6})\s*$`)
	// Scene breaks: "* * * * *", "-----", "~~~".
	separatorRe = lazyre.New(`^[\s*\-_=~.·•#+]{3,}$`)

	illustrationStartRe = lazyre.New(`(?i)^\[\s*(?:Illustration|Frontispiece|Picture|Image|Plate)\b`)
	illustrationRe      = lazyre.New(`(?i)\[\s*(?:Illustration|Frontispiece|Picture|Image|Plate)\b[^\]]*\]`)
	transcriberRe       = lazyre.New(`(?i)^\[?\s*(?:transcriber|transcribers|transcriber['’]s|transcribers['’]|e-?text\s+editor['’]s|producer['’]s)\s+notes?\b`)
	transcriberInlineRe = lazyre.New(`(?i)\[\s*(?:transcriber|transcribers|transcriber['’]s|transcribers['’])\s+notes?\b[^\]]*\]`)
	footnoteStartRe     = lazyre.New(`^(?:\[(?:\d{1,3}|\*{1,3}|[A-Za-z]|†|‡)\]|\[\*\s|\[Footnote\b|Footnote\s+\d+\s*:)`)
	footnoteRefRe       = lazyre.New(`\[(?:\d{1,3}|\*{1,3}|[A-Za-z]|†|‡)\]`)
	creditRe            = lazyre.New(`(?i)^(?:produced\s+by|(?:this\s+)?e-?(?:text|book)\s+(?:was\s+)?(?:prepared|produced|created|transcribed|scanned)\s+by|prepared\s+by|transcribed\s+(?:from\s+.{1,80}?\s+)?by|scanned\s+(?:and\s+proof(?:ed|read)\s+)?by|proofread\s+by|(?:html\s+|electronic\s+|this\s+)?(?:version|edition)\s+(?:prepared\s+|produced\s+)?by|digitized\s+by|text\s+file\s+produced\s+by|(?:updated|additional)\s+(?:editing\s+)?by|an\s+anonymous\s+volunteer)`)
	boilerplateRe       = lazyre.New(`(?i)project\s+gutenberg|gutenberg\.(?:org|net)|\bpglaf\b|this\s+(?:e-?text|e-?book|file)\s+should\s+be\s+named|\bhttps?://|\bwww\.\S|[\w.+-]+@[\w-]+\.[a-z]{2,}|small\s+print!`)
)

// bookText holds what line joining needs to know about a whole book.
type bookText struct {
	width       int            // the book's wrap width (90th percentile line length)
	vocab       map[string]int // word counts, for deciding "narra-/tive" against "sugar-/hogshead"
	joinHyphens bool           // the book breaks words at line ends (many lines end with "letter-")
}

func newBookText(lines []string) *bookText {
	bt := &bookText{vocab: map[string]int{}}
	var lens []int
	hyph := 0
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" {
			continue
		}
		lens = append(lens, utf8.RuneCountInString(collapseSpaces(t)))
		f := strings.Fields(t)
		for k, w := range f {
			if k == len(f)-1 && endsWithBreakHyphen(w) {
				hyph++
				continue
			}
			if c := wordCore(w); c != "" {
				bt.vocab[c]++
			}
		}
	}
	bt.width = 70
	if len(lens) > 0 {
		sort.Ints(lens)
		bt.width = max(lens[len(lens)*9/10], 30)
	}
	bt.joinHyphens = len(lens) > 0 && hyph*100 > len(lens)
	return bt
}

// wordCore lower-cases w and trims everything but letters from its ends,
// keeping inner hyphens and apostrophes.
func wordCore(w string) string {
	return strings.ToLower(strings.TrimFunc(w, func(r rune) bool { return !unicode.IsLetter(r) }))
}

// endsWithBreakHyphen reports whether w ends with a single hyphen after a
// letter ("narra-"), as a word broken at a line end does.
func endsWithBreakHyphen(w string) bool {
	if !strings.HasSuffix(w, "-") || strings.HasSuffix(w, "--") {
		return false
	}
	r, _ := utf8.DecodeLastRuneInString(w[:len(w)-1])
	return unicode.IsLetter(r)
}

// extract classifies a body's paragraphs and returns the text paragraphs,
// what was dropped, and the front-matter lines (for the title page).
func extract(body []string, keepHeadings bool) ([]textPara, drops, []string) {
	bt := newBookText(body)
	ps := splitParas(body)
	var d drops
	var out []textPara
	var front []string
	pendingSection := false
	prevHeading := false
	tocMode := false
	tocSeen := map[string]bool{}

	emitText := func(lines []string) {
		tp, ok := bt.clean(lines, &d)
		if !ok {
			return
		}
		tp.section = pendingSection
		pendingSection = false
		prevHeading = false
		out = append(out, tp)
	}
	heading := func(lines []string) {
		if keepHeadings {
			tp, ok := bt.clean(lines, &d)
			if ok {
				tp.section = true
				out = append(out, tp)
			}
		} else {
			d.Headings.add(1, lines...)
		}
		pendingSection = !keepHeadings
		prevHeading = true
	}

	fe := frontMatterEnd(ps)
	for i := 0; i < fe; i++ {
		p := ps[i]
		switch {
		case isNavigation(p.lines):
			d.Navigation.add(1, p.lines...)
		case isBoilerplate(p.lines):
			d.Boilerplate.add(1, p.lines...)
		case isCredit(p.lines):
			d.Credits.add(1, p.lines...)
		default:
			d.FrontMatter.add(1, p.lines...)
		}
		front = append(front, p.lines...)
		pendingSection = true
	}

	for i := fe; i < len(ps); i++ {
		p := ps[i]
		first := strings.TrimSpace(p.lines[0])
		nearEdge := i < 40 || i >= len(ps)-20

		if isNavigation(p.lines) {
			d.Navigation.add(1, p.lines...)
			pendingSection = true
			continue
		}
		if isTable(p.lines) {
			d.Tables.add(1, p.lines...)
			continue
		}
		if separatorRe.MatchString(first) && len(p.lines) == 1 && !hasAlnum(first) {
			d.Separators.add(1)
			pendingSection = true
			continue
		}
		if illustrationStartRe.MatchString(first) {
			// A marker spanning paragraphs, or one that never closes, goes
			// whole; a closed one is cut out of its paragraph below.
			if n := bracketSpan(ps, i); n > 1 || !closes(p.lines) {
				for k := i; k < i+n; k++ {
					d.Illustrations.add(0, ps[k].lines...)
				}
				d.Illustrations.Items++
				i += n - 1
				continue
			}
		}
		if transcriberRe.MatchString(first) || (len(p.lines) == 1 && correctionsHeadingRe.MatchString(first)) {
			n := 1
			if strings.HasPrefix(first, "[") {
				n = bracketSpan(ps, i)
			} else if len(p.lines) == 1 && len(strings.Fields(first)) <= 8 {
				// "Transcriber's Notes:" heading: its notes follow until the
				// next section gap, and its corrections however far apart.
				for n < 50 && i+n < len(ps) && ((n < 10 && ps[i+n].blanks < 2) || isCorrections(ps[i+n].lines)) {
					n++
				}
			}
			for k := i; k < i+n; k++ {
				d.TranscriberNotes.add(0, ps[k].lines...)
			}
			d.TranscriberNotes.Items++
			i += n - 1
			continue
		}
		if isCorrections(p.lines) {
			d.TranscriberNotes.add(1, p.lines...)
			continue
		}
		if footnoteStartRe.MatchString(first) {
			n := bracketSpan(ps, i)
			for k := i; k < i+n; k++ {
				d.Footnotes.add(0, ps[k].lines...)
			}
			d.Footnotes.Items++
			i += n - 1
			continue
		}
		if isBoilerplate(p.lines) {
			d.Boilerplate.add(1, p.lines...)
			continue
		}
		if len(p.lines) <= 8 && (nearEdge || strings.HasPrefix(strings.ToLower(first), "produced by")) && isCredit(p.lines) {
			d.Credits.add(1, p.lines...)
			continue
		}

		if tocMode {
			key, bare := chapterKey(first)
			switch {
			case tocHeadingRe.MatchString(first) && len(p.lines) == 1:
				d.TOC.add(1, p.lines...)
				continue
			case key != "" && bare && tocSeen[key]:
				tocMode = false // the real heading of a chapter the contents listed
			case sectionRe.MatchString(first) && len(p.lines) == 1 && p.blanks >= 2:
				tocMode = false
			case isListLike(p.lines):
				if key != "" {
					tocSeen[key] = true
				}
				d.TOC.add(1, p.lines...)
				continue
			default:
				tocMode = false
			}
		}

		if tocHeadingRe.MatchString(first) && len(p.lines) <= 2 {
			tocMode = true
			tocSeen = map[string]bool{}
			d.TOC.add(1, p.lines...)
			pendingSection = true
			prevHeading = false
			continue
		}
		if isTOCParagraph(p.lines) || isPageList(p.lines) {
			d.TOC.add(1, p.lines...)
			pendingSection = true
			continue
		}
		if n := pageListRun(ps, i); n > 0 {
			for k := i; k < i+n; k++ {
				d.TOC.add(1, ps[k].lines...)
			}
			i += n - 1
			pendingSection = true
			continue
		}
		if isSummary(p.lines, prevHeading) {
			// A chapter's summary under its heading is part of the
			// heading; elsewhere it is an entry of a list of them.
			if prevHeading {
				heading(p.lines)
			} else {
				d.TOC.add(1, p.lines...)
				pendingSection = true
			}
			continue
		}
		if pendingSection || prevHeading || len(out) == 0 {
			if n := epigraphLen(ps, i); n > 0 {
				for k := i; k < i+n; k++ {
					d.Epigraphs.add(0, ps[k].lines...)
				}
				d.Epigraphs.Items++
				i += n - 1
				pendingSection = true
				continue
			}
		}
		if h := headingLines(p.lines); h > 0 {
			heading(p.lines[:h])
			if h < len(p.lines) {
				emitText(p.lines[h:])
			}
			continue
		}
		if len(p.lines) == 1 && (p.blanks >= 2 || prevHeading) && isDisplayLine(first) {
			heading(p.lines)
			continue
		}
		if prevHeading && isTitleParagraph(p.lines) {
			// The chapter's title, wrapped or not, under a bare heading.
			heading(p.lines)
			continue
		}
		emitText(p.lines)
	}
	return out, d, front
}

// frontMatterEnd returns how many paragraphs at the start of the body are
// a title page: short display paragraphs (titles, "By ...", publisher,
// credits) followed by a heading or by a long prose paragraph. It returns 0
// when the body opens with anything else (dialogue, short prose), so that a
// book without headings loses nothing.
func frontMatterEnd(ps []para) int {
	display := 0
	for i, p := range ps {
		if i >= 30 {
			return 0
		}
		first := strings.TrimSpace(p.lines[0])
		switch {
		case isBoilerplate(p.lines) || (len(p.lines) <= 8 && isCredit(p.lines)) || isNavigation(p.lines):
			continue
		case separatorRe.MatchString(first) && len(p.lines) == 1:
			continue
		case tocHeadingRe.MatchString(first) || sectionRe.MatchString(first) || isTOCParagraph(p.lines) || headingLines(p.lines) > 0 ||
			isPageList(p.lines) || isSummary(p.lines, false) || pageListRun(ps, i) > 0 || epigraphLen(ps, i) > 0:
			return i
		case isDisplay(p.lines):
			display++
			continue
		case display > 0 && len(strings.Fields(strings.Join(p.lines, " "))) >= 20:
			return i
		default:
			return 0
		}
	}
	return 0
}

// isDisplay reports whether a paragraph is title-page material: short,
// mostly capitalized words, not dialogue.
func isDisplay(lines []string) bool {
	if len(lines) > 8 {
		return false
	}
	words := strings.Fields(strings.Join(lines, " "))
	if len(words) == 0 || len(words) > 40 || startsWithQuote(strings.TrimSpace(lines[0])) {
		return false
	}
	lower, letters := 0, 0
	for _, w := range words {
		if r, ok := firstLetter(w); ok {
			letters++
			if unicode.IsLower(r) {
				lower++
			}
		}
	}
	return lower*2 < letters || letters == 0
}

// isDisplayLine reports whether a lone line is a display heading: no
// lower-case letters, at most ten words, not dialogue or an exclamation
// ("BENJAMIN FRANKLIN", "HIS AUTOBIOGRAPHY", "1706-1757").
func isDisplayLine(s string) bool {
	if s == "" || startsWithQuote(s) || !hasAlnum(s) || strings.HasSuffix(s, "!") || strings.HasSuffix(s, "?") {
		return false
	}
	if len(strings.Fields(s)) > 10 {
		return false
	}
	for _, r := range s {
		if unicode.IsLower(r) {
			return false
		}
	}
	return true
}

// headingLines returns how many leading lines of a paragraph form a
// heading: a chapter line, a numeral alone or a known section word,
// followed by up to two title lines ("CHAPTER I.\nTHE BOY WHO ...").
func headingLines(lines []string) int {
	first := strings.TrimSpace(lines[0])
	if !isHeadingLine(first) {
		return 0
	}
	h := 1
	for h < len(lines) && h < 3 && isTitleLine(strings.TrimSpace(lines[h])) {
		h++
	}
	return h
}

func isHeadingLine(s string) bool {
	if len(strings.Fields(s)) > 16 {
		return false
	}
	return chapterRe.MatchString(s) || chapterCapsRe.MatchString(s) || numeralAloneRe.MatchString(s) || sectionRe.MatchString(s)
}

// isTitleLine reports whether a line following a heading is its title:
// short, capitalized, not a sentence.
func isTitleLine(s string) bool {
	words := strings.Fields(s)
	if len(words) == 0 || len(words) > 12 || startsWithQuote(s) {
		return false
	}
	if isDisplayLine(s) {
		return true
	}
	return titleRatio(words) >= 0.6 && !strings.ContainsAny(lastRune(s), ".!?,;")
}

// chapterKey returns "CHAPTER IV" for a chapter line, and whether the
// line is bare (no title after the numeral).
func chapterKey(s string) (string, bool) {
	m := chapterRe.FindStringSubmatchIndex(s)
	if m == nil {
		return "", false
	}
	word := strings.ToUpper(strings.TrimSuffix(s[m[2]:m[3]], "."))
	num := strings.ToUpper(collapseSpaces(s[m[4]:m[5]]))
	rest := strings.Trim(s[m[5]:], " .:")
	return word + " " + num, rest == ""
}

// isListLike reports whether a paragraph inside a table of contents or
// list of illustrations is one of its entries.
func isListLike(lines []string) bool {
	first := strings.TrimSpace(lines[0])
	if (chapterRe.MatchString(first) || chapterCapsRe.MatchString(first)) && len(lines) <= 3 {
		return true
	}
	for _, l := range lines {
		t := strings.TrimSpace(l)
		words := strings.Fields(t)
		if len(words) > 14 {
			return false
		}
		if pageNumberRe.MatchString(l) || chapterRe.MatchString(t) || numeralAloneRe.MatchString(t) {
			continue
		}
		// An entry is capitalized like a title, or short and not a
		// sentence: "Tom and Becky stir up the Town".
		if titleRatio(words) < 0.5 && (len(words) > 10 || endsSentence(t)) {
			return false
		}
	}
	return true
}

// isTOCParagraph reports whether a paragraph of several lines is a table
// of contents: most lines are chapter lines or end with page numbers.
func isTOCParagraph(lines []string) bool {
	if len(lines) < 2 {
		return false
	}
	n := 0
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if chapterRe.MatchString(t) || chapterCapsRe.MatchString(t) || (pageNumberRe.MatchString(l) && len(strings.Fields(t)) <= 14) {
			n++
		}
	}
	return n*2 > len(lines) && n >= 2
}

// titleRatio is the share of words with letters that start with a capital.
func titleRatio(words []string) float64 {
	up, n := 0, 0
	for _, w := range words {
		if r, ok := firstLetter(w); ok {
			n++
			if unicode.IsUpper(r) {
				up++
			}
		}
	}
	if n == 0 {
		return 1
	}
	return float64(up) / float64(n)
}

func firstLetter(w string) (rune, bool) {
	for _, r := range w {
		if unicode.IsLetter(r) {
			return r, true
		}
		if unicode.IsDigit(r) {
			return 0, false
		}
	}
	return 0, false
}

// endsSentence reports whether s ends with a full stop, question or
// exclamation mark (closing quotes aside).
func endsSentence(s string) bool {
	core := strings.TrimRight(s, closers)
	r, _ := utf8.DecodeLastRuneInString(core)
	return strings.ContainsRune(".!?…", r)
}

// isTable reports whether most lines of a paragraph are rows or borders
// of a text table ("| S.| * |", "+---+---+", "{ 5 } Rise, wash").
func isTable(lines []string) bool {
	n := 0
	for _, l := range lines {
		t := strings.TrimSpace(l)
		switch {
		case strings.Count(t, "|") >= 2:
			n++
		case strings.Trim(t, "+-=|_ ") == "" && strings.ContainsAny(t, "+|"):
			n++
		case strings.ContainsAny(t, "{}"):
			n++
		}
	}
	return n*2 > len(lines)
}

func lastRune(s string) string {
	r, _ := utf8.DecodeLastRuneInString(s)
	return string(r)
}

func hasAlnum(s string) bool {
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return true
		}
	}
	return false
}

func startsWithQuote(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return strings.ContainsRune("\"'“‘«„‹", r)
}

func isBoilerplate(lines []string) bool {
	return boilerplateRe.MatchString(strings.Join(lines, " "))
}

func isCredit(lines []string) bool {
	return creditRe.MatchString(strings.TrimSpace(lines[0]))
}

// bracketSpan returns how many paragraphs from i form one bracketed block
// ("[Illustration: ..." or "[Footnote ..." whose "]" comes paragraphs
// later): 1 when the bracket closes in paragraph i or does not close
// within 20 paragraphs.
func bracketSpan(ps []para, i int) int {
	depth := 0
	for k := i; k < len(ps) && k < i+20; k++ {
		for _, l := range ps[k].lines {
			depth += strings.Count(l, "[") - strings.Count(l, "]")
		}
		if depth <= 0 {
			return k - i + 1
		}
	}
	return 1
}

// closes reports whether every "[" in lines is closed.
func closes(lines []string) bool {
	depth := 0
	for _, l := range lines {
		depth += strings.Count(l, "[") - strings.Count(l, "]")
	}
	return depth <= 0
}

// clean turns a kept paragraph's raw lines into text: inline illustration
// markers, transcriber notes and footnote references removed, _emphasis_
// underscores dropped, whitespace collapsed, and hard-wrapped prose joined
// into one line (words broken at line ends rejoined). Verse and other
// paragraphs of short lines keep their lines. ok is false when nothing is
// left.
func (bt *bookText) clean(lines []string, d *drops) (textPara, bool) {
	raw := strings.Join(lines, "\n")
	if strings.Contains(raw, "[") {
		raw = replaceCounting(raw, illustrationRe, &d.Illustrations)
		raw = replaceCounting(raw, transcriberInlineRe, &d.TranscriberNotes)
		raw = footnoteRefRe.ReplaceAllStringFunc(raw, func(string) string {
			d.FootnoteRefs.Items++ // a marker, not a word
			return ""
		})
	}
	var toks [][]string
	for _, l := range strings.Split(raw, "\n") {
		var words []string
		for _, w := range strings.Fields(l) {
			if w == "*" || w == "**" || w == "†" || w == "‡" {
				d.FootnoteRefs.Items++
				continue
			}
			if w = stripEmphasis(w); w != "" {
				words = append(words, w)
			}
		}
		if len(words) > 0 {
			toks = append(toks, words)
		}
	}
	if len(toks) == 0 {
		return textPara{}, false
	}
	if bt.isVerse(toks) {
		tp := textPara{}
		for _, ws := range toks {
			tp.lines = append(tp.lines, strings.Join(ws, " "))
		}
		return tp, true
	}
	words := toks[0]
	for _, next := range toks[1:] {
		a, b := words[len(words)-1], next[0]
		if j, ok := bt.joinAcross(a, b); ok {
			words[len(words)-1] = j
			next = next[1:]
		}
		words = append(words, next...)
	}
	return textPara{lines: []string{strings.Join(words, " ")}}, true
}

func replaceCounting(s string, re *lazyre.Regexp, c *count) string {
	return re.ReplaceAllStringFunc(s, func(m string) string {
		c.add(1, m)
		return " "
	})
}

// isVerse reports whether a paragraph's lines are meant as lines: most of
// its lines (the last aside) are well short of the book's wrap width.
func (bt *bookText) isVerse(toks [][]string) bool {
	if len(toks) < 2 {
		return false
	}
	total := 0
	for _, ws := range toks[:len(toks)-1] {
		total += utf8.RuneCountInString(strings.Join(ws, " "))
	}
	avg := float64(total) / float64(len(toks)-1)
	return avg < 0.7*float64(bt.width)
}

// joinAcross decides how the last word a of a line and the first word b of
// the next join: as one word ("narra-"+"tive" → "narrative", "sugar-" +
// "hogshead" → "sugar-hogshead", "service—" + "she" → "service—she") or,
// when ok is false, as two words.
func (bt *bookText) joinAcross(a, b string) (string, bool) {
	switch {
	case endsWithBreakHyphen(a):
		r, _ := firstLetter(b)
		first, _ := utf8.DecodeRuneInString(b)
		if !unicode.IsLetter(first) {
			return "", false
		}
		if !unicode.IsLower(r) {
			return a + b, true // "Anglo-" + "Saxon"
		}
		stem := wordCore(a[:len(a)-1])
		tail := wordCore(b)
		joined, hyph := bt.vocab[stem+tail], bt.vocab[stem+"-"+tail]
		if joined > hyph || (joined == hyph && bt.joinHyphens) {
			return a[:len(a)-1] + b, true
		}
		return a + b, true
	case (strings.HasSuffix(a, "—") && a != "—") || (strings.HasSuffix(a, "--") && strings.Trim(a, "-") != ""):
		return a + b, true
	case strings.HasPrefix(b, "—") && b != "—" && !strings.HasSuffix(a, "—"):
		return a + b, true
	}
	return "", false
}

// stripEmphasis removes the underscores Project Gutenberg uses for italics
// ("_got_" → "got", "_like_!" → "like!"), keeping those inside a word.
func stripEmphasis(w string) string {
	if !strings.Contains(w, "_") {
		return w
	}
	r := []rune(w)
	out := r[:0:0]
	for k, c := range r {
		if c == '_' {
			prev := k == 0 || !isWordRune(r[k-1])
			next := k == len(r)-1 || !isWordRune(r[k+1])
			if prev || next {
				continue
			}
		}
		out = append(out, c)
	}
	return string(out)
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }
