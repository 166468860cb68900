package gutenberg

import (
	"strings"
	"testing"
)

// extractText runs extract on a body and renders the kept paragraphs as
// the chunks would show them; a section break shows as "§".
func extractText(body string, keepHeadings bool) (string, drops) {
	ps, d, _ := extract(splitLines(body), keepHeadings)
	var parts []string
	for i, p := range ps {
		s := strings.Join(p.lines, "\n")
		if p.section && i > 0 {
			s = "§" + s
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "\n\n"), d
}

const wrapped = `It was a fine morning and the sun was shining on the river and the
boys were out early, looking for something to do before school began.
`

func TestExtractHeadings(t *testing.T) {
	for _, h := range []string{
		"CHAPTER I.", "CHAPTER XII", "Chapter XII", "Chapter 3", "CHAPTER THE LAST", "Chapter the Last",
		"CHAPTER ONE", "BOOK II.", "PART I—THE PAST", "STAVE ONE.", "XIV.", "IV", "12.",
		"PREFACE", "Preface", "CONCLUSION", "INTRODUCTION", "EPILOGUE", "THE END", "FINIS", "APPENDIX A",
		"CHAPTER I. Y-o-u-u Tom—Aunt Polly Decides Upon her Duty",
		"CHAPTER VII THE WIDOW'S HOUSE",
	} {
		got, d := extractText("First paragraph here, a sentence.\n\n\n"+h+"\n\n"+wrapped, false)
		want := "First paragraph here, a sentence.\n\n§It was a fine morning and the sun was shining on the river and the boys were out early, looking for something to do before school began."
		if got != want || d.Headings.Items != 1 {
			t.Errorf("heading %q: got %q (headings %d)", h, got, d.Headings.Items)
		}
	}
}

func TestExtractNotHeadings(t *testing.T) {
	// Prose that merely starts like a heading, and shouted lines inside
	// the story, are kept.
	for _, p := range []string{
		"Part of the problem was the river.",
		"Book I bought yesterday was lost.",
		"Chapter and verse he could quote.",
		"LADIES AND CHILDREN NOT ADMITTED.",
		"“TOM!”",
		"HELP!",
	} {
		got, d := extractText("Some text before it, a sentence.\n\n"+p+"\n\nAnd after.\n", false)
		want := "Some text before it, a sentence.\n\n" + p + "\n\nAnd after."
		if got != want || d.Headings.Items != 0 {
			t.Errorf("%q: got %q (headings %d)", p, got, d.Headings.Items)
		}
	}
}

func TestExtractHeadingWithTitleLines(t *testing.T) {
	got, d := extractText("Before, a sentence.\n\nCHAPTER I.\nTHE BOY WHO LIVED\nYOU don't know about me without you have read a book.\n", false)
	if got != "Before, a sentence.\n\n§YOU don't know about me without you have read a book." || d.Headings.Items != 1 || d.Headings.Words != 6 {
		t.Errorf("got %q, %+v", got, d.Headings)
	}
}

func TestExtractKeepHeadings(t *testing.T) {
	got, _ := extractText("Before, a sentence.\n\n\nCHAPTER I.\n\n"+wrapped, true)
	if !strings.Contains(got, "§CHAPTER I.\n\nIt was a fine morning") {
		t.Errorf("got %q", got)
	}
}

func TestExtractFrontMatterAndTOC(t *testing.T) {
	body := `


THE ADVENTURES OF TOM SAWYER


By Mark Twain

(Samuel Langhorne Clemens)


CONTENTS


CHAPTER I. Y-o-u-u Tom—Aunt Polly Decides Upon her Duty—Tom Practices
Music—The Challenge—A Private Entrance

CHAPTER II. Strong Temptations—Strategic Movements—The Innocents
Beguiled


ILLUSTRATIONS


Tom Sawyer

Tom and Becky stir up the Town

“Got it at Last!”


PREFACE


Most of the adventures recorded in this book really occurred; one or two
were experiences of my own.

THE AUTHOR.


CHAPTER I


“Tom!”

No answer.
`
	got, d := extractText(body, false)
	want := "Most of the adventures recorded in this book really occurred; one or two were experiences of my own.\n\nTHE AUTHOR.\n\n§“Tom!”\n\nNo answer."
	if got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if d.FrontMatter.Items != 3 || d.TOC.Items != 7 || d.Headings.Items != 2 {
		t.Errorf("drops %+v", d)
	}
}

func TestExtractBareTOCEndsAtRealHeading(t *testing.T) {
	body := "CONTENTS\n\nCHAPTER I\n\nCHAPTER II\n\n\nCHAPTER I\n\nYes.\n\nNo answer.\n"
	got, d := extractText(body, false)
	if got != "Yes.\n\nNo answer." || d.TOC.Items != 3 || d.Headings.Items != 1 {
		t.Errorf("got %q, %+v %+v", got, d.TOC, d.Headings)
	}
}

func TestExtractTOCParagraph(t *testing.T) {
	body := "Text first, a sentence.\n\nChapter I. The Boy ........ 1\nChapter II. The Girl ....... 15\nChapter III. The End ....... 30\n\nMore text.\n"
	got, d := extractText(body, false)
	if got != "Text first, a sentence.\n\n§More text." || d.TOC.Items != 1 {
		t.Errorf("got %q, %+v", got, d.TOC)
	}
}

func TestExtractIllustrationsFootnotesNotes(t *testing.T) {
	body := `Text starts here, a sentence.

[Illustration: Tom at the fence]

He whitewashed[1] the fence [Illustration] all day.*

[Illustration: A caption that runs

over a blank line]

[1] A footnote about whitewash.

[* A starred footnote that
runs over two lines.]

[Transcriber's Note: a typo was fixed.]

Transcriber's Notes:

Italics are shown with underscores.

Obvious errors were corrected.


Produced by Jane Doe and the Online Distributed
Proofreading Team at http://www.pgdp.net

She was _very_ cross with snake_case.

[Both brothers were imaginary.]
`
	got, d := extractText(body, false)
	want := "Text starts here, a sentence.\n\nHe whitewashed the fence all day.*\n\nShe was very cross with snake_case.\n\n[Both brothers were imaginary.]"
	if got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if d.Illustrations.Items != 3 || d.Footnotes.Items != 2 || d.FootnoteRefs.Items != 1 || d.TranscriberNotes.Items != 2 || d.Boilerplate.Items+d.Credits.Items != 1 {
		t.Errorf("drops %+v", d)
	}
}

func TestExtractLoneStarFootnoteRef(t *testing.T) {
	got, d := extractText("“It’s Bull Harbison.” *\n\n[* If Mr. Harbison owned a slave named Bull, Tom would have spoken of\nhim as “Harbison’s Bull.”]\n\nNext.\n", false)
	if got != "“It’s Bull Harbison.”\n\nNext." || d.FootnoteRefs.Items != 1 || d.Footnotes.Items != 1 {
		t.Errorf("got %q %+v", got, d)
	}
}

func TestExtractCredits(t *testing.T) {
	body := "Produced by David Widger\n\n\n\nE-text prepared by the volunteers\n\n\nCHAPTER I\n\nIt begins.\n"
	got, d := extractText(body, false)
	if got != "It begins." || d.Credits.Items != 2 {
		t.Errorf("got %q, %+v", got, d)
	}
}

func TestExtractVerseAndJoins(t *testing.T) {
	body := `This is a long line of ordinary prose that wraps at the usual width of
seventy characters or so, as a printed book does, and the nar-
rative goes on with a sugar-hogshead and then a sugar-
hogshead again; here is a dash—
right there, and a
—dash opening a line, and an Anglo-
Saxon word with -- spaced dashes --
between words.

  And did young Stephen sicken,
    And did young Stephen die?
  And did the sad hearts thicken,
    And did the mourners cry?

Short line one
kept as a line of its own: the line before is short.
`
	got, _ := extractText(body, false)
	want := "This is a long line of ordinary prose that wraps at the usual width of seventy characters or so, as a printed book does, and the narrative goes on with a sugar-hogshead and then a sugar-hogshead again; here is a dash—right there, and a—dash opening a line, and an Anglo-Saxon word with -- spaced dashes -- between words.\n\n" +
		"And did young Stephen sicken,\nAnd did young Stephen die?\nAnd did the sad hearts thicken,\nAnd did the mourners cry?\n\n" +
		"Short line one\nkept as a line of its own: the line before is short."
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestExtractTablesAndSeparators(t *testing.T) {
	body := "Before, a sentence.\n\n+---+---+\n| T.| * |\n+---+---+\n\n* * * * *\n\nAfter.\n"
	got, d := extractText(body, false)
	if got != "Before, a sentence.\n\n§After." || d.Tables.Items != 1 || d.Separators.Items != 1 {
		t.Errorf("got %q, %+v", got, d)
	}
}

func TestExtractBoilerplateInBody(t *testing.T) {
	body := "Text, a sentence.\n\nThis file should be named 148.txt or 148.zip\n\nVisit www.gutenberg.org for more.\n\nEnd text.\n"
	got, d := extractText(body, false)
	if got != "Text, a sentence.\n\nEnd text." || d.Boilerplate.Items != 2 {
		t.Errorf("got %q, %+v", got, d)
	}
}
