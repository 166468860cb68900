package gutenberg

import (
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/mlbuild/mlbuild/internal/lazyre"
)

// decoded is a book's text after byte-level normalization.
type decoded struct {
	// text has LF line endings, no BOM, no control characters other than
	// '\n', and is valid UTF-8.
	text string
	// encoding is "ascii", "utf-8", "utf-8+windows-1252" (UTF-8 with a few
	// stray 8-bit bytes, each read as Windows-1252), "iso-8859-1",
	// "windows-1252", "iso-8859-1+utf-8" or "windows-1252+utf-8" (8-bit
	// text with UTF-8 sequences in it, read as UTF-8), "utf-16le" or
	// "utf-16be".
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
//
// 8-bit text (more invalid bytes than UTF-8 sequences) is read as
// Windows-1252, except for the UTF-8 sequences in it that decode to a
// character such text would hold (an accented Latin letter, a Greek
// letter, a curly quote, a dash, an ellipsis, €, ™): a file that says it
// is Latin-1 but had UTF-8 pasted into it ("caf\xe9" beside
// "\xe2\x80\x99") reads without mojibake ("café", "’"), and is reported
// as "windows-1252+utf-8" or "iso-8859-1+utf-8". A pair of Latin-1 bytes
// that happens to form such a sequence ("Ã©") is mojibake in Latin-1 text
// anyway, and UTF-8 sequences for other characters (IPA, Cyrillic, CJK)
// stay Windows-1252 there.
func decode8(raw []byte) (string, string) {
	multi, invalid, plausible, c1 := 0, 0, 0, false
	for i := 0; i < len(raw); {
		c := raw[i]
		if c < 0x80 {
			i++
			continue
		}
		r, n := utf8.DecodeRune(raw[i:])
		if r == utf8.RuneError && n == 1 {
			invalid++
			if c < 0xA0 {
				c1 = true
			}
			i++
			continue
		}
		multi++
		if plausibleIn8Bit(r) {
			plausible++
		} else {
			for _, b := range raw[i : i+n] {
				c1 = c1 || b < 0xA0
			}
		}
		i += n
	}
	switch {
	case invalid == 0 && multi == 0:
		return string(raw), "ascii"
	case invalid == 0:
		return string(raw), "utf-8"
	case multi > invalid:
		return decodeMixed(raw, func(rune) bool { return true }), "utf-8+windows-1252"
	case plausible > 0 && c1:
		return decodeMixed(raw, plausibleIn8Bit), "windows-1252+utf-8"
	case plausible > 0:
		return decodeMixed(raw, plausibleIn8Bit), "iso-8859-1+utf-8"
	case c1:
		return decodeCP1252(raw), "windows-1252"
	default:
		return decodeCP1252(raw), "iso-8859-1"
	}
}

// plausibleIn8Bit reports whether r, found as a UTF-8 sequence in 8-bit
// text, is a character that text would hold: a Latin-1 or Latin
// Extended-A letter or sign (not a C1 control), a Greek letter, general
// punctuation (curly quotes, dashes, ellipsis, daggers), € or ™.
func plausibleIn8Bit(r rune) bool {
	return (r >= 0xA0 && r <= 0x17F) || (r >= 0x391 && r <= 0x3C9) || (r >= 0x2010 && r <= 0x2044) || r == 0x20AC || r == 0x2122
}

// charsetRe finds a header's "Character set encoding: ISO-8859-1".
var charsetRe = lazyre.New(`(?i)^\s*character\s+set\s+encoding\s*:\s*(\S+)`)

// encodingWarning returns a warning when the encoding a book's header
// declares is not what its bytes are: a Latin-1 or Windows-1252 file with
// UTF-8 in it, or a UTF-8 file with 8-bit bytes; else "".
func encodingWarning(header []string, found string) string {
	declared := ""
	for _, l := range header {
		if m := charsetRe.FindStringSubmatch(l); m != nil {
			declared = strings.ToUpper(strings.TrimRight(m[1], ".,;"))
			break
		}
	}
	hasUTF8 := strings.HasPrefix(found, "utf-8") || strings.HasSuffix(found, "+utf-8")
	has8Bit := strings.Contains(found, "1252") || strings.Contains(found, "8859")
	switch {
	case declared == "" || declared == "ASCII" || declared == "US-ASCII":
		return ""
	case declared != "UTF-8" && hasUTF8:
		return "the header declares " + declared + " but the file also holds UTF-8: its UTF-8 sequences were read as UTF-8, any other 8-bit bytes as Windows-1252"
	case declared == "UTF-8" && has8Bit:
		return "the header declares UTF-8 but the file holds bytes that are not UTF-8: they were read as Windows-1252"
	}
	return ""
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

// decodeMixed keeps the valid UTF-8 sequences whose character keep
// accepts and reads every other byte as Windows-1252.
func decodeMixed(raw []byte, keep func(rune) bool) string {
	var b strings.Builder
	b.Grow(len(raw) + len(raw)/8)
	for i := 0; i < len(raw); {
		r, n := utf8.DecodeRune(raw[i:])
		if (r == utf8.RuneError && n == 1) || (n > 1 && !keep(r)) {
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
