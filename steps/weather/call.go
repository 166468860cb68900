package weather

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Wire-format markers around a tool call in model output.
const (
	OpenTag  = "<tool_call>"
	CloseTag = "</tool_call>"
)

// ErrNoCall is returned (wrapped) by Parse when the text holds no
// <tool_call> marker at all, as opposed to a malformed call. Test for it
// with errors.Is.
var ErrNoCall = errors.New("no <tool_call> in text")

// Call is one tool call: a tool name and its keyword arguments. All
// argument values are strings.
//
// Its JSON form is {"name": "get_weather", "arguments": {"location": ...,
// "date": ...}}, with the arguments in call order (location, date, then the
// others sorted by name).
type Call struct {
	// Name is the tool's name, e.g. "get_weather".
	Name string `json:"name"`
	// Arguments maps argument names to their (unescaped) string values.
	Arguments map[string]string `json:"arguments"`
}

// NewCall returns a get_weather call for location and date (date is
// omitted when empty).
func NewCall(location, date string) Call {
	args := map[string]string{ArgLocation: location}
	if date != "" {
		args[ArgDate] = date
	}
	return Call{Name: ToolName, Arguments: args}
}

// argOrder returns the argument names in the order Format writes them:
// location, date, then any others sorted.
func (c Call) argOrder() []string {
	names := make([]string, 0, len(c.Arguments))
	for _, fixed := range []string{ArgLocation, ArgDate} {
		if _, ok := c.Arguments[fixed]; ok {
			names = append(names, fixed)
		}
	}
	var rest []string
	for k := range c.Arguments {
		if k != ArgLocation && k != ArgDate {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	return append(names, rest...)
}

// MarshalJSON writes the call with its arguments in call order so that the
// encoding is byte-stable and reads like the call.
func (c Call) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"name":`)
	if err := writeJSONString(&b, c.Name); err != nil {
		return nil, err
	}
	b.WriteString(`,"arguments":{`)
	for i, k := range c.argOrder() {
		if i > 0 {
			b.WriteByte(',')
		}
		if err := writeJSONString(&b, k); err != nil {
			return nil, err
		}
		b.WriteByte(':')
		if err := writeJSONString(&b, c.Arguments[k]); err != nil {
			return nil, err
		}
	}
	b.WriteString("}}")
	return b.Bytes(), nil
}

func writeJSONString(b *bytes.Buffer, s string) error {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return err
	}
	b.Truncate(b.Len() - 1) // Encode appends a newline
	return nil
}

// Format renders the call in the wire format:
//
//	<tool_call>get_weather(location="San Francisco, CA", date="tomorrow")</tool_call>
//
// See FormatExpr for the call expression itself. Parse(Format(c)) returns c
// for every call whose name and argument names are identifiers.
func Format(c Call) string {
	return OpenTag + FormatExpr(c) + CloseTag
}

// FormatExpr renders the call expression without markers: the name, then
// keyword arguments name="value" separated by ", " in call order (location,
// date, then the others sorted). Values are double-quoted with Python/Go
// style escapes: \" \\ \n \r \t, \xHH for other ASCII control bytes and for
// bytes that are not valid UTF-8, \uXXXX / \UXXXXXXXX for non-printable
// runes; printable non-ASCII text (São Paulo) is written as is.
func FormatExpr(c Call) string {
	var b strings.Builder
	b.WriteString(c.Name)
	b.WriteByte('(')
	for i, k := range c.argOrder() {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k)
		b.WriteByte('=')
		quote(&b, c.Arguments[k])
	}
	b.WriteByte(')')
	return b.String()
}

func quote(b *strings.Builder, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			c := s[i]
			b.WriteString(`\x`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			i++
			continue
		}
		i += size
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			b.WriteString(`\x`)
			b.WriteByte(hex[r>>4])
			b.WriteByte(hex[r&15])
		case !unicode.IsPrint(r):
			if r <= 0xffff {
				fmt.Fprintf(b, `\u%04x`, r)
			} else {
				fmt.Fprintf(b, `\U%08x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}

// ParseError describes a malformed tool call: what is wrong and where.
type ParseError struct {
	// Offset is the byte offset in the text given to Parse or ParseExpr.
	Offset int
	// Msg says what is wrong and, where it helps, what was expected.
	Msg string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("malformed tool call at byte %d: %s", e.Offset, e.Msg)
}

// Parse finds the first tool call in model output and returns it. The call
// must be wrapped in the markers Format writes: <tool_call>, optional
// whitespace, one call expression (see ParseExpr), optional whitespace,
// </tool_call>. Text before the opening marker and after the closing one is
// ignored. A text with no opening marker gives an error wrapping ErrNoCall;
// any other problem gives a *ParseError saying what is wrong. Parse checks
// syntax only: Validate (or Execute) checks the tool name and arguments.
func Parse(text string) (Call, error) {
	i := strings.Index(text, OpenTag)
	if i < 0 {
		return Call{}, fmt.Errorf("%w: a tool call is written %sget_weather(location=\"...\", date=\"...\")%s", ErrNoCall, OpenTag, CloseTag)
	}
	p := &parser{s: text, pos: i + len(OpenTag)}
	c, err := p.call()
	if err != nil {
		return Call{}, err
	}
	p.skipSpace()
	if !strings.HasPrefix(p.s[p.pos:], CloseTag) {
		if p.pos == len(p.s) {
			return Call{}, p.errf("missing %s after the call", CloseTag)
		}
		return Call{}, p.errf("unexpected %s after the call; expected %s", p.near(), CloseTag)
	}
	return c, nil
}

// ParseExpr parses a bare call expression such as
// get_weather(location="Paris, France", date="today"); the whole string
// must be the call, with optional surrounding whitespace. Syntax: an
// identifier, '(', zero or more keyword arguments name="string" separated
// by commas (a trailing comma is allowed), ')'. Whitespace (including
// newlines) may appear between tokens. Strings are double-quoted; escapes
// are \" \\ \' \n \r \t \0 \a \b \f \v, \xHH (one byte), \uXXXX and
// \UXXXXXXXX (one code point); a raw newline inside a string is an error.
// Positional arguments, single-quoted strings, non-string values and
// repeated argument names are errors.
func ParseExpr(s string) (Call, error) {
	p := &parser{s: s}
	c, err := p.call()
	if err != nil {
		return Call{}, err
	}
	p.skipSpace()
	if p.pos != len(s) {
		return Call{}, p.errf("unexpected %s after the call", p.near())
	}
	return c, nil
}

type parser struct {
	s   string
	pos int
}

func (p *parser) errf(format string, args ...any) error {
	return &ParseError{Offset: p.pos, Msg: fmt.Sprintf(format, args...)}
}

// near describes the text at the current position for error messages.
func (p *parser) near() string {
	if p.pos >= len(p.s) {
		return "end of text"
	}
	rest := p.s[p.pos:]
	n := 0
	for i := range rest {
		if n == 12 {
			return strconv.Quote(rest[:i] + "…")
		}
		n++
	}
	return strconv.Quote(rest)
}

func (p *parser) skipSpace() {
	for p.pos < len(p.s) {
		switch p.s[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func isIdentStart(c byte) bool {
	return c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

func isIdentChar(c byte) bool { return isIdentStart(c) || ('0' <= c && c <= '9') }

// IsIdent reports whether s is a valid tool or argument name:
// [A-Za-z_][A-Za-z0-9_]*.
func IsIdent(s string) bool {
	if s == "" || !isIdentStart(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isIdentChar(s[i]) {
			return false
		}
	}
	return true
}

func (p *parser) ident() string {
	start := p.pos
	if p.pos < len(p.s) && isIdentStart(p.s[p.pos]) {
		p.pos++
		for p.pos < len(p.s) && isIdentChar(p.s[p.pos]) {
			p.pos++
		}
	}
	return p.s[start:p.pos]
}

func (p *parser) call() (Call, error) {
	p.skipSpace()
	name := p.ident()
	if name == "" {
		return Call{}, p.errf("expected a tool name such as get_weather, found %s", p.near())
	}
	p.skipSpace()
	if p.pos >= len(p.s) || p.s[p.pos] != '(' {
		return Call{}, p.errf("expected '(' after tool name %q, found %s", name, p.near())
	}
	p.pos++
	c := Call{Name: name, Arguments: map[string]string{}}
	for {
		p.skipSpace()
		if p.pos >= len(p.s) {
			return Call{}, p.errf("missing ')' to close the call to %s", name)
		}
		if p.s[p.pos] == ')' {
			p.pos++
			return c, nil
		}
		switch p.s[p.pos] {
		case '"', '\'':
			return Call{}, p.errf("positional argument: arguments must be named, e.g. %s=\"Paris, France\"", ArgLocation)
		}
		arg := p.ident()
		if arg == "" {
			return Call{}, p.errf("expected an argument name or ')', found %s", p.near())
		}
		p.skipSpace()
		if p.pos >= len(p.s) || p.s[p.pos] != '=' {
			return Call{}, p.errf("expected '=' after argument name %q, found %s", arg, p.near())
		}
		p.pos++
		p.skipSpace()
		if _, dup := c.Arguments[arg]; dup {
			return Call{}, p.errf("argument %q given twice", arg)
		}
		if p.pos >= len(p.s) {
			return Call{}, p.errf("missing value for argument %q", arg)
		}
		switch p.s[p.pos] {
		case '"':
		case '\'':
			return Call{}, p.errf("value of argument %q is single-quoted; use double quotes", arg)
		default:
			return Call{}, p.errf("value of argument %q must be a double-quoted string, found %s", arg, p.near())
		}
		v, err := p.str(arg)
		if err != nil {
			return Call{}, err
		}
		c.Arguments[arg] = v
		p.skipSpace()
		if p.pos >= len(p.s) {
			return Call{}, p.errf("missing ')' to close the call to %s", name)
		}
		switch p.s[p.pos] {
		case ',':
			p.pos++
		case ')':
		default:
			return Call{}, p.errf("expected ',' or ')' after argument %q, found %s", arg, p.near())
		}
	}
}

// str reads a double-quoted string starting at p.pos.
func (p *parser) str(arg string) (string, error) {
	start := p.pos
	p.pos++ // opening quote
	var b strings.Builder
	for {
		if p.pos >= len(p.s) {
			p.pos = start
			return "", p.errf("unterminated string for argument %q", arg)
		}
		c := p.s[p.pos]
		switch c {
		case '"':
			p.pos++
			return b.String(), nil
		case '\n':
			return "", p.errf("newline inside the string for argument %q (write \\n, or close the quote)", arg)
		case '\\':
			if err := p.escape(&b, arg); err != nil {
				return "", err
			}
		default:
			b.WriteByte(c)
			p.pos++
		}
	}
}

var (
	simpleEscapes = map[byte]byte{'"': '"', '\\': '\\', '\'': '\'', 'n': '\n', 'r': '\r', 't': '\t', '0': 0, 'a': '\a', 'b': '\b', 'f': '\f', 'v': '\v'}
	hexEscapes    = map[byte]int{'x': 2, 'u': 4, 'U': 8}
)

func (p *parser) escape(b *strings.Builder, arg string) error {
	at := p.pos
	p.pos++ // backslash
	if p.pos >= len(p.s) {
		p.pos = at
		return p.errf("unterminated escape in argument %q", arg)
	}
	c := p.s[p.pos]
	p.pos++
	if r, ok := simpleEscapes[c]; ok {
		b.WriteByte(r)
		return nil
	}
	digits := hexEscapes[c]
	if digits == 0 {
		p.pos = at
		return p.errf("unknown escape \\%s in argument %q", string(rune(c)), arg)
	}
	if p.pos+digits > len(p.s) {
		p.pos = at
		return p.errf("escape \\%c needs %d hex digits in argument %q", c, digits, arg)
	}
	v, err := strconv.ParseUint(p.s[p.pos:p.pos+digits], 16, 32)
	if err != nil {
		p.pos = at
		return p.errf("escape \\%c needs %d hex digits in argument %q", c, digits, arg)
	}
	p.pos += digits
	if c == 'x' {
		b.WriteByte(byte(v))
		return nil
	}
	r := rune(v)
	if v > unicode.MaxRune || (0xd800 <= r && r <= 0xdfff) {
		p.pos = at
		return p.errf("escape \\%c%s is not a valid Unicode code point in argument %q", c, strconv.FormatUint(v, 16), arg)
	}
	b.WriteRune(r)
	return nil
}
