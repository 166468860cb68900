package tensor

import "testing"

// BenchmarkDropout measures Dropout on one worker (a LoRA input of 1024
// tokens × 1376).
func BenchmarkDropout(b *testing.B) {
	be := NewCPU(1)
	const n = 1024 * 1376
	x := be.FromFloat32(randVec(newRand(5), n), n)
	dst := be.Zeros(F32, n)
	for b.Loop() {
		be.Dropout(dst, x, 0.05, 7)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/element")
}
