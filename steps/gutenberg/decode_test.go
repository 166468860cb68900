package gutenberg

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name     string
		raw      []byte
		text     string
		encoding string
		bom      bool
		endings  string
	}{
		{"ascii lf", []byte("a\nb\n"), "a\nb\n", "ascii", false, "lf"},
		{"utf-8 bom crlf", []byte("\xEF\xBB\xBFTom\xE2\x80\x99s\r\nend\r\n"), "Tom’s\nend\n", "utf-8", true, "crlf"},
		{"ascii with bom is utf-8", []byte("\xEF\xBB\xBFplain\r\n"), "plain\n", "utf-8", true, "crlf"},
		{"latin-1", []byte("caf\xE9 na\xEFve\n"), "café naïve\n", "iso-8859-1", false, "lf"},
		{"cp1252 quotes", []byte("\x93Tom!\x94 \x97 she said\x85\n"), "“Tom!” — she said…\n", "windows-1252", false, "lf"},
		{"cp1252 undefined bytes dropped", []byte("a\x81b\x8Dc\n"), "abc\n", "windows-1252", false, "lf"},
		// A Latin-1 file with UTF-8 pasted in: the UTF-8 reads as UTF-8.
		{"latin-1 with utf-8 in it", []byte("caf\xE9 \xE2\x80\x9Cna\xEFve\xE2\x80\x9D and \xC3\xA9t\xC3\xA9 d\xE9j\xE0\n"), "café “naïve” and été déjà\n", "iso-8859-1+utf-8", false, "lf"},
		{"cp1252 with utf-8 in it", []byte("\x93Tom\x94 \xE2\x80\x94 na\xEFve \xE2\x80\xA6 x \xE9\n"), "“Tom” — naïve … x é\n", "windows-1252+utf-8", false, "lf"},
		// A UTF-8 sequence for a character Latin text would not hold stays
		// Latin-1 ("É»", not "ɻ").
		{"implausible utf-8 in latin-1", []byte("\xC9\xBB caf\xE9 na\xEFve \xE0 \xE8\n"), "É» café naïve à è\n", "iso-8859-1", false, "lf"},
		{"mostly utf-8 with a stray byte", []byte("na\xC3\xAFve caf\xC3\xA9 d\xE9j\xC3\xA0\n"), "naïve café déjà\n", "utf-8+windows-1252", false, "lf"},
		{"utf-16le", []byte("\xFF\xFEh\x00i\x00\r\x00\n\x00"), "hi\n", "utf-16le", true, "crlf"},
		{"utf-16be", []byte("\xFE\xFF\x00h\x00i\x00\n"), "hi\n", "utf-16be", true, "lf"},
		{"old mac cr", []byte("a\rb\r"), "a\nb\n", "ascii", false, "cr"},
		{"mixed endings", []byte("a\r\nb\nc"), "a\nb\nc", "ascii", false, "mixed"},
		{"controls", []byte("a\tb\x00c\x1b\fd\u00a0e\u00adf\u200bg"), "a bc\n\nd ef" + "g", "utf-8", false, "none"},
		{"empty", nil, "", "ascii", false, "none"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := decode(tc.raw)
			if d.text != tc.text || d.encoding != tc.encoding || d.bom != tc.bom || d.lineEndings != tc.endings {
				t.Errorf("decode(%q) = {%q %s bom=%v %s}, want {%q %s bom=%v %s}",
					tc.raw, d.text, d.encoding, d.bom, d.lineEndings, tc.text, tc.encoding, tc.bom, tc.endings)
			}
			if !utf8.ValidString(d.text) {
				t.Errorf("decode(%q) is not valid UTF-8", tc.raw)
			}
		})
	}
}

func TestEncodingWarning(t *testing.T) {
	latin := []string{"Title: X", "Character set encoding: ISO-8859-1", ""}
	utf := []string{"Character set encoding: UTF-8"}
	for _, tc := range []struct {
		header []string
		found  string
		want   string
	}{
		{latin, "iso-8859-1+utf-8", "the header declares ISO-8859-1 but the file also holds UTF-8"},
		{latin, "iso-8859-1", ""},
		{utf, "utf-8+windows-1252", "the header declares UTF-8 but the file holds bytes that are not UTF-8"},
		{utf, "utf-8", ""},
		{latin, "utf-8", "the header declares ISO-8859-1 but the file also holds UTF-8"},
		{latin, "utf-8+windows-1252", "the header declares ISO-8859-1 but the file also holds UTF-8"},
		{utf, "windows-1252", "the header declares UTF-8 but the file holds bytes that are not UTF-8"},
		{latin, "ascii", ""},
		{nil, "iso-8859-1+utf-8", ""},
	} {
		if got := encodingWarning(tc.header, tc.found); !strings.HasPrefix(got, tc.want) || (tc.want == "") != (got == "") {
			t.Errorf("encodingWarning(%q, %s) = %q, want %q...", tc.header, tc.found, got, tc.want)
		}
	}
}
