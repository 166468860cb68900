package csvclean

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/steps"
	"github.com/mlbuild/mlbuild/steps/steptest"
)

// runFixture runs csv_clean through the engine on a file of testdata with
// the defaults overridden by config, and returns the texts and the report.
func runFixture(t *testing.T, fixture string, config map[string]cty.Value) ([]string, Report) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", fixture))
	if err != nil {
		t.Fatal(err)
	}
	ws := steptest.New(t)
	ws.Write("data/"+fixture, string(src))
	res := ws.Run(Kind{}, steptest.Step{Inputs: map[string][]string{"source": {"data/" + fixture}}, Config: config})
	var texts []string
	for _, l := range res.Lines("output") {
		var r record
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("output line %q: %v", l, err)
		}
		texts = append(texts, r.Text)
	}
	var rep Report
	res.JSON("report", &rep)
	return texts, rep
}

// TestNearDuplicates: texts that differ from a kept one only by an
// apostrophe (straight, curly or none), a hyphen or dash, the case of a
// letter, the periods of "D.C." or spacing are duplicates; the first
// spelling is kept and the report says what each differed in.
func TestNearDuplicates(t *testing.T) {
	texts, rep := runFixture(t, "near_duplicates.csv", nil)
	want := []string{
		"Area Man Doesn't Know What He Wants From Life",
		"Local Man Sends E-mail To Entire Company By Mistake",
		"Nation Shocked By Senator's Latest Remark On Taxes",
		"Washington D.C. Residents Demand Statehood Once Again",
		"Self-Described Risk-Taker Orders The Usual",
		// Accents are letters: not a duplicate.
		"Violence Erupts Over Price Of Crème Brûlée Torches",
		"Violence Erupts Over Price Of Creme Brulee Torches",
	}
	if !reflect.DeepEqual(texts, want) {
		t.Errorf("texts:\n%q\nwant\n%q", texts, want)
	}
	if rep.Dropped[dropDuplicate] != 1 || rep.Dropped[dropDuplicateCI] != 7 {
		t.Errorf("dropped %v", rep.Dropped)
	}
	wantNear := map[string]int{nearCase: 1, nearApostrophes: 2, nearHyphens: 3, nearPeriods: 1, nearPunctuation: 0, nearSpacing: 1}
	if !reflect.DeepEqual(rep.NearDuplicates, wantNear) {
		t.Errorf("near_duplicates %v\nwant            %v", rep.NearDuplicates, wantNear)
	}
	if ex := rep.Examples[dropDuplicateCI]; len(ex) == 0 || !strings.HasSuffix(ex[0].Of, "near_duplicates.csv:2") || ex[0].Line != 3 {
		t.Errorf("examples %+v", ex)
	}

	// Off, only exact duplicates go.
	texts, rep = runFixture(t, "near_duplicates.csv", map[string]cty.Value{"case_insensitive_dedupe": cty.False})
	if len(texts) != 14 || rep.Dropped[dropDuplicateCI] != 0 || rep.NearDuplicates[nearApostrophes] != 0 {
		t.Errorf("with case_insensitive_dedupe = false: %d texts, %v, %v", len(texts), rep.Dropped, rep.NearDuplicates)
	}
}

