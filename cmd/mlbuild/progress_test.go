package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/mlbuild/mlbuild/engine"
)

// failWriter fails every write, as a closed pipe does.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

// A --json consumer that stops reading makes the run fail, once, with the
// first write's error, instead of the events silently going missing.
func TestRunPrinterJSONWriteError(t *testing.T) {
	var stderr bytes.Buffer
	p := newRunPrinter(failWriter{}, &stderr, true)
	p.event(engine.Event{Type: engine.EventStarted, Step: "a.b"})
	p.event(engine.Event{Type: engine.EventStarted, Step: "c.d"})
	err := p.close()
	if err == nil || !strings.Contains(err.Error(), "write --json events: broken pipe") {
		t.Fatalf("close: %v, want the write error", err)
	}

	var out bytes.Buffer
	p = newRunPrinter(&out, &stderr, true)
	p.event(engine.Event{Type: engine.EventStarted, Step: "a.b"})
	if err := p.close(); err != nil || !strings.Contains(out.String(), `"step":"a.b"`) {
		t.Fatalf("close: %v, output %q", err, out.String())
	}
}
