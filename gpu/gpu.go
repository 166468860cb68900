// Package gpu is mlbuild's CUDA backend behind tensor.Backend. Importing
// it (for its side effect) registers the "cuda" device with
// tensor.OpenDevice:
//
//	import _ "github.com/mlbuild/mlbuild/gpu"
//
//	be, dev, err := tensor.OpenDevice("auto", tensor.DeviceOptions{})
//
// What exists today is the device probe: opening cuda:N loads the driver
// through package gpu/cuda (no cgo), checks that device N exists and
// describes it. The backend's kernels are not written yet (issue 17, part
// 3), so opening a device that is present still fails, saying so, and
// "auto" uses the CPU. docs/gpu.md tracks what exists.
package gpu

import (
	"errors"
	"fmt"

	"github.com/mlbuild/mlbuild/gpu/cuda"
	"github.com/mlbuild/mlbuild/ml/tensor"
)

func init() { tensor.RegisterAccelerator(tensor.DeviceCUDA, accelerator{load: loadDriver}) }

// ErrNoKernels is matched by the error of opening a CUDA device that is
// present: the backend's kernels do not exist yet.
var ErrNoKernels = errors.New("mlbuild's CUDA kernels are not written yet (issue 17, part 3), so only the CPU backend runs")

func loadDriver() (cuda.Driver, error) {
	l, err := cuda.Load()
	if err != nil {
		return nil, err
	}
	return l, nil
}

// accelerator implements tensor.Accelerator over a driver.
type accelerator struct {
	load func() (cuda.Driver, error)
}

// Open implements tensor.Accelerator.
func (a accelerator) Open(ordinal int, _ tensor.DeviceOptions) (tensor.Backend, string, error) {
	info, err := Probe(a.load, ordinal)
	if err != nil {
		return nil, "", err
	}
	return nil, info.String(), fmt.Errorf("found %s, but %w", info, ErrNoKernels)
}

// Probe loads a driver and describes device ordinal, or says in one line
// why there is none.
func Probe(load func() (cuda.Driver, error), ordinal int) (cuda.DeviceInfo, error) {
	drv, err := load()
	if err != nil {
		return cuda.DeviceInfo{}, err
	}
	n, err := drv.DeviceCount()
	if err != nil {
		return cuda.DeviceInfo{}, err
	}
	if ordinal >= n {
		return cuda.DeviceInfo{}, fmt.Errorf("cuda: no device cuda:%d: %s sees %d CUDA device(s)", ordinal, drv.Name(), n)
	}
	return drv.Device(ordinal)
}