func TestNearRules(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want []string
	}{
		{"Don't Stop", "Dont Stop", []string{nearApostrophes}},
		{"Don't Stop", "Don’t Stop", []string{nearApostrophes}},
		{"Area Man", "Area man", []string{nearCase}},
		{"D.C. Man", "DC Man", []string{nearPeriods}},
		{"Risk-Taker", "Risk Taker", []string{nearHyphens, nearSpacing}},
		{"Wow!", "Wow", []string{nearPunctuation}},
	} {
		if dedupeKey(tc.a) != dedupeKey(tc.b) {
			t.Errorf("%q and %q have different keys", tc.a, tc.b)
		}
		if got := nearRules(tc.a, tc.b); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("nearRules(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestOutletSuffixes: any news site's page-title suffix goes, not only the
// Onion family's; a dash or bar followed by other words stays.
func TestOutletSuffixes(t *testing.T) {
	texts, rep := runFixture(t, "outlets.csv", nil)
	want := []string{
		"As Airline Fees Rise, Carry-On Bags Could Be Next",
		"Town Council Votes To Repaint The Old Bridge",
		"Glaciers Retreat Faster Than Forecast",
		"Senate Passes Budget After Long Night Of Debate",
		"Storm Knocks Out Power Across Three Counties",
		"Markets Close Higher On Strong Jobs Report",
		"Minister Resigns Over Expense Claims",
		"Area Man Says Goodbye To Summer - Forever",
		"Local Man Cannot Stop Watching Fox News",
		"Grandfather Reads The Times | Every Morning",
		"Area Man Declares Victory",
	}
	if !reflect.DeepEqual(texts, want) {
		t.Errorf("texts:\n%q\nwant\n%q", texts, want)
	}
	if rep.Fixed[fixOutlet] != 7 || rep.Fixed[fixSuffix] != 1 {
		t.Errorf("fixed %v", rep.Fixed)
	}
	// Fewer than three words before it: not a suffix.
	if s, ok := stripOutletSuffixes("Fox News | Reuters"); ok {
		t.Errorf("stripped %q", s)
	}
	texts, rep = runFixture(t, "outlets.csv", map[string]cty.Value{"strip_outlet_suffixes": cty.False})
	if texts[0] != "As Airline Fees Rise, Carry-On Bags Could Be Next | CBC News" || rep.Fixed[fixOutlet] != 0 {
		t.Errorf("with strip_outlet_suffixes = false: %q, %v", texts[0], rep.Fixed)
	}
}

// TestSpam: obvious spam and promotions go, each counted by rule; satire
// that mentions a discount or buying in passing stays.
func TestSpam(t *testing.T) {
	texts, rep := runFixture(t, "spam.csv", nil)
	want := []string{
		"Cambridge Analytica Offers 75% Off All Facebook User Data For Blowout Closing Sale",
		"Area Man Buys Google Stock After Reading One Article",
		"Nation Pleads With Area Man To Stop Ordering Things Now",
	}
	if !reflect.DeepEqual(texts, want) {
		t.Errorf("texts:\n%q\nwant\n%q", texts, want)
	}
	wantSpam := map[string]int{spamBuyEngagement: 2, spamDiscount: 2, spamCallToAction: 1, spamContact: 1, spamMoney: 1}
	if rep.Dropped[dropSpam] != 7 || !reflect.DeepEqual(rep.Spam, wantSpam) {
		t.Errorf("dropped %v, spam %v\nwant spam %v", rep.Dropped, rep.Spam, wantSpam)
	}
	texts, _ = runFixture(t, "spam.csv", map[string]cty.Value{"drop_spam": cty.False})
	if len(texts) != 10 {
		t.Errorf("with drop_spam = false: %d texts", len(texts))
	}
}

// TestMaxLineBytes: a line longer than max_line_bytes fails the step
// before it is held in memory, naming the file, the line, the limit and
// the attribute that raises it; so does a record that runs on over many
// lines (an unclosed quote). Raising the limit reads the file.
func TestMaxLineBytes(t *testing.T) {
	long := strings.Repeat("word ", 1000) // 5000 bytes
	content := "id,title\n1,Area Man Wins Big Prize\n2," + long + "\n3,Another Fine Headline For You\n"
	ws := steptest.New(t)
	ws.Write("data/long.csv", content)
	step := steptest.Step{Inputs: map[string][]string{"source": {"data/long.csv"}},
		Config: map[string]cty.Value{"max_line_bytes": cty.NumberIntVal(4096)}}
	_, err := ws.Try(Kind{}, step)
	if err == nil {
		t.Fatal("no error for a line over max_line_bytes")
	}
	for _, s := range []string{"csv_clean.test: ", "long.csv:3: ", "longer than max_line_bytes (4096 bytes)", "set max_line_bytes"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
	step.Config["max_line_bytes"] = cty.NumberIntVal(8192)
	res := ws.Run(Kind{}, step)
	if n := len(res.Lines("output")); n != 3 {
		t.Errorf("with max_line_bytes = 8192: %d texts", n)
	}

	// An unclosed quote on line 3 swallows the rest of the file, line by
	// short line. (The reader may read up to 64 KiB ahead of the record, so
	// the error comes once the record is past the limit by that much.)
	rest := strings.Repeat("Area Man Wins Another Prize\n", 3000) // 84,000 bytes
	p := writeCSV(t, "id,title\n1,Fine Headline For The Day\n2,\"Unclosed Quote Starts Here\n"+rest)
	_, _, _, err = runKind(t, []string{p}, map[string]cty.Value{"max_line_bytes": cty.NumberIntVal(1024)})
	var long2 *errTooLong
	if !errors.As(err, &long2) || !long2.record || long2.line != 3 {
		t.Fatalf("unclosed quote: %v (%+v)", err, long2)
	}
	if !strings.Contains(err.Error(), "in.csv:3: the CSV record starting on this line is longer than max_line_bytes (1024 bytes)") {
		t.Errorf("unclosed quote: %v", err)
	}
	// The default reads it as the malformed CSV it is.
	_, _, _, err = runKind(t, []string{p}, nil)
	if err == nil || !strings.Contains(err.Error(), "in.csv:") || errors.As(err, &long2) {
		t.Errorf("unclosed quote, default limit: %v", err)
	}
}

// TestLimitReaderLines checks the line numbers a limitReader reports
// across reads that split lines and records anywhere.
func TestLimitReaderLines(t *testing.T) {
	data := "a\nbb\n\nccc\n" + strings.Repeat("x", 50) + "\nd\n"
	for _, chunk := range []int{1, 3, 7, 64} {
		l := newLimitReader(&chunked{s: data, n: chunk}, 20, 1<<20)
		buf := make([]byte, 128)
		var err error
		for err == nil {
			_, err = l.Read(buf)
		}
		var tl *errTooLong
		if !errors.As(err, &tl) || tl.line != 5 || tl.record {
			t.Errorf("chunk %d: %v", chunk, err)
		}
	}
}

// chunked reads s n bytes at a time.
type chunked struct {
	s string
	n int
}

func (c *chunked) Read(p []byte) (int, error) {
	if c.s == "" {
		return 0, errors.New("EOF")
	}
	k := copy(p[:min(len(p), c.n)], c.s)
	c.s = c.s[k:]
	return k, nil
}

func TestMaxLineBytesValidate(t *testing.T) {
	for _, v := range []int64{0, -1, maxMaxLineBytes + 1} {
		err := (Kind{}).Validate(invocation(map[string]cty.Value{"max_line_bytes": cty.NumberIntVal(v)}))
		var ae *steps.AttrError
		if !errors.As(err, &ae) || ae.Attr != "max_line_bytes" {
			t.Errorf("max_line_bytes = %d: %v", v, err)
		}
	}
}

// TestPeakMemory is a measuring helper, not a check: with
// MLBUILD_CSV_MEMPROBE=BYTES set it cleans a CSV whose one data line is
// BYTES long (with MLBUILD_CSV_MEMPROBE_LIMIT as max_line_bytes, if set)
// and logs the heap's peak as runtime.MemStats sees it. Run it with
// /usr/bin/time -v for the process's maximum resident size.
func TestPeakMemory(t *testing.T) {
	var size, limit int
	if _, err := fmt.Sscan(os.Getenv("MLBUILD_CSV_MEMPROBE"), &size); err != nil || size <= 0 {
		t.Skip("set MLBUILD_CSV_MEMPROBE=BYTES to measure the memory a line of BYTES bytes takes")
	}
	p := filepath.Join(t.TempDir(), "big.csv")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	chunk := []byte(strings.Repeat("Area Man Wins ", 4096))
	_, err = f.WriteString("id,title\n1,")
	for left := size; left > 0 && err == nil; left -= len(chunk) {
		_, err = f.Write(chunk[:min(left, len(chunk))])
	}
	if _, werr := f.WriteString("\n"); err == nil {
		err = werr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	over := map[string]cty.Value{}
	if _, err := fmt.Sscan(os.Getenv("MLBUILD_CSV_MEMPROBE_LIMIT"), &limit); err == nil && limit > 0 {
		over["max_line_bytes"] = cty.NumberIntVal(int64(limit))
	}
	runtime.GC()
	done := make(chan struct{})
	peak := make(chan uint64)
	go func() {
		var m runtime.MemStats
		var hi uint64
		for {
			runtime.ReadMemStats(&m)
			hi = max(hi, m.HeapInuse)
			select {
			case <-done:
				peak <- hi
				return
			default:
			}
		}
	}()
	_, _, _, err = runKind(t, []string{p}, over)
	close(done)
	t.Logf("line of %d bytes: error %v; peak heap in use %.1f MB", size, err, float64(<-peak)/1e6)
}
