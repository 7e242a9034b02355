#!/bin/sh
# Times captionctl's frozen ResNet encoder against torchvision's, side by
# side in one run: the same architecture, batch and image size, the same
# number of threads (GOMAXPROCS for Go, torch.set_num_threads for PyTorch),
# alternating between contenders for ROUNDS rounds so that load from other
# processes hits them alike; reports each contender's best round.
#
# Contenders:
#   go-default            default build (pure Go, no cgo; the AVX-512
#                         assembly kernel on CPUs that have it)
#   go-openblas           -tags openblas build as it selects its engine
#   go-openblas-forced    -tags openblas build with every product on
#                         OpenBLAS's cblas_sgemm
#   go-purego             -tags purego build (no assembly of ours: gonum)
#   pytorch-eager         torchvision model, eval(), no_grad, NCHW
#   pytorch-channels_last the same in channels_last memory format
#   pytorch-jit           torch.jit.optimize_for_inference (PyTorch's best)
#
# Usage: tools/bench_encoder.sh       (from the repository root or anywhere)
# Environment: ARCH (resnet50), BATCH (8), THREADS (2), ROUNDS (3),
#   ITERS (5 timed batches per round), PUREGO (1; 0 skips the slow build).
# PyTorch runs with the OpenMP OpenBLAS as libblas.so.3 when Debian's
# libopenblas0-openmp is installed (see ../shared/GORGONIA.md); its
# convolutions use oneDNN either way.
set -eu
ARCH=${ARCH:-resnet50}
BATCH=${BATCH:-8}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
ITERS=${ITERS:-5}
PUREGO=${PUREGO:-1}
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

cd "$root"
echo "building test binaries…" >&2
go test -c -o "$tmp/default.test" ./model
builds="default"
if go test -c -tags openblas -o "$tmp/openblas.test" ./model 2>"$tmp/openblas.err"; then
	builds="$builds openblas"
else
	echo "no -tags openblas build (is libopenblas-dev installed?): $(head -c 300 "$tmp/openblas.err")" >&2
fi
if [ "$PUREGO" = 1 ]; then
	go test -c -tags purego -o "$tmp/purego.test" ./model
	builds="$builds purego"
fi
pylib=""
omp=$(dpkg -L libopenblas0-openmp 2>/dev/null | grep '/libblas.so.3$' | head -1 || true)
[ -n "$omp" ] && pylib=$(dirname "$omp")

# go_bench BINARY BENCH-PATTERN NAME: one line "NAME images/s".
go_bench() {
	out=$(cd "$root/model" && GOMAXPROCS=$THREADS "$1" -test.run '^$' -test.bench "$2" -test.benchtime "${ITERS}x" 2>&1) || {
		echo "$out" >&2
		return 1
	}
	echo "$out" | awk -v name="$3" '/images\/s/ { for (i = 1; i < NF; i++) if ($(i+1) == "images/s") print name, $i }'
}

bench="^BenchmarkEncoder\$/^arch=$ARCH\$/^batch=$BATCH\$"
forced="^BenchmarkEncoderEngines\$/^arch=$ARCH\$/^batch=$BATCH\$/^gemm=openblas\$"
: >"$tmp/results"
for round in $(seq "$ROUNDS"); do
	echo "round $round/$ROUNDS: $ARCH, batch $BATCH, $THREADS threads" >&2
	for b in $builds; do
		go_bench "$tmp/$b.test" "$bench" "go-$b" | tee -a "$tmp/results" >&2
		if [ "$b" = openblas ]; then
			go_bench "$tmp/$b.test" "$forced" "go-openblas-forced" | tee -a "$tmp/results" >&2
		fi
	done
	LD_LIBRARY_PATH="$pylib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" /usr/bin/python3 tools/bench_encoder.py \
		--arch "$ARCH" --batch "$BATCH" --threads "$THREADS" --iters "$ITERS" | tee -a "$tmp/results" >&2
done

echo
echo "$ARCH, batch $BATCH, ${THREADS} threads, $(uname -m), best of $ROUNDS rounds × $ITERS batches (images/s):"
awk '
	{ if (!($1 in best) || $2 > best[$1]) best[$1] = $2; if (!($1 in seen)) { seen[$1] = 1; order[n++] = $1 } }
	END {
		ref = best["pytorch-jit"]; eager = best["pytorch-eager"]
		printf "%-24s %8s %12s %14s\n", "contender", "img/s", "vs pt-jit", "vs pt-eager"
		for (i = 0; i < n; i++) {
			k = order[i]
			printf "%-24s %8.2f %11.2fx %13.2fx\n", k, best[k], ref ? best[k] / ref : 0, eager ? best[k] / eager : 0
		}
	}' "$tmp/results"
