package gpu

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/mlbuild/mlbuild/gpu/cuda"
	"github.com/mlbuild/mlbuild/ml/tensor"
)

func noDriver(t *testing.T) {
	t.Helper()
	if _, err := cuda.Load(); err == nil || !errors.Is(err, cuda.ErrNoDriver) {
		t.Skip("a CUDA driver loads here; gpu/check.sh tests the real device")
	}
}

// TestOpenDeviceWithoutDriver is the seam on a machine without an NVIDIA
// driver: "auto" picks the CPU and says why in one line, "cuda" and
// "cuda:N" fail with that reason.
func TestOpenDeviceWithoutDriver(t *testing.T) {
	noDriver(t)
	const reason = "cuda: libcuda.so.1 not found: no NVIDIA driver on this machine"
	be, dev, err := tensor.OpenDevice("auto", tensor.DeviceOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if be.Name() != "cpu" || dev.Name != "cpu" || dev.Fallback != reason {
		t.Errorf("auto: backend %s, device %+v; want the CPU with fallback %q", be.Name(), dev, reason)
	}
	for _, name := range []string{"cuda", "cuda:1", "CUDA:0"} {
		_, _, err := tensor.OpenDevice(name, tensor.DeviceOptions{})
		if err == nil || !errors.Is(err, cuda.ErrNoDriver) || !strings.HasSuffix(err.Error(), reason) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %v, want one line ending %q", name, err, reason)
		}
	}
	_, dev, err = tensor.OpenDevice("cpu", tensor.DeviceOptions{Threads: 3})
	if err != nil || dev.Name != "cpu" || dev.Fallback != "" || dev.Description != "3 threads" {
		t.Errorf("cpu: %+v, %v", dev, err)
	}
}

// fakeDriver describes devices without a GPU. It stands in only for
// Probe's bookkeeping (the device count and the description); it proves
// nothing about the real driver calls.
type fakeDriver struct{ n int }

func (f fakeDriver) Name() string              { return "fake" }
func (f fakeDriver) DeviceCount() (int, error) { return f.n, nil }
func (f fakeDriver) Device(i int) (cuda.DeviceInfo, error) {
	return cuda.DeviceInfo{Ordinal: i, Name: "Test GPU", TotalMem: 24 << 30, Major: 8, Minor: 9}, nil
}
func (f fakeDriver) NewContext(int) (cuda.Context, error) { return nil, errors.New("fake") }

// TestOpenPresentDevice: "auto" declines a present device until the
// backend is verified on a GPU; by name it is opened (here the fake
// driver's context fails, and the error says where).
func TestOpenPresentDevice(t *testing.T) {
	a := accelerator{load: func() (cuda.Driver, error) { return fakeDriver{n: 1}, nil }}
	_, desc, err := a.Open(0, tensor.DeviceOptions{Auto: true})
	if !errors.Is(err, ErrUnverified) || desc != "cuda:0 Test GPU (sm_89, 24.0 GiB)" {
		t.Errorf("Open(0) for auto = %q, %v", desc, err)
	}
	_, _, err = a.Open(0, tensor.DeviceOptions{})
	if err == nil || err.Error() != "cuda:0 Test GPU (sm_89, 24.0 GiB): fake" {
		t.Errorf("Open(0) = %v", err)
	}
	_, _, err = a.Open(2, tensor.DeviceOptions{})
	if err == nil || err.Error() != "cuda: no device cuda:2: fake sees 1 CUDA device(s)" {
		t.Errorf("Open(2): %v", err)
	}
}

// TestOpenDeviceOnGPU runs where a driver loads (gpu/check.sh): the
// probe describes cuda:0, "cuda" opens the CUDA backend, and until the
// backend is marked verified "auto" computes on the CPU, saying why.
func TestOpenDeviceOnGPU(t *testing.T) {
	if _, err := cuda.Load(); err != nil {
		if os.Getenv("MLBUILD_REQUIRE_GPU") == "1" {
			t.Fatalf("MLBUILD_REQUIRE_GPU=1 but the driver does not load: %v", err)
		}
		t.Skipf("no CUDA driver: %v", err)
	}
	info, err := Probe(loadDriver, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("probe: %s", info)
	be, dev, err := tensor.OpenDevice("cuda", tensor.DeviceOptions{})
	if err != nil || be.Name() != "cuda" || dev.Name != "cuda:0" {
		t.Fatalf("cuda: %v %+v %v", be, dev, err)
	}
	be, dev, err = tensor.OpenDevice("auto", tensor.DeviceOptions{})
	if err != nil || be.Name() != "cpu" || !strings.Contains(dev.Fallback, info.Name) || !strings.Contains(dev.Fallback, ErrUnverified.Error()) {
		t.Errorf("auto: %v %+v %v", be, dev, err)
	}
}
