package ptx

import (
	"fmt"
	"strings"

	"github.com/mlbuild/mlbuild/gpu/cuda"
)

type tokKind uint8

const (
	tEOF tokKind = iota
	tIdent
	tNum
	tStr
	tPunct
)

// token is one lexeme of PTX source with the line it starts on and its
// byte range (to quote statements in errors).
type token struct {
	kind       tokKind
	text       string
	line       int
	start, end int
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '$' || c == '%' || c == '.'
}

func isIdentChar(c byte) bool {
	return isIdentStart(c) || c >= '0' && c <= '9'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// lex splits PTX source into tokens, dropping comments. Identifiers keep
// their dots and "::" (so "ld.global.nc.f32", "%tid.x" and
// "ld.shared::cta.u32" are one token each); numbers keep their letters
// ("0f3F800000", "0x1F", "42U").
func lex(src []byte) ([]token, *Error) {
	var toks []token
	line := 1
	i := 0
	n := len(src)
	for i < n {
		c := src[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '/' && i+1 < n && src[i+1] == '/':
			for i < n && src[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < n && src[i+1] == '*':
			start := line
			i += 2
			for {
				if i+1 >= n {
					return nil, lexError(start, "unterminated /* comment")
				}
				if src[i] == '*' && src[i+1] == '/' {
					i += 2
					break
				}
				if src[i] == '\n' {
					line++
				}
				i++
			}
		case c == '"':
			start, l := i, line
			i++
			var b strings.Builder
			for {
				if i >= n || src[i] == '\n' {
					return nil, lexError(l, "unterminated string")
				}
				if src[i] == '"' {
					i++
					break
				}
				if src[i] == '\\' && i+1 < n {
					i++
				}
				b.WriteByte(src[i])
				i++
			}
			toks = append(toks, token{tStr, b.String(), l, start, i})
		case isDigit(c):
			start := i
			hexish := c == '0' && i+1 < n && strings.IndexByte("xXfFdDbB", src[i+1]) >= 0
			for i < n {
				d := src[i]
				if isIdentChar(d) && d != '%' && d != '$' {
					i++
					continue
				}
				if (d == '+' || d == '-') && !hexish && (src[i-1] == 'e' || src[i-1] == 'E') {
					i++
					continue
				}
				break
			}
			toks = append(toks, token{tNum, string(src[start:i]), line, start, i})
		case isIdentStart(c):
			start := i
			i++
			for i < n {
				if isIdentChar(src[i]) {
					i++
				} else if src[i] == ':' && i+2 < n && src[i+1] == ':' && isIdentChar(src[i+2]) {
					i += 2
				} else {
					break
				}
			}
			toks = append(toks, token{tIdent, string(src[start:i]), line, start, i})
		case strings.IndexByte(",;:[]{}()+-!@|=<>*", c) >= 0:
			toks = append(toks, token{tPunct, string(c), line, i, i + 1})
			i++
		default:
			if c == 0 {
				// A NUL terminator (cuModuleLoadData takes C strings).
				rest := strings.TrimRight(string(src[i:]), "\x00")
				if strings.TrimSpace(rest) == "" {
					i = n
					continue
				}
			}
			return nil, lexError(line, fmt.Sprintf("unexpected character %q", c))
		}
	}
	toks = append(toks, token{kind: tEOF, line: line, start: n, end: n})
	return toks, nil
}

func lexError(line int, msg string) *Error {
	return &Error{Line: line, Msg: msg, Err: cuda.ErrInvalidPTX}
}
