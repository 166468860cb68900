package tensortest

import (
	"testing"

	"github.com/mlbuild/mlbuild/ml/tensor"
)

// TestCPU runs the suite against the CPU backend with one worker and with
// several.
func TestCPU(t *testing.T) {
	for _, workers := range []int{1, 3} {
		Conformance(t, tensor.NewCPU(workers))
	}
}
