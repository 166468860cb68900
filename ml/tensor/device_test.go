package tensor

import (
	"errors"
	"testing"
)

func TestParseDevice(t *testing.T) {
	for in, want := range map[string]string{"": "auto", "auto": "auto", " CPU ": "cpu", "cuda": "cuda:0", "cuda:0": "cuda:0", "cuda:3": "cuda:3"} {
		s, err := ParseDevice(in)
		if err != nil || s.String() != want {
			t.Errorf("ParseDevice(%q) = %v, %v; want %s", in, s, err, want)
		}
	}
	for _, in := range []string{"gpu", "cuda:", "cuda:-1", "cuda:01", "cuda:x", "cpu:0", "cuda:99999"} {
		if _, err := ParseDevice(in); err == nil {
			t.Errorf("ParseDevice(%q) accepted", in)
		}
	}
}

// TestOpenDeviceWithoutAccelerator: this test binary does not link
// package gpu in, so no CUDA backend is registered.
func TestOpenDeviceWithoutAccelerator(t *testing.T) {
	be, dev, err := OpenDevice("auto", DeviceOptions{Threads: 2})
	if err != nil || be.Name() != "cpu" || dev.Name != "cpu" || dev.Fallback != ErrNoAccelerator.Error() {
		t.Errorf("auto: %v %+v %v", be, dev, err)
	}
	if c, ok := be.(*CPU); !ok || c.Workers() != 2 {
		t.Errorf("auto: backend %T, want a 2-thread CPU", be)
	}
	_, _, err = OpenDevice("cuda:1", DeviceOptions{})
	if !errors.Is(err, ErrNoAccelerator) || err.Error() != "cannot use device cuda:1: "+ErrNoAccelerator.Error() {
		t.Errorf("cuda:1: %v", err)
	}
	if _, _, err := OpenDevice("tpu", DeviceOptions{}); err == nil {
		t.Error("tpu accepted")
	}
}
