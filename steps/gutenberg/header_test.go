package gutenberg

import (
	"strings"
	"testing"
)

func splitLines(s string) []string {
	return strings.Split(strings.TrimSuffix(decode([]byte(s)).text, "\n"), "\n")
}

// bodyOf returns the body findBounds finds, joined with newlines and trimmed.
func bodyOf(b bounds, lines []string) string {
	return strings.TrimSpace(strings.Join(lines[b.start:b.end], "\n"))
}

func TestFindBounds(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		style   string
		body    string
		marker  bool
		footer  bool
		license bool
	}{
		{
			name:  "new 2023 with BOM and CRLF",
			text:  "\ufeffThe Project Gutenberg eBook of Tom\r\n\r\nTitle: Tom\r\n\r\n*** START OF THE PROJECT GUTENBERG EBOOK TOM ***\r\n\r\nBODY\r\n\r\n*** END OF THE PROJECT GUTENBERG EBOOK TOM ***\r\n\r\nSTART: FULL LICENSE\r\n\r\nlicense text\r\n",
			style: styleNew, body: "BODY", marker: true, footer: true, license: true,
		},
		{
			name:  "mid with End of line before END marker",
			text:  "The Project Gutenberg EBook of X\n\n*** START OF THIS PROJECT GUTENBERG EBOOK X ***\n\nBODY\n\nEnd of the Project Gutenberg EBook of X, by\nY\n\n*** END OF THIS PROJECT GUTENBERG EBOOK X ***\n\n*** START: FULL LICENSE ***\n",
			style: styleMid, body: "BODY", marker: true, footer: true, license: true,
		},
		{
			name:  "old small print header, no footer",
			text:  "**Welcome To The World of Free Plain Vanilla Electronic Texts**\n\nThe Project Gutenberg Etext of X by Y\n\n***START**THE SMALL PRINT!**FOR PUBLIC DOMAIN ETEXTS**START***\nlawyers\n*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*\n\nBODY\n\nTHE END\n",
			style: styleOld, body: "BODY\n\nTHE END", marker: true, footer: false, license: true,
		},
		{
			name:  "old style with End of Project Gutenberg's footer",
			text:  "The Project Gutenberg Etext of X\n***START**THE SMALL PRINT!**\nsmall\n*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*END*\nBODY\nEnd of Project Gutenberg's X, by Y\n",
			style: styleOld, body: "BODY", marker: true, footer: true, license: true,
		},
		{
			name:  "START marker wrapped over two lines",
			text:  "header\n\n*** START OF THE PROJECT GUTENBERG EBOOK THE ADVENTURES OF\nTOM SAWYER ***\nBODY\n*** END OF THE PROJECT\nGUTENBERG EBOOK ***\n",
			style: styleNew, body: "BODY", marker: true, footer: true,
		},
		{
			name:  "START marker split after START OF",
			text:  "header\n***START OF\nTHIS PROJECT GUTENBERG EBOOK X***\nBODY\n***END OF THIS PROJECT GUTENBERG EBOOK X***\n",
			style: styleMid, body: "BODY", marker: true, footer: true,
		},
		{
			name:  "repeated START markers",
			text:  "header\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\n\nProduced by someone\n\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\nBODY\n*** END OF THE PROJECT GUTENBERG EBOOK X ***\n*** END OF THE PROJECT GUTENBERG EBOOK X ***\n",
			style: styleNew, body: "BODY", marker: true, footer: true,
		},
		{
			name:  "START without stars",
			text:  "header\nSTART OF THE PROJECT GUTENBERG EBOOK X\nBODY\nEND OF THE PROJECT GUTENBERG EBOOK X\n",
			style: styleNew, body: "BODY", marker: true, footer: true,
		},
		{
			name:  "copyrighted variant",
			text:  "header\n*** START OF THE COPYRIGHTED PROJECT GUTENBERG EBOOK X ***\nBODY\n*** END OF THE COPYRIGHTED PROJECT GUTENBERG EBOOK X ***\n",
			style: styleNew, body: "BODY", marker: true, footer: true,
		},
		{
			name:  "END before START is ignored",
			text:  "*** END OF THE PROJECT GUTENBERG EBOOK OLD ***\nheader\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\nBODY\n*** END OF THE PROJECT GUTENBERG EBOOK X ***\n",
			style: styleNew, body: "BODY", marker: true, footer: true,
		},
		{
			name:  "only a footer",
			text:  "BODY\n\nEnd of the Project Gutenberg EBook of X\nlicense\n",
			style: styleNone, body: "BODY", footer: true,
		},
		{
			name:  "End of this Etext footer",
			text:  "*** START OF THE PROJECT GUTENBERG EBOOK X ***\nBODY\nEnd of this Etext of X\n",
			style: styleNew, body: "BODY", marker: true, footer: true,
		},
		{
			name:  "no markers at all",
			text:  "Just a story.\n\nIt ends.\n",
			style: styleNone, body: "Just a story.\n\nIt ends.",
		},
		{
			name:  "small print at the end",
			text:  "The Project Gutenberg Etext of X\nPlease take a look at the important information in this header.\n\nBODY\n" + strings.Repeat("more body\n", 10) + "\nEnd of The Project Gutenberg Etext of X\n\n***START**THE SMALL PRINT!**FOR PUBLIC DOMAIN ETEXTS**START***\nlawyers\n*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*\n",
			style: styleOld, body: "BODY\n" + strings.TrimSpace(strings.Repeat("more body\n", 10)), footer: true, license: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lines := splitLines(tc.text)
			b := findBounds(lines)
			if got := bodyOf(b, lines); got != tc.body {
				t.Errorf("body = %q, want %q", got, tc.body)
			}
			if b.style != tc.style || b.marker != tc.marker || b.footer != tc.footer || (b.license > 0) != tc.license {
				t.Errorf("style=%s marker=%v footer=%v license=%d, want %s %v %v %v", b.style, b.marker, b.footer, b.license, tc.style, tc.marker, tc.footer, tc.license)
			}
		})
	}
}

