package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// GPT-2's byte-to-unicode table, as Hugging Face's ByteLevel builds it:
// printable Latin-1 bytes stand for themselves and the others are moved to
// U+0100 and up, so that every byte is one visible character.
var (
	byteChar    [256]rune
	byteCharStr [256]string
	charByte    map[rune]byte
)

func init() {
	isSelf := func(b int) bool {
		return b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE && b <= 0xFF
	}
	n := 0
	charByte = make(map[rune]byte, 256)
	for b := 0; b < 256; b++ {
		r := rune(b)
		if !isSelf(b) {
			r = rune(256 + n)
			n++
		}
		byteChar[b] = r
		byteCharStr[b] = string(r)
		charByte[r] = byte(b)
	}
}

// byteLevelEncode maps every byte of s to its GPT-2 stand-in character.
func byteLevelEncode(s string) string {
	var sb strings.Builder
	sb.Grow(2 * len(s))
	for i := 0; i < len(s); i++ {
		sb.WriteString(byteCharStr[s[i]])
	}
	return sb.String()
}

// byteLevelDecodeToken returns the bytes a byte-level token stands for, or
// false when one of its characters is not in the byte alphabet.
func byteLevelDecodeToken(dst []byte, tok string) ([]byte, bool) {
	n := len(dst)
	for _, r := range tok {
		b, ok := charByte[r]
		if !ok {
			return dst[:n], false
		}
		dst = append(dst, b)
	}
	return dst, true
}

// appendLossy appends b to dst, replacing each maximal invalid UTF-8
// subsequence with U+FFFD exactly as Rust's String::from_utf8_lossy does
// (which differs from Go's strings.ToValidUTF8 that collapses runs).
func appendLossy(dst []byte, b []byte) []byte {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError || size > 1 {
			dst = append(dst, b[i:i+size]...)
			i += size
			continue
		}
		dst = append(dst, "\uFFFD"...)
		i += invalidPrefixLen(b[i:])
	}
	return dst
}

// invalidPrefixLen is the length of the maximal prefix of b (which starts
// with an invalid sequence) that could begin a valid UTF-8 sequence; at
// least 1.
func invalidPrefixLen(b []byte) int {
	c := b[0]
	need := 0
	lo, hi := byte(0x80), byte(0xBF)
	switch {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
		need = 2
	case c == 0xED:
		need, hi = 2, 0x9F
	case c == 0xF0:
		need, lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	case c == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1
	}
	n := 1
	for k := 0; k < need && n < len(b); k++ {
		x := b[n]
		if k == 0 {
			if x < lo || x > hi {
				return n
			}
		} else if x < 0x80 || x > 0xBF {
			return n
		}
		n++
	}
	return n
}
