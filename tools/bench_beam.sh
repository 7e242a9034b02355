#!/bin/sh
# Times captionctl's beam search against PyTorch's (tools/bench_beam.py),
# side by side in one run: the issue's "big" decoder with random weights,
# beam 3, 20 words, the same number of threads, alternating between
# contenders for ROUNDS rounds; reports each contender's best round.
#
#   one     decode only, one image per search (ms/image)
#   batch   decode only, IMAGES images in batches of 32 (ms/image) —
#           captionctl batches beams and images in one step; the tutorial
#           search (PyTorch) captions one image at a time, so its "batch"
#           figure is its "one"
#   file    image file → features (random ResNet-101, 14×14) → beam
#
# Usage: tools/bench_beam.sh
# Environment: THREADS (2), ROUNDS (3), ITERS (5), IMAGES (256),
#   IMAGE (a photo from ../shared/data/photos), TAGS ("" and openblas).
set -eu
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
ITERS=${ITERS:-5}
IMAGES=${IMAGES:-256}
root=$(cd "$(dirname "$0")/.." && pwd)
IMAGE=${IMAGE:-$root/../shared/data/photos/coral-test-data/grace_hopper.png}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

cd "$root"
echo "building test binaries…" >&2
go test -c -o "$tmp/default.test" ./infer
builds="default"
if go test -c -tags openblas -o "$tmp/openblas.test" ./infer 2>"$tmp/openblas.err"; then
	builds="$builds openblas"
else
	echo "no -tags openblas build (is libopenblas-dev installed?)" >&2
fi
pylib=""
omp=$(dpkg -L libopenblas0-openmp 2>/dev/null | grep '/libblas.so.3$' | head -1 || true)
[ -n "$omp" ] && pylib=$(dirname "$omp")

: >"$tmp/results"
for round in $(seq "$ROUNDS"); do
	echo "round $round/$ROUNDS" >&2
	for b in $builds; do
		out=$(cd "$root/infer" && GOMAXPROCS=$THREADS CAPTIONCTL_BENCH_IMAGES=$IMAGES CAPTIONCTL_BENCH_IMAGE=$IMAGE \
			"$tmp/$b.test" -test.run '^$' -test.bench 'BenchmarkCaption(Features|Image)$' -test.benchtime "${ITERS}x" 2>&1) || {
			echo "$out" >&2
			exit 1
		}
		echo "$out" | awk -v b="$b" '
			/ms\/image/ {
				for (i = 1; i < NF; i++) if ($(i+1) == "ms/image") v = $i
				name = $1; sub(/-[0-9]+$/, "", name); sub(/^BenchmarkCaption/, "", name)
				if (name == "Features/one") k = "one"; else if (name == "Features/batch") k = "batch"; else k = "file"
				print "go-" b "-" k, v
			}' | tee -a "$tmp/results" >&2
	done
	LD_LIBRARY_PATH="$pylib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" /usr/bin/python3 tools/bench_beam.py \
		--threads "$THREADS" --iters "$ITERS" --image "$IMAGE" | sed 's/^pytorch-beam-/pytorch-/' | tee -a "$tmp/results" >&2
done

echo
echo "beam 3, 20 words, big decoder, ${THREADS} threads, best of $ROUNDS rounds (ms/image; speed-up = PyTorch's time / ours):"
awk '
	{ if (!($1 in best) || $2 < best[$1]) best[$1] = $2; if (!($1 in seen)) { seen[$1] = 1; order[n++] = $1 } }
	END {
		printf "%-22s %10s %12s\n", "contender", "ms/image", "speed-up"
		for (i = 0; i < n; i++) {
			k = order[i]; kind = k; sub(/.*-/, "", kind)
			ref = best["pytorch-" (kind == "batch" ? "one" : kind)]
			printf "%-22s %10.2f %11.2fx\n", k, best[k], ref ? ref / best[k] : 0
		}
	}' "$tmp/results"
