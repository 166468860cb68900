package csvclean

import (
	"bytes"
	"fmt"
	"io"
)

// defaultMaxLineBytes is max_line_bytes' default: far above any headline
// or post, far below what would exhaust memory (encoding/csv holds a whole
// record, and the repairs copy a field several times).
const defaultMaxLineBytes = 1 << 20

// maxMaxLineBytes bounds max_line_bytes.
const maxMaxLineBytes = 1 << 34

// errTooLong is what a limitReader returns when a line or record is longer
// than the limit.
type errTooLong struct {
	line   int   // 1-based line of the file where the line or record starts
	limit  int64 // max_line_bytes
	record bool  // a record of several lines, not one line, is too long
}

func (e *errTooLong) Error() string {
	what := "line"
	hint := ""
	if e.record {
		what = "CSV record starting on this line"
		hint = " (a quoted field that is never closed makes the rest of the file one field)"
	}
	return fmt.Sprintf("%d: the %s is longer than max_line_bytes (%d bytes)%s; set max_line_bytes on the step to a larger number of bytes to read it",
		e.line, what, e.limit, hint)
}

// limitReader passes a CSV file's bytes through, failing as soon as one
// physical line, or the record the CSV reader is in the middle of, grows
// past limit bytes, so that a huge line costs no more memory than the
// limit. It counts lines itself, so that the error names the right one.
type limitReader struct {
	r     io.Reader
	limit int64
	slack int64 // how far the CSV reader's buffer may read ahead of the record it parses

	off       int64   // bytes delivered
	line      int     // 1-based line of the byte at off
	lineStart int64   // offset of the current line's first byte
	recStart  int64   // offset where the record being parsed starts
	newlines  []int64 // offsets of delivered newlines; those from head on are at or after recStart
	head      int
}

func newLimitReader(r io.Reader, limit, slack int64) *limitReader {
	return &limitReader{r: r, limit: limit, slack: slack, line: 1}
}

// Read implements io.Reader.
func (l *limitReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	buf := p[:n]
	for len(buf) > 0 {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		nl := l.off + int64(i)
		if nl-l.lineStart > l.limit {
			return 0, &errTooLong{line: l.line, limit: l.limit}
		}
		l.newlines = append(l.newlines, nl)
		l.line++
		l.lineStart = nl + 1
		l.off += int64(i) + 1
		buf = buf[i+1:]
	}
	l.off += int64(len(buf))
	if l.off-l.lineStart > l.limit {
		return 0, &errTooLong{line: l.line, limit: l.limit}
	}
	if l.off-l.recStart > l.limit+l.slack {
		return 0, &errTooLong{line: l.recordLine(), limit: l.limit, record: true}
	}
	return n, err
}

// recordLine is the line on which the record being parsed starts.
func (l *limitReader) recordLine() int {
	return l.line - (len(l.newlines) - l.head)
}

// recordDone tells the reader that the CSV reader has consumed the input up
// to off: the next record starts there.
func (l *limitReader) recordDone(off int64) {
	for l.head < len(l.newlines) && l.newlines[l.head] < off {
		l.head++
	}
	if l.head > 4096 && l.head*2 > len(l.newlines) {
		l.newlines = append(l.newlines[:0], l.newlines[l.head:]...)
		l.head = 0
	}
	l.recStart = off
}
