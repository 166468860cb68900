package gutenberg

import (
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// decoded is a book's text after byte-level normalization.
type decoded struct {
	// text has LF line endings, no BOM, no control characters other than
	// '\n', and is valid UTF-8.
	text string
	// encoding is "ascii", "utf-8", "utf-8+windows-1252" (UTF-8 with a few
	// stray 8-bit bytes, each read as Windows-1252), "iso-8859-1",
	// "windows-1252", "utf-16le" or "utf-16be".
	encoding    string
	bom         bool
	lineEndings string // "lf", "crlf", "cr", "mixed" or "none"
}

// cp1252 maps bytes 0x80–0x9F to the characters Windows-1252 assigns them.
// Bytes it leaves undefined map to 0 and are dropped.
var cp1252 = [32]rune{
	'€', 0, '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', 0, 'Ž', 0,
	0, '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', 0, 'ž', 'Ÿ',
}

// decode turns raw file bytes into normalized text. UTF-16 is recognized by
// its BOM. Valid UTF-8 (with or without BOM) is kept. Text that is mostly
// UTF-8 but holds a few invalid bytes keeps its UTF-8 and reads each stray
// byte as Windows-1252. Anything else is 8-bit text read as Windows-1252, the
// superset of Latin-1 that old Project Gutenberg "ISO-8859-1" files actually
// use; it is reported as "iso-8859-1" when no byte falls in 0x80–0x9F.
func decode(raw []byte) decoded {
	d := decoded{}
	var s string
	switch {
	case len(raw) >= 2 && (raw[0] == 0xFF && raw[1] == 0xFE || raw[0] == 0xFE && raw[1] == 0xFF):
		d.bom = true
		le := raw[0] == 0xFF
		if le {
			d.encoding = "utf-16le"
		} else {
			d.encoding = "utf-16be"
		}
		s = decodeUTF16(raw[2:], le)
	default:
		if len(raw) >= 3 && raw[0] == 0xEF && raw[1] == 0xBB && raw[2] == 0xBF {
			d.bom = true
			raw = raw[3:]
		}
		s, d.encoding = decode8(raw)
		if d.bom && d.encoding == "ascii" {
			d.encoding = "utf-8"
		}
	}
	d.lineEndings = lineEndingStyle(s)
	d.text = cleanControls(s)
	return d
}

// decode8 decodes UTF-8 or 8-bit text and names the encoding it found.
func decode8(raw []byte) (string, string) {
	multi, invalid, c1 := 0, 0, false
	for i := 0; i < len(raw); {
		c := raw[i]
		if c < 0x80 {
			i++
			continue
		}
		if c < 0xA0 {
			c1 = true
		}
		r, n := utf8.DecodeRune(raw[i:])
		if r == utf8.RuneError && n == 1 {
			invalid++
			i++
			continue
		}
		multi++
		i += n
	}
	switch {
	case invalid == 0 && multi == 0:
		return string(raw), "ascii"
	case invalid == 0:
		return string(raw), "utf-8"
	case multi > invalid:
		return decodeMixed(raw), "utf-8+windows-1252"
	case c1:
		return decodeCP1252(raw), "windows-1252"
	default:
		return decodeCP1252(raw), "iso-8859-1"
	}
}

func cp1252Rune(c byte) rune {
	switch {
	case c < 0x80:
		return rune(c)
	case c < 0xA0:
		return cp1252[c-0x80]
	default:
		return rune(c)
	}
}

func decodeCP1252(raw []byte) string {
	var b strings.Builder
	b.Grow(len(raw) + len(raw)/8)
	for _, c := range raw {
		if r := cp1252Rune(c); r != 0 {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// decodeMixed keeps valid UTF-8 sequences and reads every byte that does
// not start one as Windows-1252.
func decodeMixed(raw []byte) string {
	var b strings.Builder
	b.Grow(len(raw) + len(raw)/8)
	for i := 0; i < len(raw); {
		r, n := utf8.DecodeRune(raw[i:])
		if r == utf8.RuneError && n == 1 {
			if r := cp1252Rune(raw[i]); r != 0 {
				b.WriteRune(r)
			}
			i++
			continue
		}
		b.WriteRune(r)
		i += n
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

// cleanControls normalizes line endings to LF, turns tabs and no-break
// spaces into spaces, form feeds and paragraph separators into blank lines,
// and drops other control and format characters, stray BOMs, replacement
// characters, soft hyphens and zero-width spaces. The result is valid UTF-8.
func cleanControls(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r == '\n' || r == '\r' || r == '\v' || r == '\u0085' || r == '\u2028':
			b.WriteByte('\n')
		case r == '\f' || r == '\u2029':
			b.WriteString("\n\n")
		case r == '\t' || r == '\u00A0' || r == '\u202F' || r == '\u2007':
			b.WriteByte(' ')
		case r == '\uFEFF' || r == utf8.RuneError || r == '\u00AD' || r == '\u200B' || r == '\u2060':
			// stray BOM, undecodable byte, soft hyphen, zero-width space, word joiner
		case unicode.IsControl(r):
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
