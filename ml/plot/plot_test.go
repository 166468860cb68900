package plot

import (
	"bytes"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func curves() []Series {
	var train, val Series
	train.Name, val.Name = "train", "validation"
	for i := 0; i <= 300; i++ {
		train.X = append(train.X, float64(i))
		train.Y = append(train.Y, 4*math.Exp(-float64(i)/80)+0.5+0.05*math.Sin(float64(i)))
		if i%50 == 0 {
			val.X = append(val.X, float64(i))
			val.Y = append(val.Y, 4*math.Exp(-float64(i)/90)+0.7)
		}
	}
	return []Series{train, val}
}

func decode(t *testing.T, b []byte) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if w, h := img.Bounds().Dx(), img.Bounds().Dy(); w < 500 || h < 300 {
		t.Fatalf("image is %dx%d", w, h)
	}
}

func TestLossCurvesDeterministic(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.png"), filepath.Join(dir, "b.png")
	if err := LossCurves(a, "QLoRA training", curves()...); err != nil {
		t.Fatal(err)
	}
	if err := LossCurves(b, "QLoRA training", curves()...); err != nil {
		t.Fatal(err)
	}
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !bytes.Equal(ab, bb) {
		t.Fatal("two renderings of the same curves differ")
	}
	decode(t, ab)
	other := curves()
	other[1].Y[2] += 1
	ob, err := LossCurvesPNG("QLoRA training", other...)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(ob, ab) {
		t.Fatal("different data gave the same image")
	}
}

func TestLossCurvesEdgeCases(t *testing.T) {
	// No points at all, NaN points, an unnamed series: still an image.
	for _, s := range [][]Series{
		nil,
		{{Name: "train"}},
		{{Name: "train", X: []float64{0, 1, 2}, Y: []float64{math.NaN(), 2, math.Inf(1)}}},
		{{X: []float64{0, 1}, Y: []float64{3, 2}}},
	} {
		b, err := LossCurvesPNG("", s...)
		if err != nil {
			t.Fatalf("%v: %v", s, err)
		}
		decode(t, b)
	}
	if _, err := LossCurvesPNG("", Series{Name: "bad", X: []float64{1}, Y: []float64{1, 2}}); err == nil || !strings.Contains(err.Error(), `"bad"`) {
		t.Fatalf("mismatched lengths: %v", err)
	}
	if err := LossCurves(filepath.Join(t.TempDir(), "no", "such", "dir.png"), "", curves()...); err == nil {
		t.Fatal("unwritable path: no error")
	}
}

func TestBars(t *testing.T) {
	labels := []string{"tool call", "valid call", "exact args", "uses result"}
	groups := []BarGroup{
		{Name: "base", Values: []float64{0, 0, 0, 0}},
		{Name: "fine-tuned", Values: []float64{0.95, 0.9, 0.7, math.NaN()}},
	}
	path := filepath.Join(t.TempDir(), "bars.png")
	if err := Bars(path, "base vs fine-tuned", labels, groups...); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(path)
	b, err := BarsPNG("base vs fine-tuned", labels, groups...)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("two renderings of the same bars differ")
	}
	decode(t, a)
	// Negative and all-zero values.
	if b, err = BarsPNG("", []string{"a", "b"}, BarGroup{Name: "x", Values: []float64{-1, 2}}); err != nil {
		t.Fatal(err)
	}
	decode(t, b)
	if _, err = BarsPNG("", []string{"a"}, BarGroup{Name: "x", Values: []float64{0}}); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		labels []string
		groups []BarGroup
		want   string
	}{
		"no labels": {nil, groups, "at least one label"},
		"no groups": {labels, nil, "at least one group"},
		"short":     {labels, []BarGroup{{Name: "g", Values: []float64{1}}}, `"g" has 1 values for 4 labels`},
		"infinite":  {[]string{"a"}, []BarGroup{{Name: "g", Values: []float64{math.Inf(1)}}}, "infinite"},
	} {
		if _, err := BarsPNG("", tc.labels, tc.groups...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

// TestWritePNGForInspection writes sample images when PLOT_OUT names a
// directory, for a look by eye.
func TestWritePNGForInspection(t *testing.T) {
	dir := os.Getenv("PLOT_OUT")
	if dir == "" {
		t.Skip("set PLOT_OUT to a directory to write sample images")
	}
	if err := LossCurves(filepath.Join(dir, "loss.png"), "QLoRA training", curves()...); err != nil {
		t.Fatal(err)
	}
	if err := Bars(filepath.Join(dir, "bars.png"), "base vs fine-tuned", []string{"tool call", "valid call", "exact args", "uses result"},
		BarGroup{Name: "base", Values: []float64{0.1, 0.05, 0, 0}},
		BarGroup{Name: "fine-tuned", Values: []float64{0.95, 0.9, 0.7, math.NaN()}}); err != nil {
		t.Fatal(err)
	}
}
