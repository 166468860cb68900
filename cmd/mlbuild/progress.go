package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/mlbuild/mlbuild/engine"
)

// runPrinter prints a run's events: a line per step that ran, failed or
// was not started (and, with -v, per cached step) and a summary (or, with
// --json, a JSON line per event), plus, on a terminal, a live status line of the
// running steps with their elapsed time and progress, and elsewhere (a CI
// log, a file) a line per running step every so often, so that a long
// step does not look hung.
type runPrinter struct {
	stdout, stderr io.Writer
	// jsonOut buffers the JSON lines: a no-op of 50,000 steps prints as
	// many, and a write each cost more than the rest of the no-op. It is
	// flushed after every event but a cached step's, and at close.
	jsonOut  *bufio.Writer
	jsonBuf  []byte // a step's JSON line (appendStepJSON)
	json     bool
	verbose  bool
	live     bool
	periodic bool
	now      func() time.Time

	mu      sync.Mutex
	running map[string]*liveStep
	drawn   bool
	stop    chan struct{}
	done    chan struct{}
	jsonErr error // the first JSON line that could not be written
}

type liveStep struct {
	start    time.Time
	progress *engine.Progress
	// first is the first progress event's time and done count, last the
	// latest's time: the rate is measured between them (the time before
	// the first is setup, not work).
	first, last time.Time
	firstDone   float64
}

// defaultProgressEvery is how often a run outside a terminal prints its
// running steps' progress.
const defaultProgressEvery = 30 * time.Second

// printerOptions configure a runPrinter.
type printerOptions struct {
	json bool
	// verbose prints a line per cached step too.
	verbose bool
	// every is the interval of the progress lines printed when stderr is
	// not a terminal; 0 prints none.
	every time.Duration
	// ticks, when set, replaces the ticker of those lines, and now the
	// clock (tests).
	ticks <-chan time.Time
	now   func() time.Time
}

func newRunPrinter(stdout, stderr io.Writer, asJSON bool) *runPrinter {
	return newRunPrinterWith(stdout, stderr, printerOptions{json: asJSON, every: defaultProgressEvery})
}

func newRunPrinterWith(stdout, stderr io.Writer, o printerOptions) *runPrinter {
	p := &runPrinter{stdout: stdout, stderr: stderr, json: o.json, verbose: o.verbose, running: map[string]*liveStep{}, now: o.now}
	if p.now == nil {
		p.now = time.Now
	}
	if o.json {
		p.jsonOut = bufio.NewWriterSize(stdout, 64<<10)
		return p
	}
	if f, ok := stderr.(*os.File); ok && o.ticks == nil && term.IsTerminal(int(f.Fd())) && os.Getenv("CI") == "" {
		p.live = true
		t := time.NewTicker(200 * time.Millisecond)
		p.start(t.C, t.Stop, func(time.Time) { p.redraw() })
		return p
	}
	switch {
	case o.ticks != nil:
		p.periodic = true
		p.start(o.ticks, func() {}, p.report)
	case o.every > 0:
		p.periodic = true
		t := time.NewTicker(o.every)
		p.start(t.C, t.Stop, p.report)
	}
	return p
}

// start calls fn (with mu held) with every tick's time until close.
func (p *runPrinter) start(ticks <-chan time.Time, stopTicks func(), fn func(time.Time)) {
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.done)
		defer stopTicks()
		for {
			select {
			case <-p.stop:
				return
			case now := <-ticks:
				p.mu.Lock()
				fn(now)
				p.mu.Unlock()
			}
		}
	}()
}

// report prints a line per running step at now: its progress (percent,
// count, rate, time left) and how long it has run; the caller holds mu.
func (p *runPrinter) report(now time.Time) {
	for _, n := range sortedKeys(p.running) {
		ls := p.running[n]
		line := "progress: " + n
		if pr := ls.progress; pr != nil {
			var parts []string
			if pr.Total > 0 {
				parts = append(parts, fmt.Sprintf("%.0f%% (%.0f/%.0f)", 100*pr.Done/pr.Total, pr.Done, pr.Total))
			} else {
				parts = append(parts, fmt.Sprintf("%.0f done", pr.Done))
			}
			if secs := ls.last.Sub(ls.first).Seconds(); secs > 0 && pr.Done > ls.firstDone {
				rate := (pr.Done - ls.firstDone) / secs
				parts = append(parts, fmt.Sprintf("%.3g/s", rate))
				if pr.Total > pr.Done {
					left := (pr.Total-pr.Done)/rate - now.Sub(ls.last).Seconds()
					parts = append(parts, "ETA "+fmtDuration(max(left, 0)))
				}
			}
			if pr.Message != "" {
				parts = append(parts, pr.Message)
			}
			line += " " + strings.Join(parts, ", ")
		}
		fmt.Fprintf(p.stderr, "%s (running %s)\n", line, fmtDuration(now.Sub(ls.start).Seconds()))
	}
}

