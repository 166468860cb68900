//go:build !linux

package gpu

import (
	"errors"

	"github.com/mlbuild/mlbuild/gpu/cuda"
)

func openBLAS(cuda.Context) (GEMM, error) {
	return nil, errors.New("gpu: cuBLASLt is loaded on Linux only")
}
