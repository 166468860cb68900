package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mlbuild/mlbuild/gpu/cuda"
)

// TestGenerateDevice: --device cpu and auto generate the same text on a
// machine without a driver; an explicit auto says in one line that it
// computes on the CPU and why; cuda fails with that reason.
func TestGenerateDevice(t *testing.T) {
	if _, err := cuda.Load(); !errors.Is(err, cuda.ErrNoDriver) {
		t.Skip("a CUDA driver loads here; gpu/check.sh tests the real device")
	}
	dir := writeTinyModel(t, "")
	run := func(args ...string) (string, string, error) {
		var out, errb bytes.Buffer
		err := cmdGenerate(context.Background(), append([]string{"--model", dir, "--max-tokens", "8"}, args...), &out, &errb)
		return out.String(), errb.String(), err
	}
	cpu, stderr, err := run("--device", "cpu", "hello")
	if err != nil || stderr != "" {
		t.Fatalf("cpu: %v %q", err, stderr)
	}
	def, stderr, err := run("hello")
	if err != nil || def != cpu || stderr != "" {
		t.Errorf("default: %q (stderr %q, %v), want %q silently", def, stderr, err, cpu)
	}
	auto, stderr, err := run("--device", "auto", "hello")
	const reason = "cuda: libcuda.so.1 not found: no NVIDIA driver on this machine"
	if err != nil || auto != cpu || stderr != "mlbuild generate: device auto: computing on the CPU ("+reason+")\n" {
		t.Errorf("auto: %q, stderr %q, %v", auto, stderr, err)
	}
	if _, _, err := run("--device", "cuda", "hello"); err == nil || err.Error() != "--device: cannot use device cuda:0: "+reason {
		t.Errorf("cuda: %v", err)
	}
	if _, _, err := run("--device", "gpu", "hello"); err == nil || !strings.Contains(err.Error(), `unknown device "gpu"`) {
		t.Errorf("gpu: %v", err)
	}
}
