#!/bin/sh
# Times one decoder training step (forward + backward) of captionctl
# against PyTorch, side by side in one run: the same configuration, batch
# and caption lengths, the same number of threads (GOMAXPROCS for Go,
# torch.set_num_threads for PyTorch), alternating between contenders for
# ROUNDS rounds so that load from other processes hits them alike; reports
# each contender's best round in captions/s.
#
# Contenders, for CONFIGS (small big):
#   go-default   default build (pure Go, no cgo; AVX-512 kernels when the
#                CPU has them)
#   go-openblas  -tags openblas build
#   go-purego    -tags purego build (gonum, no assembly)
#   pytorch      tools/bench_decoder.py: the tutorial decoder at its best
#                (W_a·a cached, shrinking batch), OpenMP OpenBLAS
#
# Usage: tools/bench_decoder.sh
# Environment: CONFIGS ("small big"), THREADS (2), ROUNDS (3), ITERS (5),
#   PUREGO (1; 0 skips the purego build).
set -eu
CONFIGS=${CONFIGS:-small big}
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
if [ -n "$omp" ]; then
	pylib=$(dirname "$omp")
else
	echo "libopenblas0-openmp is not installed: PyTorch's Linear layers will be far slower than at its best" >&2
fi

: >"$tmp/results"
for round in $(seq "$ROUNDS"); do
	for cfg in $CONFIGS; do
		echo "round $round/$ROUNDS: $cfg, $THREADS threads" >&2
		for b in $builds; do
			out=$(cd "$root/model" && GOMAXPROCS=$THREADS "$tmp/$b.test" -test.run '^$' \
				-test.bench "^BenchmarkDecoderTrainStep\$/^$cfg\$" -test.benchtime "${ITERS}x" 2>&1) || {
				echo "$out" >&2
				exit 1
			}
			echo "$out" | awk -v name="go-$b-$cfg" '/captions\/s/ { for (i = 1; i < NF; i++) if ($(i+1) == "captions/s") print name, $i }' |
				tee -a "$tmp/results" >&2
		done
		LD_LIBRARY_PATH="$pylib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" /usr/bin/python3 tools/bench_decoder.py \
			--config "$cfg" --threads "$THREADS" --iters "$ITERS" | tee -a "$tmp/results" >&2
	done
done

echo
echo "decoder training step, batch 32, ≤ 16 steps, ${THREADS} threads, $(uname -m), best of $ROUNDS rounds × $ITERS steps:"
awk '
	{ if (!($1 in best) || $2 > best[$1]) best[$1] = $2; if (!($1 in seen)) { seen[$1] = 1; order[n++] = $1 } }
	END {
		printf "%-24s %12s %12s\n", "contender", "captions/s", "vs pytorch"
		for (i = 0; i < n; i++) {
			k = order[i]; cfg = k; sub(/.*-/, "", cfg)
			ref = best["pytorch-" cfg]
			printf "%-24s %12.2f %11.2fx\n", k, best[k], ref ? best[k] / ref : 0
		}
	}' "$tmp/results"
