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

// EncodeJSONL reads JSON lines {"text": ...} from r and writes one line
// {"text": ..., "ids": [...]} per input line to w (other fields are not
// copied). Blank lines are skipped. A line that is not a JSON object with
// a string "text" stops it with an error naming the line number, after
// the lines before it have been written.
func (t *Tokenizer) EncodeJSONL(r io.Reader, w io.Writer, addSpecial bool) error {
	br := bufio.NewReaderSize(r, 1<<16)
	bw := bufio.NewWriterSize(w, 1<<16)
	var text bytes.Buffer
	enc := json.NewEncoder(&text)
	enc.SetEscapeHTML(false)
	err := t.encodeJSONL(br, bw, enc, &text, addSpecial)
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return err
}

func (t *Tokenizer) encodeJSONL(br *bufio.Reader, bw *bufio.Writer, enc *json.Encoder, text *bytes.Buffer, addSpecial bool) error {
	var (
		out []byte
		ids []int
	)
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadBytes('\n')
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
			ids = t.AppendEncode(ids[:0], s, addSpecial)
			text.Reset()
			if err := enc.Encode(s); err != nil {
				return fmt.Errorf("line %d: %w", lineNo, err)
			}
			out = append(out[:0], `{"text":`...)
			out = append(out, bytes.TrimSuffix(text.Bytes(), []byte("\n"))...)
			out = append(out, `,"ids":[`...)
			for i, id := range ids {
				if i > 0 {
					out = append(out, ',')
				}
				out = strconv.AppendInt(out, int64(id), 10)
			}
			out = append(out, "]}\n"...)
			if _, err := bw.Write(out); err != nil {
				return err
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
