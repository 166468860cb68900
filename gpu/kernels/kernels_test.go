package kernels

import (
	"bytes"
	"regexp"
	"testing"
)

// TestExactInstructionsOnly guards what makes the PTX interpreter's
// results a GPU's, bit for bit: the kernels use only instructions whose
// results PTX defines exactly (no .approx, no flushing of subnormals, no
// fused multiply-add the source did not ask for: the sources are compiled
// with -ffp-contract=off and every float add and multiply carries .rn,
// which ptxas does not contract).
func TestExactInstructionsOnly(t *testing.T) {
	mods := Modules()
	if len(mods) < 7 {
		t.Fatalf("%d modules embedded", len(mods))
	}
	plain := regexp.MustCompile(`(?m)^\s+(add|sub|mul)\.f(32|64)\s`)
	atomic := regexp.MustCompile(`(?m)^\s+(@%p\d+\s+)?(atom|red)\.`)
	for _, m := range mods {
		for _, bad := range []string{".approx", ".ftz", ".local"} {
			if bytes.Contains(m.PTX, []byte(bad)) {
				t.Errorf("%s.ptx uses %s", m.Name, bad)
			}
		}
		if loc := atomic.Find(m.PTX); loc != nil {
			t.Errorf("%s.ptx uses an atomic (order-dependent sums): %q", m.Name, loc)
		}
		if loc := plain.Find(m.PTX); loc != nil {
			t.Errorf("%s.ptx has a float add or multiply without .rn (ptxas may contract it): %q", m.Name, loc)
		}
		if !bytes.Contains(m.PTX, []byte(".version 7.0\n.target sm_80\n")) {
			t.Errorf("%s.ptx is not PTX ISA 7.0 for sm_80", m.Name)
		}
	}
}
