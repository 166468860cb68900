// embedding.cu: the embedding gather and its backward. The backward has
// one thread per column that adds the rows in order, so repeated ids need
// no atomics and the sums do not depend on scheduling.
#include "common.cuh"

// embedding: dst[r, j] = table[ids[r], j] widened from storage type tt.
KERNEL embedding(float* dst, const void* table, i32 tt, const i32* ids, i32 n, i32 d) {
	i64 total = (i64)n * d;
	for (i64 t = gindex(); t < total; t += gstride()) {
		i64 r = t / d, j = t - r * d;
		dst[t] = load(table, tt, (i64)ids[r] * d + j);
	}
}

// embedding_backward_f32: dtable[ids[r], j] += dy[r, j] for r in order.
KERNEL embedding_backward_f32(float* dtable, const float* dy, const i32* ids, i32 n, i32 d) {
	for (i64 j = gindex(); j < d; j += gstride()) {
		for (i64 r = 0; r < n; r++) {
			i64 at = (i64)ids[r] * d + j;
			dtable[at] = dtable[at] + dy[r * d + j];
		}
	}
}
