package device

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	_ "github.com/mlbuild/mlbuild/gpu" // the cuda device, as the mlbuild binary links it
	"github.com/mlbuild/mlbuild/gpu/cuda"
	"github.com/mlbuild/mlbuild/steps"
)

func TestOpenWithoutDriver(t *testing.T) {
	if _, err := cuda.Load(); !errors.Is(err, cuda.ErrNoDriver) {
		t.Skip("a CUDA driver loads here; gpu/check.sh tests the real device")
	}
	var log bytes.Buffer
	var reported []string
	inv := &steps.Invocation{Step: "qlora_train.x", Log: slog.New(slog.NewTextHandler(&log, nil)), Device: func(n string) { reported = append(reported, n) }}
	be, err := Open(inv, "auto", 1)
	if err != nil || be.Name() != "cpu" {
		t.Fatalf("auto: %v, %v", be, err)
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "level=INFO") || !strings.Contains(lines[0], "computing on the CPU") ||
		!strings.Contains(lines[0], "libcuda.so.1 not found: no NVIDIA driver on this machine") {
		t.Errorf("auto logged %q; want one info line with the reason", log.String())
	}
	log.Reset()
	if _, err := Open(inv, "cpu", 1); err != nil || log.Len() != 0 {
		t.Errorf("cpu: %v, logged %q", err, log.String())
	}
	_, err = Open(inv, "cuda", 1)
	var ae *steps.AttrError
	if !errors.As(err, &ae) || ae.Attr != "device" {
		t.Fatalf("cuda: %v, want an error at the device attribute", err)
	}
	want := `attribute "device": cannot use device cuda:0: cuda: libcuda.so.1 not found: no NVIDIA driver on this machine`
	if err.Error() != want {
		t.Errorf("cuda: %q, want %q", err, want)
	}
	if strings.Join(reported, ",") != "cpu,cpu" {
		t.Errorf("reported devices %v, want cpu twice", reported)
	}
}

func TestValidate(t *testing.T) {
	if err := Validate("cuda:1"); err != nil {
		t.Error(err)
	}
	var ae *steps.AttrError
	if err := Validate("gpu"); !errors.As(err, &ae) || ae.Attr != "device" {
		t.Errorf("gpu: %v", err)
	}
}
