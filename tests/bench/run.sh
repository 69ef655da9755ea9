#!/usr/bin/env bash
# Runs every benchmark (Release build in build/bench) and writes a summary:
# build/bench/summary.md (a Markdown table) and build/bench/summary.json.
#
#   tests/bench/run.sh [--benchmark_min_time=SECONDS]   (default 1)
#
# Needs libbenchmark-dev and python3. The figures depend on the machine: the
# summary names the one it ran on.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dir="$repo_root/build/bench"
min_time="${1:---benchmark_min_time=1}"

cmake -S "$repo_root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DAWAIT_TREE_BUILD_BENCHMARKS=ON -DAWAIT_TREE_BUILD_TESTS=OFF -DAWAIT_TREE_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$dir" -j 2 >/dev/null

for bench in "$dir"/tests/bench/bench_*; do
  [[ -x "$bench" && ! -d "$bench" ]] || continue
  "$bench" "$min_time" --benchmark_format=console \
    --benchmark_out="$dir/$(basename "$bench").json" --benchmark_out_format=json
done

python3 "$repo_root/tests/bench/summarize.py" "$dir" "$dir"/bench_*.json
echo "summary: $dir/summary.md, $dir/summary.json"