// fmtDuration rounds seconds to a whole second (1m13s).
func fmtDuration(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Second).String()
}

// redraw replaces the status line; the caller holds mu.
func (p *runPrinter) redraw() {
	p.clear()
	if len(p.running) == 0 {
		return
	}
	names := make([]string, 0, len(p.running))
	for n := range p.running {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		ls := p.running[n]
		s := fmt.Sprintf("%s %s", n, p.now().Sub(ls.start).Round(100*time.Millisecond))
		if pr := ls.progress; pr != nil {
			if pr.Total > 0 {
				s += " " + progressBar(pr.Done/pr.Total, 20) + fmt.Sprintf(" %.0f%% %.0f/%.0f", 100*pr.Done/pr.Total, pr.Done, pr.Total)
			}
			if pr.Message != "" {
				s += " " + pr.Message
			}
		}
		parts = append(parts, s)
	}
	line := "running: " + strings.Join(parts, " | ")
	if w, _, err := term.GetSize(int(p.stderr.(*os.File).Fd())); err == nil && w > 4 && len(line) > w-1 {
		line = line[:w-4] + "..."
	}
	fmt.Fprint(p.stderr, line)
	p.drawn = true
}

func (p *runPrinter) clear() {
	if p.drawn {
		fmt.Fprint(p.stderr, "\r\033[K")
		p.drawn = false
	}
}

func (p *runPrinter) event(ev engine.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch ev.Type {
	case engine.EventStarted:
		p.running[ev.Step] = &liveStep{start: p.now()}
		if p.json {
			p.emitJSON(map[string]any{"type": "started", "step": ev.Step})
		}
	case engine.EventProgress:
		if ls, ok := p.running[ev.Step]; ok && ev.Progress != nil {
			if ls.progress == nil {
				ls.first, ls.firstDone = p.now(), ev.Progress.Done
			}
			ls.progress, ls.last = ev.Progress, p.now()
		}
		if p.json {
			p.emitJSON(struct {
				Type string `json:"type"`
				Step string `json:"step"`
				*engine.Progress
			}{"progress", ev.Step, ev.Progress})
		}
	case engine.EventOutput:
		if p.json {
			p.emitJSON(map[string]any{"type": "output", "step": ev.Step, "stream": ev.Stream, "line": ev.Message})
			return
		}
		// A program's output goes to stderr, after the step's name, so
		// that stdout keeps one line per step.
		p.clear()
		fmt.Fprintf(p.stderr, "%s | %s\n", ev.Step, ev.Message)
		if p.live {
			p.redraw()
		}
	case engine.EventStep:
		delete(p.running, ev.Step)
		if p.json {
			p.jsonBuf = appendStepJSON(p.jsonBuf[:0], ev.Result)
			if _, err := p.jsonOut.Write(p.jsonBuf); err != nil {
				p.jsonFailed(err)
			}
			if ev.Result.Status != engine.StatusCached {
				p.flushJSON()
			}
			return
		}
		if ev.Result.Status == engine.StatusCached && !p.verbose {
			return // counted in the summary
		}
		p.clear()
		p.stepLine(ev.Result)
		if p.live {
			p.redraw()
		}
	case engine.EventSummary:
		if p.json {
			p.emitJSON(struct {
				Type string `json:"type"`
				*engine.Summary
			}{"summary", ev.Summary})
			return
		}
		p.clear()
		s := ev.Summary
		fmt.Fprintf(p.stdout, "%d steps: %d ran, %d cached, %d failed", s.Ran+s.Cached+s.Failed+s.Skipped, s.Ran, s.Cached, s.Failed)
		if s.Skipped > 0 {
			fmt.Fprintf(p.stdout, ", %d not started", s.Skipped)
		}
		fmt.Fprintf(p.stdout, " in %s\n", fmtSeconds(s.Seconds))
	}
}

func (p *runPrinter) stepLine(r *engine.StepResult) {
	switch r.Status {
	case engine.StatusRan:
		fmt.Fprintf(p.stdout, "ran     %-28s %7s  %s\n", r.Step, fmtSeconds(r.Seconds), r.Reason)
	case engine.StatusCached:
		note := ""
		if r.Restored {
			note = "  (outputs restored from the cache)"
		}
		fmt.Fprintf(p.stdout, "cached  %-28s%s\n", r.Step, note)
	case engine.StatusFailed:
		fmt.Fprintf(p.stdout, "FAILED  %-28s %7s  %s\n", r.Step, fmtSeconds(r.Seconds), r.Error)
	case engine.StatusSkipped:
		fmt.Fprintf(p.stdout, "skipped %-28s          %s\n", r.Step, r.Reason)
	}
}

