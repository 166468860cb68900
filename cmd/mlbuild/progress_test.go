package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

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

// Outside a terminal, each tick prints a line per running step from the
// progress events: percent, count, rate since the first event, time left,
// the step's message and how long it has run. The ticks and the clock are
// the test's, so nothing sleeps.
func TestRunPrinterPeriodicProgress(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now := t0
	ticks := make(chan time.Time)
	var stdout, stderr bytes.Buffer
	p := newRunPrinterWith(&stdout, &stderr, printerOptions{ticks: ticks, now: func() time.Time { return now }})
	p.event(engine.Event{Type: engine.EventStarted, Step: "pretrain.base"})
	p.event(engine.Event{Type: engine.EventStarted, Step: "csv_clean.onion"})
	now = t0.Add(10 * time.Second)
	p.event(engine.Event{Type: engine.EventProgress, Step: "pretrain.base", Progress: &engine.Progress{Done: 10, Total: 100}})
	now = t0.Add(20 * time.Second)
	p.event(engine.Event{Type: engine.EventProgress, Step: "pretrain.base", Progress: &engine.Progress{Done: 30, Total: 100, Message: "loss 2.31"}})
	now = t0.Add(30 * time.Second)
	ticks <- now // received: the goroutine prints (at the tick's time) before it waits again
	now = t0.Add(40 * time.Second)
	p.event(engine.Event{Type: engine.EventStep, Step: "csv_clean.onion", Result: &engine.StepResult{Step: "csv_clean.onion", Status: engine.StatusRan, Seconds: 40}})
	ticks <- now
	if err := p.close(); err != nil {
		t.Fatal(err)
	}
	want := "progress: csv_clean.onion (running 30s)\n" +
		"progress: pretrain.base 30% (30/100), 2/s, ETA 25s, loss 2.31 (running 30s)\n" +
		"progress: pretrain.base 30% (30/100), 2/s, ETA 15s, loss 2.31 (running 40s)\n"
	if stderr.String() != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr.String(), want)
	}
	if !strings.Contains(stdout.String(), "ran     csv_clean.onion") {
		t.Errorf("stdout:\n%s", stdout.String())
	}

	// --progress-every 0 prints none; --json never does (its progress
	// events are the record).
	for _, o := range []printerOptions{{every: 0}, {json: true, every: time.Nanosecond}} {
		p := newRunPrinterWith(&stdout, &stderr, o)
		if p.periodic || p.live {
			t.Errorf("%+v: periodic %v, live %v", o, p.periodic, p.live)
		}
		if err := p.close(); err != nil {
			t.Fatal(err)
		}
	}
}