func TestGuessedHeader(t *testing.T) {
	lines := splitLines("Title: A Book\nAuthor: Some One\n\nIt was a dark night.\n")
	b := findBounds(lines)
	if !b.guessed || b.marker || bodyOf(b, lines) != "It was a dark night." {
		t.Errorf("bounds %+v body %q", b, bodyOf(b, lines))
	}
	m := findMeta(lines[:b.start], "file")
	if m.title != "A Book" || m.author != "Some One" || m.source != "fields" {
		t.Errorf("meta %+v", m)
	}
}

func TestFindMeta(t *testing.T) {
	tests := []struct {
		header, title, author, source string
	}{
		{"Title: The Adventures of Tom Sawyer, Complete\n\nAuthor: Mark Twain\n", "The Adventures of Tom Sawyer, Complete", "Mark Twain", "fields"},
		{"Title: The Autobiography of\n       Benjamin Franklin\nAuthor: Benjamin Franklin\n", "The Autobiography of Benjamin Franklin", "Benjamin Franklin", "fields"},
		{"The Project Gutenberg Etext of Huckleberry Finn by Twain/Clemens\n", "Huckleberry Finn", "Twain/Clemens", "first_line"},
		{"Project Gutenberg's The Prince, by Nicolo Machiavelli\n", "The Prince", "Nicolo Machiavelli", "first_line"},
		{"The Project Gutenberg EBook of The Autobiography of Benjamin Franklin, by\nBenjamin Franklin\n", "The Autobiography of Benjamin Franklin", "Benjamin Franklin", "first_line"},
		{"*****The Project Gutenberg Etext of Walden*****\n", "Walden", "", "first_line"},
		{"nothing here\n", "fallback", "", "file_name"},
	}
	for _, tc := range tests {
		m := findMeta(splitLines(tc.header), "fallback")
		if m.title != tc.title || m.author != tc.author || m.source != tc.source {
			t.Errorf("findMeta(%q) = %+v, want %q %q %q", tc.header, m, tc.title, tc.author, tc.source)
		}
	}
}

func TestRefineMeta(t *testing.T) {
	front := splitLines("  The INTERNET WIRETAP First Electronic Edition of\n         THE ADVENTURES OF HUCKLEBERRY FINN\n               (Tom Sawyer's Comrade)\n                         BY\n                     MARK TWAIN\n")
	m := refineMeta(meta{title: "Huckleberry Finn", author: "Twain/Clemens", source: "first_line"}, front)
	if m.title != "The Adventures of Huckleberry Finn" || m.author != "Mark Twain" || m.source != "first_line+front_matter" {
		t.Errorf("refineMeta = %+v", m)
	}
	// An author from fields is kept; a "By" line naming someone else is ignored.
	m = refineMeta(meta{title: "X", author: "Clemens", source: "fields"}, []string{"By Someone Else"})
	if m.author != "Clemens" || m.source != "fields" {
		t.Errorf("refineMeta = %+v", m)
	}
	m = refineMeta(meta{title: "X", source: "file_name"}, []string{"By Jane Doe"})
	if m.author != "Jane Doe" {
		t.Errorf("refineMeta = %+v", m)
	}
}
