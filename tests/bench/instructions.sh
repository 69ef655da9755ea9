#!/usr/bin/env bash
# Counts the instructions one operation costs, plain and instrumented, with
# valgrind's callgrind: deterministic for one binary, whatever else the machine
# is doing, so the figures can be compared between runs and machines of one
# compiler. Each workload of tests/bench/instructions.cpp (and
# instructions_names.cpp) runs for N and 2N operations; Ir per operation is
# (Ir(2N) - Ir(N)) / N.
#
#   tests/bench/instructions.sh [--check] [N]     (N defaults to 2000)
#
# Builds build/instructions (GCC, Release; under AWAIT_TREE_BUILD_ROOT when
# set). Prints a Markdown table of instructions per operation, the budget of
# each row (the context-core and registration issues'; for the ways of naming
# a node, a guard just above their cost when they were added) and its
# ceiling. A ceiling is the budget once the code meets it; until then it is
# the count the code reached plus a margin (about 10%: glibc picks its
# memcpy and strlen by CPU, so another machine counts a little differently),
# lowered as the code gets cheaper. With --check (CI's `instructions` step),
# exits 1 when a row is over its ceiling: a regression, not the budget.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dir="${AWAIT_TREE_BUILD_ROOT:-$repo_root/build}/instructions"
check=0
if [[ "${1:-}" == "--check" ]]; then
  check=1
  shift
fi
n="${1:-2000}"

if ! command -v valgrind >/dev/null; then
  echo "instructions: valgrind is not installed (Debian package valgrind)" >&2
  exit 2
fi

cmake -S "$repo_root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=g++ \
  -DAWAIT_TREE_BUILD_BENCHMARKS=ON -DAWAIT_TREE_BUILD_TESTS=OFF \
  -DAWAIT_TREE_BUILD_EXAMPLES=OFF -DAWAIT_TREE_ASIO=OFF >/dev/null
cmake --build "$dir" --target instructions instructions_names >/dev/null

# Total instructions of one run of `program`, as callgrind counts them.
# Without glibc's fast bins: their consolidation runs once, at a point that
# depends on the heap's whole history, so it fell in the N run or the 2N run
# by chance and moved the spawn row by 80 instructions either way between
# builds that did not touch its path. Plain and instrumented alike pay
# the tcache's and the small bins' costs instead.
instructions_of() {
  GLIBC_TUNABLES=glibc.malloc.mxfast=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null "$dir/tests/bench/$program" "$@" \
    2>&1 >/dev/null |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

# Instructions per operation of one workload variant.
per_operation() {
  local once twice
  once="$(instructions_of "$1" "$2" "$n")"
  twice="$(instructions_of "$1" "$2" "$((2 * n))")"
  echo "$(((twice - once) / n))"
}

# [program:]workload | what it measures | budget | ceiling, of the extra
# instructions per operation. The program is `instructions` unless named; in
# `instructions_names` "plain" is a literal name (or no whole-coroutine span).
rows=(
  "child_in_task|instrumented await of a child that completes at once, in a task|180|580"
  "join_of_yields|join(fut1: yield; fut2: yield, yield), 3 instrumented, per join|700|2850"
  "outside_task_fresh|instrumented await outside any task, fresh thread|25|200"
  "outside_task_after_tasks|the same on a thread that earlier ran registered tasks|25|200"
  "plain_await_with_mixin|plain await of a child that completes at once, integrated task type|60|325"
  "register_and_drop|register and drop a root, integer key, literal span (registration issue)|300|300"
  "register_and_drop_text|the same with a string-literal key (registration issue)|300|300"
  "spawn_registered|spawn a task that yields once, registered (plain: unregistered), per task (registration issue)|700|700"
  "waits_for_resource|instrumented await in a task whose span waits_for a resource (plain: the same await without)|10|10"
  "instructions_names:call_site_name|instrument(child) instead of instrument(child, \"child\"), in a task|60|85"
  "instructions_names:formatted_name|instrument(child, \"child {}\", i) instead of a literal, in a task|550|550"
  "instructions_names:coroutine_span_call|a child that opens a coroutine_span(), per call, in a task|500|500"
)

regressed=0
echo "| operation | plain Ir | instrumented Ir | extra Ir | budget | ceiling |"
echo "|---|---|---|---|---|---|"
for row in "${rows[@]}"; do
  IFS='|' read -r workload what budget ceiling <<<"$row"
  program=instructions
  if [[ "$workload" == *:* ]]; then
    program="${workload%%:*}"
    workload="${workload#*:}"
  fi
  plain="$(per_operation "$workload" plain)"
  instrumented="$(per_operation "$workload" instrumented)"
  extra=$((instrumented - plain))
  budget_verdict="<= $budget"
  ((extra <= budget)) || budget_verdict+=" (over)"
  ceiling_verdict="<= $ceiling"
  if ((extra > ceiling)); then
    ceiling_verdict+=" (REGRESSED)"
    regressed=1
  fi
  echo "| $what | $plain | $instrumented | +$extra | $budget_verdict | $ceiling_verdict |"
done

if ((check && regressed)); then
  echo "instructions: some operation costs more than its ceiling" >&2
  exit 1
fi
