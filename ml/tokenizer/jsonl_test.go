package tokenizer

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// A line over the limit stops EncodeJSONLMax with ErrLineTooLong, naming
// the line and the limit, after the lines before it are written, and
// without reading the rest of the line; a line of exactly the limit is
// encoded.
func TestEncodeJSONLLineLimit(t *testing.T) {
	tok := mustParse(t, tinySP)
	short := "{\"text\": \"ab\"}"
	long := "{\"text\": \"" + strings.Repeat("a", 100) + "\"}"
	var out bytes.Buffer
	in := &countingReader{r: strings.NewReader(short + "\n" + long + strings.Repeat(" ", 1<<20) + "\n")}
	err := tok.EncodeJSONLMax(in, &out, false, len(long))
	if !errors.Is(err, ErrLineTooLong) || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "112 bytes") {
		t.Fatalf("a line over the limit: %v; want ErrLineTooLong naming line 2 and the 112-byte limit", err)
	}
	if out.String() != "{\"text\":\"ab\",\"ids\":[16]}\n" {
		t.Errorf("the line before it was not written: %q", out.String())
	}
	if in.n > 1<<18 {
		t.Errorf("read %d bytes of input, far past the limit", in.n)
	}
	out.Reset()
	if err := tok.EncodeJSONLMax(strings.NewReader(long+"\n"+short), &out, false, len(long)); err != nil {
		t.Errorf("a line of exactly the limit: %v", err)
	}
	if err := tok.EncodeJSONL(strings.NewReader(long), &bytes.Buffer{}, false); err != nil {
		t.Errorf("under the default limit: %v", err)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}
