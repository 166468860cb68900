#!/bin/sh
# gpu/kernels/check.sh (make kernels-check): the committed PTX is what
# the CUDA sources give, and NVIDIA's assembler accepts it.
#
# 1. Every gpu/kernels/*.cu is compiled again with $CLANG_CUDA and
#    $KERNEL_FLAGS (the Makefile's) into a temporary folder and compared
#    byte for byte with the committed .ptx; a difference fails, naming the
#    file and the compiler's version. Without the compiler the check is
#    skipped, saying so.
# 2. Each .ptx is assembled by ptxas for sm_80 and sm_90 (the first of
#    $PTXAS, `ptxas` on PATH, and the nvidia-cuda-nvcc-cu12 wheel in
#    $MLBUILD_PYTHON's environment); without one this step is skipped,
#    saying so.
# With CI=true a missing compiler or assembler fails the check instead.
set -eu
dir=$(cd "$(dirname "$0")" && pwd)
status=0
if command -v "$CLANG_CUDA" >/dev/null 2>&1; then
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	for src in "$dir"/*.cu; do
		name=$(basename "$src" .cu)
		# shellcheck disable=SC2086 # KERNEL_FLAGS is a list of flags
		"$CLANG_CUDA" $KERNEL_FLAGS -o "$tmp/$name.ptx" "$src"
		if ! cmp -s "$tmp/$name.ptx" "$dir/$name.ptx"; then
			echo "kernels-check: gpu/kernels/$name.ptx differs from what $("$CLANG_CUDA" --version | head -1) makes of $name.cu: run make kernels and commit the PTX" >&2
			diff "$dir/$name.ptx" "$tmp/$name.ptx" | head -20 >&2 || true
			status=1
		fi
	done
	for ptx in "$dir"/*.ptx; do
		[ -f "${ptx%.ptx}.cu" ] || { echo "kernels-check: $(basename "$ptx") has no source" >&2; status=1; }
	done
	[ $status = 0 ] && echo "kernels-check: the PTX of $(ls "$dir"/*.cu | wc -l) sources is reproducible ($("$CLANG_CUDA" --version | head -1))"
else
	echo "kernels-check: $CLANG_CUDA not found, PTX reproducibility not checked (Debian: apt-get install clang-19)" >&2
	[ "${CI:-}" = true ] && status=1
fi
ptxas=${PTXAS:-}
[ -n "$ptxas" ] || ptxas=$(command -v ptxas 2>/dev/null || true)
if [ -z "$ptxas" ] && [ -n "${MLBUILD_PYTHON:-}" ]; then
	p=$("$MLBUILD_PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null)/nvidia/cuda_nvcc/bin/ptxas
	[ -x "$p" ] && ptxas=$p
fi
if [ -n "$ptxas" ]; then
	for ptx in "$dir"/*.ptx; do
		for arch in sm_80 sm_90; do
			"$ptxas" -arch=$arch "$ptx" -o /dev/null || { echo "kernels-check: ptxas -arch=$arch rejects gpu/kernels/$(basename "$ptx")" >&2; status=1; }
		done
	done
	[ $status = 0 ] && echo "kernels-check: ptxas ($("$ptxas" --version | tail -1)) assembles every kernel for sm_80 and sm_90"
else
	echo "kernels-check: no ptxas (PTXAS, PATH or the pinned Python environment), PTX not assembled" >&2
	[ "${CI:-}" = true ] && status=1
fi
exit $status
