package csvclean

import (
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

// Mojibake repair.
//
// Mojibake here is UTF-8 text whose bytes were decoded as Windows-1252 (or
// as ISO-8859-1, which leaves C1 control characters U+0080–U+009F where
// Windows-1252 has its 27 extra punctuation marks), e.g. "café" shown as
// "cafÃ©" and "won’t" shown as "wonâ€™t" or "wonâ\u0080\u0099t".
//
// The repair maps every character back to the byte it came from (a real
// reverse Windows-1252 table plus the Latin-1 identity for U+0000–U+00FF),
// looks for byte sequences that form one valid UTF-8 character (a lead byte
// C2–F4 followed by the right number of continuation bytes 80–BF; overlong
// forms and surrogates are rejected by the UTF-8 decoder), and replaces them
// by that character only when the evidence is strong enough that correct
// text is never damaged:
//
//   - a sequence containing a C1 control character is always mojibake (C1
//     controls never occur in real text);
//   - two or more adjacent sequences ("Ã¢â‚¬â„¢", "Ð¿Ñ€Ð¸") and 4-byte
//     sequences ("ðŸ˜€") are accepted;
//   - a lone 2- or 3-byte sequence is accepted only when it decodes to a
//     character that common mojibake produces: Latin-1 Supplement and Latin
//     Extended-A letters and symbols (U+00A0–U+017F), general punctuation
//     (U+2000–U+206F), currency symbols (U+20A0–U+20CF) and letter-like
//     symbols such as ™ (U+2100–U+214F). So legitimate text such as
//     "CAFÉ…" (which would decode to U+0245) or "café…»" (U+917B) is
//     left alone.
//
// The pass repeats (up to three times) to undo double encoding.

// cp1252Reverse maps the 27 characters that Windows-1252 places in 0x80–0x9F
// back to their bytes.
var cp1252Reverse = func() map[rune]byte {
	m := make(map[rune]byte, 32)
	for b := 0x80; b <= 0x9F; b++ {
		r := charmap.Windows1252.DecodeByte(byte(b))
		if r > 0xFF && r != utf8.RuneError {
			m[r] = byte(b)
		}
	}
	return m
}()

// mojibakeByte returns the byte that r stood for when UTF-8 bytes were
// decoded as Windows-1252 or Latin-1.
func mojibakeByte(r rune) (byte, bool) {
	if r >= 0 && r < 0x100 {
		return byte(r), true
	}
	b, ok := cp1252Reverse[r]
	return b, ok
}

func isC1(r rune) bool { return r >= 0x80 && r <= 0x9F }

// mojiSeq is one decodable UTF-8 sequence found in mojibake.
type mojiSeq struct {
	r     rune // decoded character
	n     int  // number of source characters (= UTF-8 length)
	hasC1 bool // one of the source characters is a C1 control
}

// decodeAt tries to read one UTF-8 sequence spelled as mojibake at rs[i].
func decodeAt(rs []rune, i int) (mojiSeq, bool) {
	lead, ok := mojibakeByte(rs[i])
	if !ok {
		return mojiSeq{}, false
	}
	var n int
	switch {
	case lead >= 0xC2 && lead <= 0xDF:
		n = 2
	case lead >= 0xE0 && lead <= 0xEF:
		n = 3
	case lead >= 0xF0 && lead <= 0xF4:
		n = 4
	default:
		return mojiSeq{}, false
	}
	if i+n > len(rs) {
		return mojiSeq{}, false
	}
	var buf [4]byte
	buf[0] = lead
	c1 := isC1(rs[i])
	for k := 1; k < n; k++ {
		b, ok := mojibakeByte(rs[i+k])
		if !ok || b < 0x80 || b > 0xBF {
			return mojiSeq{}, false
		}
		buf[k] = b
		c1 = c1 || isC1(rs[i+k])
	}
	r, size := utf8.DecodeRune(buf[:n])
	if r == utf8.RuneError || size != n {
		return mojiSeq{}, false
	}
	return mojiSeq{r: r, n: n, hasC1: c1}, true
}

// plausibleLone reports whether a lone mojibake sequence decoding to r is
// believable without further evidence.
func plausibleLone(r rune) bool {
	switch {
	case r >= 0xA0 && r <= 0x17F:
		return true
	case r >= 0x2000 && r <= 0x206F:
		return true
	case r >= 0x20A0 && r <= 0x20CF:
		return true
	case r >= 0x2100 && r <= 0x214F:
		return true
	}
	return false
}

func acceptRun(run []mojiSeq) bool {
	if len(run) >= 2 {
		return true
	}
	s := run[0]
	return s.hasC1 || s.n == 4 || plausibleLone(s.r)
}

// repairMojibakeOnce performs one repair pass.
func repairMojibakeOnce(s string) (string, bool) {
	// Fast path: mojibake needs a lead character in U+00C2–U+00F4.
	hasLead := false
	for _, r := range s {
		if r >= 0xC2 && r <= 0xF4 {
			hasLead = true
			break
		}
	}
	if !hasLead {
		return s, false
	}
	rs := []rune(s)
	out := make([]rune, 0, len(rs))
	changed := false
	var run []mojiSeq
	for i := 0; i < len(rs); {
		run = run[:0]
		j := i
		for j < len(rs) {
			sq, ok := decodeAt(rs, j)
			if !ok {
				break
			}
			run = append(run, sq)
			j += sq.n
		}
		if len(run) > 0 && acceptRun(run) {
			for _, sq := range run {
				out = append(out, sq.r)
			}
			changed = true
			i = j
			continue
		}
		out = append(out, rs[i])
		i++
	}
	if !changed {
		return s, false
	}
	return string(out), true
}

// repairMojibake undoes (possibly double) mojibake; it reports whether the
// text changed.
func repairMojibake(s string) (string, bool) {
	changed := false
	for pass := 0; pass < 3; pass++ {
		t, ok := repairMojibakeOnce(s)
		if !ok {
			break
		}
		s, changed = t, true
	}
	return s, changed
}

// standIn reports whether ascii is a plain-ASCII stand-in commonly left in
// place of the typographic character intended.
func standIn(ascii, intended rune) bool {
	switch ascii {
	case '\'':
		return intended >= 0x2018 && intended <= 0x201B || intended == 0x2032
	case '"':
		return intended >= 0x201C && intended <= 0x201F || intended == 0x2033
	case '-':
		return intended >= 0x2010 && intended <= 0x2015
	case '.':
		return intended == 0x2026
	}
	return false
}

// repairBrokenUTF8 handles what strict mojibake repair cannot: remnants of
// a UTF-8 sequence whose lead byte (or a continuation byte) was lost or
// replaced by a stand-in, visible as stray C1 control characters, e.g.
// "Town'\u0080\u0099s" (lead byte replaced by an apostrophe),
// "Platinum-\u0080\u0093Level", "Nationâ\u0080's" or "Sleep\"\u0099". It is
// applied only to text that still contains C1 controls, which never occur in
// correct text:
//
//   - "\u0080" followed by one more continuation character X is the tail of
//     E2 80 X, i.e. general punctuation U+2000+(X-0x80) (’ “ – …); a
//     preceding stand-in ('â', or an ASCII equivalent of the intended mark
//     such as ' for ’) is replaced by it;
//   - a lone "\u0080" after 'â', or after a lone word "a" (the accent-stripped
//     'â'), is a sequence whose last byte was lost: both are removed;
//   - any other C1 control is removed, with a preceding 'â'.
func repairBrokenUTF8(s string) (string, bool) {
	has := false
	for _, r := range s {
		if isC1(r) {
			has = true
			break
		}
	}
	if !has {
		return s, false
	}
	rs := []rune(s)
	out := make([]rune, 0, len(rs))
	prevIs := func(f func(rune) bool) bool {
		return len(out) > 0 && f(out[len(out)-1])
	}
	// leadRemnant reports whether out ends with what is left of a lost lead
	// byte: 'â' itself, or (only for a lone "\u0080") an accent-stripped 'a'
	// standing alone as a word, as in "Or a\u0080X-Files".
	leadRemnant := func(allowA bool) bool {
		n := len(out)
		if n == 0 {
			return false
		}
		if out[n-1] == 'â' {
			return true
		}
		return allowA && out[n-1] == 'a' && (n == 1 || unicode.IsSpace(out[n-2]))
	}
	for i := 0; i < len(rs); {
		r := rs[i]
		if !isC1(r) {
			out = append(out, r)
			i++
			continue
		}
		if r == 0x80 && i+1 < len(rs) && rs[i+1] >= 0x80 && rs[i+1] <= 0xBF {
			intended := 0x2000 + (rs[i+1] - 0x80)
			if leadRemnant(false) || prevIs(func(p rune) bool { return standIn(p, intended) }) {
				out = out[:len(out)-1]
			}
			out = append(out, intended)
			i += 2
			continue
		}
		if r == 0x80 && leadRemnant(true) {
			out = out[:len(out)-1]
			i++
			continue
		}
		if leadRemnant(false) {
			out = out[:len(out)-1]
		}
		i++
	}
	return string(out), true
}