// logWriter is where the run's log lines go: stderr, after clearing the
// status line so the two don't interleave.
func (p *runPrinter) logWriter() io.Writer { return logWriter{p} }

type logWriter struct{ p *runPrinter }

func (w logWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	w.p.clear()
	return w.p.stderr.Write(b)
}

// emitJSON prints a JSON line at once.
func (p *runPrinter) emitJSON(v any) {
	p.writeJSON(v)
	p.flushJSON()
}

// writeJSON buffers a JSON line.
func (p *runPrinter) writeJSON(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	b = append(b, '\n')
	if _, err := p.jsonOut.Write(b); err != nil {
		p.jsonFailed(err)
	}
}

// flushJSON writes the buffered JSON lines out.
func (p *runPrinter) flushJSON() {
	if err := p.jsonOut.Flush(); err != nil {
		p.jsonFailed(err)
	}
}

func (p *runPrinter) jsonFailed(err error) {
	if p.jsonErr == nil {
		p.jsonErr = fmt.Errorf("write --json events: %w", err)
	}
}

// close stops the status line. It returns the error of the first JSON
// line that could not be written: a consumer of --json missed events.
func (p *runPrinter) close() error {
	if p.stop != nil {
		close(p.stop)
		<-p.done
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.live {
		p.clear()
	}
	if p.jsonOut != nil {
		p.flushJSON()
	}
	return p.jsonErr
}

func fmtSeconds(s float64) string {
	switch {
	case s < 1:
		return fmt.Sprintf("%.0fms", s*1000)
	case s < 60:
		return fmt.Sprintf("%.1fs", s)
	default:
		return time.Duration(s * float64(time.Second)).Round(time.Second).String()
	}
}

// progressBar draws frac (0..1) as a bar of width cells: [#####.....].
func progressBar(frac float64, width int) string {
	frac = min(max(frac, 0), 1)
	full := int(frac*float64(width) + 0.5)
	return "[" + strings.Repeat("#", full) + strings.Repeat(".", width-full) + "]"
}

// appendStepJSON appends a step event's JSON line (with its newline) to b:
// the bytes json.Marshal gives for struct{Type string `json:"type"`;
// *engine.StepResult}{"step", r}, written without reflection, since a
// no-op of a large pipeline prints one per step.
func appendStepJSON(b []byte, r *engine.StepResult) []byte {
	b = append(b, `{"type":"step","step":`...)
	b = appendJSONString(b, r.Step)
	b = append(b, `,"status":`...)
	b = appendJSONString(b, string(r.Status))
	if r.Key != "" {
		b = append(b, `,"key":`...)
		b = appendJSONString(b, r.Key)
	}
	if len(r.Outputs) > 0 {
		b = append(b, `,"outputs":{`...)
		var buf [4]string
		names := buf[:0]
		for n := range r.Outputs {
			names = append(names, n)
		}
		sort.Strings(names)
		for i, n := range names {
			if i > 0 {
				b = append(b, ',')
			}
			o := r.Outputs[n]
			b = appendJSONString(b, n)
			b = append(b, `:{"path":`...)
			b = appendJSONString(b, o.Path)
			b = append(b, `,"digest":`...)
			b = appendJSONString(b, o.Digest)
			b = append(b, `,"size":`...)
			b = strconv.AppendInt(b, o.Size, 10)
			if o.Dir {
				b = append(b, `,"dir":true`...)
			}
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	b = append(b, `,"seconds":`...)
	b = appendJSONFloat(b, r.Seconds)
	if r.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendJSONString(b, r.Reason)
	}
	if r.Restored {
		b = append(b, `,"restored":true`...)
	}
	if r.Source != "" {
		b = append(b, `,"source":`...)
		b = appendJSONString(b, r.Source)
	}
	if r.Error != "" {
		b = append(b, `,"error":`...)
		b = appendJSONString(b, r.Error)
	}
	return append(b, "}\n"...)
}

// appendJSONString appends s as json.Marshal writes it: as is when it is
// printable ASCII that needs no escape, else through json.Marshal.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendJSONFloat appends f as json.Marshal writes a float64.
func appendJSONFloat(b []byte, f float64) []byte {
	if a := math.Abs(f); a == 0 || (a >= 1e-6 && a < 1e21) {
		return strconv.AppendFloat(b, f, 'f', -1, 64)
	}
	q, err := json.Marshal(f)
	if err != nil {
		return append(b, '0') // NaN or Inf: never a duration
	}
	return append(b, q...)
}
