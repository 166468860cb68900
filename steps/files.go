package steps

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"unicode/utf8"
)

// WriteJSON writes v as indented JSON (no HTML escaping, trailing newline)
// to path. Reports use it so they are byte-stable and readable.
func WriteJSON(path string, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// JSONLWriter writes one compact JSON value per line, without HTML escaping,
// so that outputs are byte-stable.
type JSONLWriter struct {
	f   *os.File
	w   *bufio.Writer
	enc *json.Encoder
	n   int
}

// CreateJSONL creates (truncates) path for writing JSON lines.
func CreateJSONL(path string) (*JSONLWriter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	w := bufio.NewWriterSize(f, 1<<16)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &JSONLWriter{f: f, w: w, enc: enc}, nil
}

// Write appends one record.
func (j *JSONLWriter) Write(v any) error {
	j.n++
	return j.enc.Encode(v)
}

// Count is the number of records written.
func (j *JSONLWriter) Count() int { return j.n }

// Close flushes and closes the file.
func (j *JSONLWriter) Close() error {
	if err := j.w.Flush(); err != nil {
		_ = j.f.Close() // the flush's error is the one to report
		return err
	}
	return j.f.Close()
}

// ReadJSONL calls fn for every non-empty line of path, with its 1-based line
// number. Errors name the file and line.
func ReadJSONL(path string, fn func(line int, raw []byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }() // read-only
	r := bufio.NewReaderSize(f, 1<<16)
	for line := 1; ; line++ {
		raw, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(raw)) > 0 {
			if ferr := fn(line, bytes.TrimRight(raw, "\r\n")); ferr != nil {
				return fmt.Errorf("%s:%d: %w", path, line, ferr)
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
	}
}

// RecordText returns the "text" field of one JSONL line, or an error that
// says what is wrong with the line (not valid UTF-8, not a JSON object,
// invalid JSON and at which column, no "text", a "text" that is not a
// string).
func RecordText(raw []byte) (string, error) {
	if !utf8.Valid(raw) {
		return "", errors.New("line is not valid UTF-8")
	}
	if len(raw) == 0 || raw[0] != '{' {
		return "", fmt.Errorf("expected a JSON object, got %s", clip(raw))
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return "", fmt.Errorf("invalid JSON at column %d: %v", se.Offset, err)
		}
		return "", fmt.Errorf("invalid JSON: %v", err)
	}
	t, ok := obj["text"]
	if !ok {
		return "", errors.New(`record has no "text" field`)
	}
	var text string
	if t = bytes.TrimSpace(t); len(t) == 0 || t[0] != '"' || json.Unmarshal(t, &text) != nil {
		return "", fmt.Errorf(`"text" is %s, not a string`, jsonKind(t))
	}
	return text, nil
}

func jsonKind(v json.RawMessage) string {
	switch v := bytes.TrimSpace(v); {
	case len(v) == 0:
		return "empty"
	case v[0] == '{':
		return "an object"
	case v[0] == '[':
		return "an array"
	case v[0] == 'n':
		return "null"
	case v[0] == 't' || v[0] == 'f':
		return "a boolean"
	default:
		return "a number"
	}
}

func clip(b []byte) string {
	s := string(b)
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return fmt.Sprintf("%q", s)
}
