package tokenizer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// DefaultMaxLineBytes is the longest line EncodeJSONL accepts. Encoding
// holds a line several times over (its bytes, the decoded text, the
// encoder's working symbols, the ids, the output line) and, for a text
// with no spaces, BPE's symbols and merge queue cost some 40 bytes per
// byte: 16 MiB keeps the worst case under a gigabyte while taking a whole
// book in one record.
const DefaultMaxLineBytes = 16 << 20

// ErrLineTooLong means a JSON line is over the limit EncodeJSONLMax was
// given.
var ErrLineTooLong = errors.New("tokenizer: line too long")

// EncodeJSONL is EncodeJSONLMax with DefaultMaxLineBytes.
func (t *Tokenizer) EncodeJSONL(r io.Reader, w io.Writer, addSpecial bool) error {
	return t.EncodeJSONLMax(r, w, addSpecial, DefaultMaxLineBytes)
}

// EncodeJSONLMax reads JSON lines {"text": ...} from r and writes one line
// {"text": ..., "ids": [...]} per input line to w (other fields are not
// copied). Blank lines are skipped. A line that is not a JSON object with
// a string "text", or that is longer than maxLine bytes (its newline
// aside; 0: no limit), stops it with an error naming the line number,
// after the lines before it have been written; a line over the limit is
// refused as soon as that many bytes of it have been read, and an error
// for it wraps ErrLineTooLong.
func (t *Tokenizer) EncodeJSONLMax(r io.Reader, w io.Writer, addSpecial bool, maxLine int) error {
	br := bufio.NewReaderSize(r, 1<<16)
	bw := bufio.NewWriterSize(w, 1<<16)
	var text bytes.Buffer
	enc := json.NewEncoder(&text)
	enc.SetEscapeHTML(false)
	err := t.encodeJSONL(br, bw, enc, &text, addSpecial, maxLine)
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return err
}

// readLine reads a line (with its newline, if any) into buf, refusing one
// of more than maxLine bytes before its newline (0: no limit).
func readLine(br *bufio.Reader, buf []byte, maxLine int) ([]byte, error) {
	buf = buf[:0]
	for {
		frag, err := br.ReadSlice('\n')
		buf = append(buf, frag...)
		if maxLine > 0 && len(bytes.TrimSuffix(buf, []byte("\n"))) > maxLine {
			return buf, errOverLimit
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return buf, err
		}
	}
}

// errOverLimit is readLine's signal of a line over the limit.
var errOverLimit = errors.New("over the limit")

// sizeText writes n bytes for a message: "16 MiB" where it is a whole
// number of MiB, else the bytes.
func sizeText(n int) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

func (t *Tokenizer) encodeJSONL(br *bufio.Reader, bw *bufio.Writer, enc *json.Encoder, text *bytes.Buffer, addSpecial bool, maxLine int) error {
	var (
		line, out []byte
		ids       []int
	)
	for lineNo := 1; ; lineNo++ {
		var err error
		line, err = readLine(br, line, maxLine)
		if errors.Is(err, errOverLimit) {
			return fmt.Errorf("line %d: %w: over the limit of %s (split its text into several records, or raise the limit)", lineNo, ErrLineTooLong, sizeText(maxLine))
		}
		if len(bytes.TrimSpace(line)) > 0 {
			var rec map[string]json.RawMessage
			if jerr := json.Unmarshal(line, &rec); jerr != nil {
				return fmt.Errorf("line %d: not a JSON object: %v", lineNo, jerr)
			}
			raw, ok := rec["text"]
			if !ok {
				return fmt.Errorf("line %d: the object has no \"text\" field", lineNo)
			}
			var s string
			if jerr := json.Unmarshal(raw, &s); jerr != nil {
				return fmt.Errorf("line %d: \"text\" is %s, not a string", lineNo, truncate(string(raw), 40))
			}
			rec, raw = nil, nil
			ids = t.AppendEncode(ids[:0], s, addSpecial)
			text.Reset()
			if err := enc.Encode(s); err != nil {
				return fmt.Errorf("line %d: %w", lineNo, err)
			}
			s = ""
			if _, err := bw.WriteString(`{"text":`); err != nil {
				return err
			}
			if _, err := bw.Write(bytes.TrimSuffix(text.Bytes(), []byte("\n"))); err != nil {
				return err
			}
			out = append(out[:0], `,"ids":[`...)
			for i, id := range ids {
				if i > 0 {
					out = append(out, ',')
				}
				out = strconv.AppendInt(out, int64(id), 10)
				if len(out) >= 1<<16 {
					if _, err := bw.Write(out); err != nil {
						return err
					}
					out = out[:0]
				}
			}
			out = append(out, "]}\n"...)
			if _, err := bw.Write(out); err != nil {
				return err
			}
			if cap(line) > 1<<20 {
				// Let a long line's buffers go rather than keep them
				// for the next (usually short) lines.
				line, ids = nil, nil
				*text = bytes.Buffer{} // enc writes through the pointer
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("line %d: %w", lineNo, err)
		}
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
