// Package gpu is mlbuild's CUDA backend behind tensor.Backend. Importing
// it (for its side effect) registers the "cuda" device with
// tensor.OpenDevice:
//
//	import _ "github.com/mlbuild/mlbuild/gpu"
//
//	be, dev, err := tensor.OpenDevice("cuda", tensor.DeviceOptions{})
//
// The backend (Backend) keeps tensors in device memory and runs every
// operation as launches of the CUDA kernels embedded from gpu/kernels, its
// matrix products through cuBLASLt. It is written against the driver
// interface of package gpu/cuda, so the same backend runs on the PTX
// interpreter of package gpu/ptx, with the CPU's GEMM (HostGEMM), which is
// how CI checks every kernel against the conformance suite without a GPU.
//
// Opening cuda:N loads the driver (no cgo), checks that device N exists,
// creates a context, loads cuBLASLt and the kernels. Until gpu/check.sh
// has passed on a real GPU, "auto" does not pick the backend (it computes
// on the CPU and says why); an explicit "cuda" does. docs/gpu.md tracks
// what has been verified where.
package gpu

import (
	"errors"
	"fmt"

	"github.com/mlbuild/mlbuild/gpu/cuda"
	"github.com/mlbuild/mlbuild/ml/tensor"
)

func init() { tensor.RegisterAccelerator(tensor.DeviceCUDA, accelerator{load: loadDriver}) }

// ErrUnverified is matched by the reason "auto" gives for computing on
// the CPU where a CUDA device is present: the backend has passed its
// conformance suite on the PTX interpreter but has not yet run on a real
// GPU (gpu/check.sh). device = "cuda" uses it anyway.
var ErrUnverified = errors.New(`mlbuild's CUDA backend has not yet been verified on a GPU (gpu/check.sh), so "auto" computes on the CPU; device = "cuda" uses the GPU`)

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
	// gemm makes the matrix products' implementation for a context
	// (nil: cuBLASLt).
	gemm func(cuda.Context) (GEMM, error)
	// verified says that "auto" may pick the backend.
	verified bool
}

// Open implements tensor.Accelerator.
func (a accelerator) Open(ordinal int, opts tensor.DeviceOptions) (tensor.Backend, string, error) {
	drv, info, err := probe(a.load, ordinal)
	if err != nil {
		return nil, "", err
	}
	if opts.Auto && !a.verified {
		return nil, info.String(), fmt.Errorf("found %s, but %w", info, ErrUnverified)
	}
	ctx, err := drv.NewContext(ordinal)
	if err != nil {
		return nil, info.String(), fmt.Errorf("%s: %w", info, err)
	}
	gemm := a.gemm
	if gemm == nil {
		gemm = openBLAS
	}
	g, err := gemm(ctx)
	if err == nil {
		var be *Backend
		if be, err = NewBackend(ctx, g); err == nil {
			return be, info.String(), nil
		}
	}
	_ = ctx.Close()
	return nil, info.String(), fmt.Errorf("%s: %w", info, err)
}

// Probe loads a driver and describes device ordinal, or says in one line
// why there is none.
func Probe(load func() (cuda.Driver, error), ordinal int) (cuda.DeviceInfo, error) {
	_, info, err := probe(load, ordinal)
	return info, err
}

func probe(load func() (cuda.Driver, error), ordinal int) (cuda.Driver, cuda.DeviceInfo, error) {
	drv, err := load()
	if err != nil {
		return nil, cuda.DeviceInfo{}, err
	}
	n, err := drv.DeviceCount()
	if err != nil {
		return nil, cuda.DeviceInfo{}, err
	}
	if ordinal >= n {
		return nil, cuda.DeviceInfo{}, fmt.Errorf("cuda: no device cuda:%d: %s sees %d CUDA device(s)", ordinal, drv.Name(), n)
	}
	info, err := drv.Device(ordinal)
	return drv, info, err
}
