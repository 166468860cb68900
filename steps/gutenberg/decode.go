package gutenberg

import (
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// decoded is a book's text after byte-level normalization.
type decoded struct {
	text        string // LF line endings, no BOM, no control characters
	encoding    string // "utf-8", "ascii", "windows-1252", "utf-16le", "utf-16be"
	bom         bool
	lineEndings string // "lf", "crlf", "cr", "mixed" or "none"
}

// cp1252 maps bytes 0x80–0x9F to the characters Windows-1252 assigns them.
// Bytes it leaves undefined map to 0 and are dropped.
var cp1252 = [32]rune{
	'€', 0, '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', 0, 'Ž', 0,
	0, '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', 0, 'ž', 'Ÿ',
}

// decode turns raw file bytes into normalized text. Valid UTF-8 (with or
// without BOM) is kept; UTF-16 is recognized by its BOM; anything else is
// read as Windows-1252, the superset of Latin-1 that old Project Gutenberg
// files in "8-bit" encodings actually use.
func decode(raw []byte) decoded {
	d := decoded{}
	var s string
	switch {
	case len(raw) >= 3 && raw[0] == 0xEF && raw[1] == 0xBB && raw[2] == 0xBF:
		d.bom = true
		raw = raw[3:]
		if utf8.Valid(raw) {
			d.encoding = "utf-8"
			s = string(raw)
		} else {
			d.encoding = "windows-1252"
			s = decodeCP1252(raw)
		}
	case len(raw) >= 2 && (raw[0] == 0xFF && raw[1] == 0xFE || raw[0] == 0xFE && raw[1] == 0xFF):
		d.bom = true
		le := raw[0] == 0xFF
		if le {
			d.encoding = "utf-16le"
		} else {
			d.encoding = "utf-16be"
		}
		s = decodeUTF16(raw[2:], le)
	case utf8.Valid(raw):
		d.encoding = "utf-8"
		s = string(raw)
	default:
		d.encoding = "windows-1252"
		s = decodeCP1252(raw)
	}
	if d.encoding == "utf-8" && isASCII(s) {
		d.encoding = "ascii"
	}
	d.lineEndings = lineEndingStyle(s)
	d.text = cleanControls(s)
	return d
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func decodeCP1252(raw []byte) string {
	var b strings.Builder
	b.Grow(len(raw) + len(raw)/8)
	for _, c := range raw {
		switch {
		case c < 0x80:
			b.WriteByte(c)
		case c < 0xA0:
			if r := cp1252[c-0x80]; r != 0 {
				b.WriteRune(r)
			}
		default:
			b.WriteRune(rune(c))
		}
	}
	return b.String()
}

func decodeUTF16(raw []byte, le bool) string {
	u := make([]uint16, 0, len(raw)/2)
	for i := 0; i+1 < len(raw); i += 2 {
		if le {
			u = append(u, uint16(raw[i])|uint16(raw[i+1])<<8)
		} else {
			u = append(u, uint16(raw[i])<<8|uint16(raw[i+1]))
		}
	}
	return string(utf16.Decode(u))
}

func lineEndingStyle(s string) string {
	crlf := strings.Count(s, "\r\n")
	cr := strings.Count(s, "\r") - crlf
	lf := strings.Count(s, "\n") - crlf
	kinds := 0
	style := "none"
	if crlf > 0 {
		kinds++
		style = "crlf"
	}
	if cr > 0 {
		kinds++
		style = "cr"
	}
	if lf > 0 {
		kinds++
		style = "lf"
	}
	if kinds > 1 {
		return "mixed"
	}
	return style
}

// cleanControls normalizes line endings to LF, turns tabs and form feeds
// into spaces and blank lines, and drops other control characters, stray
// BOMs and replacement characters.
func cleanControls(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteByte('\n')
		case r == '\r':
			b.WriteByte('\n')
		case r == '\f' || r == '\v' || r == '\u2028' || r == '\u2029':
			b.WriteString("\n\n")
		case r == '\t' || r == '\u00A0':
			b.WriteByte(' ')
		case r == '\uFEFF' || r == utf8.RuneError || r == '\u00AD' || r == '\u200B':
			// stray BOM, undecodable byte, soft hyphen, zero-width space
		case unicode.IsControl(r):
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
