#!/usr/bin/env bash
# Runs the whole await_tree test suite. This is the one command README.md and
# CI (.ci/run) use.
#
#   tests/run_all.sh                 every step below (the default, same as "all")
#   tests/run_all.sh quick           gcc-plain only, for local iteration
#   tests/run_all.sh STEP...         the named steps, in the given order
#   tests/run_all.sh --list          list the steps
#   tests/run_all.sh --clean ...     delete each configuration's build dir first
#
# Steps:
#   gcc-plain          g++, RelWithDebInfo
#   install            cmake --install of build/gcc-plain into a temporary prefix,
#                      then tests/consumer built against it via find_package()
#   subdir             tests/consumer_subdir: await_tree via add_subdirectory();
#                      checks that the library's tests/examples stay out
#   gcc-asan-ubsan     g++, AddressSanitizer (+LeakSanitizer) + UBSan: the tests
#                      only, without the examples
#   gcc-tsan           g++, ThreadSanitizer: the tests only
#   gcc-glibcxx-debug  g++, Debug, -D_GLIBCXX_DEBUG (checked standard library):
#                      the tests only, without the examples
#   clang-plain        clang++-16, Debug
#   clang-asan-ubsan   clang++-16, AddressSanitizer (+LeakSanitizer) + UBSan
#   clang-tsan         clang++-16, ThreadSanitizer
#   bench-smoke        the benchmarks (tests/bench), Release, each run briefly
#   instructions       tests/bench/instructions.sh --check: instructions per
#                      operation under callgrind (GCC, Release), each row
#                      against its ceiling
#   fuzz               the libFuzzer targets (tests/fuzz/fuzz_*), clang++-16 with
#                      -fsanitize=fuzzer,address,undefined, each run for
#                      AWAIT_TREE_FUZZ_SECONDS on a scratch copy of its seed
#                      corpus tests/fuzz/corpus/<name without fuzz_>/; any crash,
#                      leak or sanitizer report fails the step
#
# Every configuration is built with Ninja and -DAWAIT_TREE_WERROR=ON into its
# own directory build/<step>, then `ctest --output-on-failure` runs the Catch2
# test cases (one CTest test each) and the examples. A failing step does not
# stop the later ones; a summary is printed at the end and the exit status is
# non-zero if any step failed.
#
# Environment:
#   AWAIT_TREE_BUILD_ROOT    where the build dirs go (default: <repo>/build)
#   AWAIT_TREE_JOBS          parallel build/test jobs (default: 2)
#   AWAIT_TREE_TEST_TIMEOUT  per-test ctest timeout in seconds (default: 300)
#   AWAIT_TREE_FUZZ_SECONDS  how long each fuzzer runs (default: 30)
#   AWAIT_TREE_STRESS_SECONDS  how long the stress test runs (default: 1.5)
#   AWAIT_TREE_REQUIRE_LSAN  set to 1 to fail (rather than warn) when
#                            LeakSanitizer cannot run in this environment
#   AWAIT_TREE_TSAN_SETARCH  auto (default): run the TSan configurations under
#                            `setarch -R` only when needed (see probe_tsan);
#                            always / never: force it on / off
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_root="${AWAIT_TREE_BUILD_ROOT:-$repo_root/build}"
jobs="${AWAIT_TREE_JOBS:-2}"
test_timeout="${AWAIT_TREE_TEST_TIMEOUT:-300}"
fuzz_seconds="${AWAIT_TREE_FUZZ_SECONDS:-30}"
require_lsan="${AWAIT_TREE_REQUIRE_LSAN:-0}"
tsan_setarch="${AWAIT_TREE_TSAN_SETARCH:-auto}"

# Line tables only: enough for the file:line of every frame in a sanitizer
# report, and it halves the compile time of the coroutine-heavy tests at -O1
# (full -g spends it on variable locations nobody reads in CI).
readonly debug_info="-g1"
readonly asan_flags="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
readonly tsan_flags="-fsanitize=thread -fno-omit-frame-pointer"

# name | compiler | CMAKE_BUILD_TYPE | extra CMAKE_CXX_FLAGS | sanitizer kind
#   | extra CMake options
# The sanitizer builds use Debug (assertions on) plus -O1 so they run at a
# bearable speed.
# The checked standard library guards the library's own containers, which its
# tests (the Asio ones included) reach: the examples would only build them
# again. The examples run under both sanitizers with clang; GCC's sanitizer
# builds leave them out (about five minutes of build between the two), as
# the tests cover GCC's coroutine code under its sanitizers.
# GCC's instrumentation for ASan/UBSan defeats its -Wmaybe-uninitialized
# analysis (the GCC manual warns that sanitizers can cause false positives):
# with GCC 12 it fires inside libstdc++'s <regex>, pulled in by Catch2's
# main, so with -Werror that one warning is off for that configuration only.
# The -O2 gcc-plain build still has it on.
# The Asio tests run against Boost.Asio too in gcc-plain, gcc-tsan and
# clang-plain: both compilers, and the threads under a sanitizer. Boost's
# flavour changes names, not code paths, so the other builds would test the
# same code again (a minute of build each).
readonly no_boost="-DAWAIT_TREE_BOOST_ASIO=OFF"
readonly no_examples="-DAWAIT_TREE_BUILD_EXAMPLES=OFF"
configs=(
  "gcc-plain|g++|RelWithDebInfo||none"
  "gcc-asan-ubsan|g++|Debug|-O1 $asan_flags -Wno-maybe-uninitialized|asan|$no_examples $no_boost"
  "gcc-tsan|g++|Debug|-O1 $tsan_flags|tsan|$no_examples"
  "gcc-glibcxx-debug|g++|Debug|-D_GLIBCXX_DEBUG|none|$no_examples $no_boost"
  "clang-plain|clang++-16|Debug||none"
  "clang-asan-ubsan|clang++-16|Debug|-O1 $asan_flags|asan|$no_boost"
  "clang-tsan|clang++-16|Debug|-O1 $tsan_flags|tsan|$no_boost"
)
all_steps=(gcc-plain install subdir gcc-asan-ubsan gcc-tsan gcc-glibcxx-debug
  clang-plain clang-asan-ubsan clang-tsan bench-smoke instructions fuzz)

# ---------------------------------------------------------------------------
# Output helpers
# ---------------------------------------------------------------------------
banner() { printf '\n==== %s ====\n' "$*"; }
note() { printf -- '---- %s\n' "$*"; }
err() { printf -- '!!!! %s\n' "$*" >&2; }

usage() { sed -n '2,/^set -euo pipefail$/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }

config_line() {  # name -> the configs entry, or failure
  local entry
  for entry in "${configs[@]}"; do
    if [[ "${entry%%|*}" == "$1" ]]; then
      printf '%s\n' "$entry"
      return 0
    fi
  done
  return 1
}

# ---------------------------------------------------------------------------
# Environment probes (run lazily, once per compiler)
# ---------------------------------------------------------------------------
probe_dir="$build_root/probes"
declare -A lsan_state=()  # compiler -> "ok" | "unavailable"
declare -A lsan_reason=()
declare -A tsan_wrap=()   # compiler -> "" | "setarch"
step_notes=""             # extra text for the current step's summary line

sanitized_name() { printf '%s' "$1" | tr -c 'A-Za-z0-9_-' '_'; }

# LeakSanitizer needs to stop the process's threads from a helper task (it
# uses ptrace-like facilities); some containers/sandboxes forbid that and LSan
# then dies with "LeakSanitizer has encountered a fatal error" on every exit.
# Check that a known leak is actually reported. If LSan cannot run, say so
# loudly and run the ASan configuration with detect_leaks=0 (or fail, with
# AWAIT_TREE_REQUIRE_LSAN=1) instead of silently losing leak checking.
probe_lsan() {
  local cxx="$1" tag out
  [[ -n "${lsan_state[$cxx]:-}" ]] && return 0
  tag="$(sanitized_name "$cxx")"
  mkdir -p "$probe_dir" || return 1
  cat >"$probe_dir/leak.cpp" <<'EOF'
#include <cstdlib>
int main() {
  void* volatile p = std::malloc(64);
  p = nullptr;
  return p == nullptr ? 0 : 2;
}
EOF
  if ! "$cxx" -O0 -g -fsanitize=address "$probe_dir/leak.cpp" -o "$probe_dir/leak-$tag"; then
    err "$cxx cannot build an AddressSanitizer program (is the sanitizer runtime installed?)"
    return 1
  fi
  out="$(ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 "$probe_dir/leak-$tag" 2>&1 || true)"
  if grep -q "detected memory leaks" <<<"$out"; then
    lsan_state[$cxx]=ok
    note "LeakSanitizer works with $cxx"
  else
    lsan_state[$cxx]=unavailable
    lsan_reason[$cxx]="$(grep -m1 -iE 'LeakSanitizer|ptrace|fatal' <<<"$out" || printf 'no leak report')"
    err "************************************************************************"
    err "LeakSanitizer does NOT work in this environment with $cxx."
    err "The probe leak was not reported; its output was:"
    printf '%s\n' "$out" | sed 's/^/!!!!   /' >&2
    err "Typical cause: ptrace is restricted (container seccomp policy,"
    err "kernel.yama.ptrace_scope, or running under a debugger/strace)."
    if [[ "$require_lsan" == 1 ]]; then
      err "AWAIT_TREE_REQUIRE_LSAN=1: failing this configuration."
      err "************************************************************************"
      return 1
    fi
    err "The ASan+UBSan run continues with detect_leaks=0: LEAKS ARE NOT CHECKED."
    err "************************************************************************"
  fi
}

# ThreadSanitizer maps its shadow memory at fixed addresses. With the larger
# ASLR entropy of newer kernels (vm.mmap_rnd_bits > 28 on x86-64) the TSan
# runtime of older toolchains (clang 16, gcc 12) can find the executable or a
# library in its way and dies with "FATAL: ThreadSanitizer: unexpected memory
# mapping". Running the process with address-space randomisation turned off
# (`setarch -R`, from util-linux; children inherit it) avoids that. Check a
# tiny threaded program: if it fails plainly but works under setarch -R, the
# TSan build (whose post-build step runs the test binary to list its tests)
# and its ctest run are wrapped in setarch -R.
probe_tsan() {
  local cxx="$1" tag out
  [[ -n "${tsan_wrap[$cxx]+set}" ]] && return 0
  tag="$(sanitized_name "$cxx")"
  mkdir -p "$probe_dir" || return 1
  cat >"$probe_dir/tsan.cpp" <<'EOF'
#include <atomic>
#include <thread>
int main() {
  std::atomic<int> x{0};
  std::thread t([&] { x.fetch_add(1); });
  x.fetch_add(1);
  t.join();
  return x.load() == 2 ? 0 : 1;
}
EOF
  if ! "$cxx" -std=c++20 -O1 -g -fsanitize=thread "$probe_dir/tsan.cpp" -o "$probe_dir/tsan-$tag"; then
    err "$cxx cannot build a ThreadSanitizer program (is the sanitizer runtime installed?)"
    return 1
  fi
  if [[ "$tsan_setarch" == never ]]; then
    tsan_wrap[$cxx]=""
    note "AWAIT_TREE_TSAN_SETARCH=never: TSan runs with ASLR as configured"
    return 0
  elif [[ "$tsan_setarch" == always ]]; then
    out="forced by AWAIT_TREE_TSAN_SETARCH=always"
  elif out="$("$probe_dir/tsan-$tag" 2>&1)"; then
    tsan_wrap[$cxx]=""
    note "ThreadSanitizer works with $cxx (no ASLR workaround needed)"
    return 0
  fi
  if ! command -v setarch >/dev/null; then
    err "ThreadSanitizer programs built by $cxx fail, and setarch (util-linux) is missing:"
    printf '%s\n' "$out" | sed 's/^/!!!!   /' >&2
    return 1
  fi
  if setarch "$(uname -m)" -R "$probe_dir/tsan-$tag" >/dev/null 2>&1; then
    tsan_wrap[$cxx]=setarch
    note "ThreadSanitizer with $cxx: $(grep -m1 . <<<"$out" || true)"
    note "=> its build and tests run under 'setarch $(uname -m) -R' (ASLR off)"
    return 0
  fi
  err "ThreadSanitizer programs built by $cxx fail, even with ASLR off:"
  printf '%s\n' "$out" | sed 's/^/!!!!   /' >&2
  return 1
}

# ---------------------------------------------------------------------------
# Steps
# ---------------------------------------------------------------------------
configure_config() {  # name
  local entry name cxx type flags kind options
  entry="$(config_line "$1")" || { err "unknown configuration $1"; return 1; }
  IFS='|' read -r name cxx type flags kind options <<<"$entry"
  local -a extra_options=()
  read -r -a extra_options <<<"${options:-}"
  if ! command -v "$cxx" >/dev/null; then
    err "compiler $cxx not found (see .ci/run for the packages to install)"
    return 1
  fi
  cmake -S "$repo_root" -B "$build_root/$name" -G Ninja \
    -DCMAKE_BUILD_TYPE="$type" \
    -DCMAKE_CXX_COMPILER="$cxx" \
    -DCMAKE_CXX_FLAGS="$flags" \
    -DCMAKE_CXX_FLAGS_DEBUG="$debug_info" \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 $debug_info -DNDEBUG" \
    -DAWAIT_TREE_BUILD_TESTS=ON \
    -DAWAIT_TREE_BUILD_EXAMPLES=ON \
    -DAWAIT_TREE_BOOST_ASIO=ON \
    -DAWAIT_TREE_WERROR=ON \
    "${extra_options[@]}"
}

run_config() {  # name
  local entry name cxx type flags kind dir
  local -a run_env=() wrap=()
  entry="$(config_line "$1")" || { err "unknown configuration $1"; return 1; }
  IFS='|' read -r name cxx type flags kind _ <<<"$entry"
  dir="$build_root/$name"

  # Use the symbolizer matching clang 16 when present (package llvm-16);
  # otherwise the sanitizers fall back to whatever is on PATH or addr2line.
  local symbolizer=""
  if [[ "$cxx" == clang++-16 && -x /usr/lib/llvm-16/bin/llvm-symbolizer ]]; then
    symbolizer=":external_symbolizer_path=/usr/lib/llvm-16/bin/llvm-symbolizer"
  fi

  case "$kind" in
    asan)
      probe_lsan "$cxx" || return 1
      local leaks=1
      if [[ "${lsan_state[$cxx]}" != ok ]]; then
        leaks=0
        step_notes="LeakSanitizer UNAVAILABLE here (${lsan_reason[$cxx]}): leaks NOT checked"
      fi
      run_env=(
        "ASAN_OPTIONS=detect_leaks=$leaks:abort_on_error=1$symbolizer"
        "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1$symbolizer"
      )
      ;;
    tsan)
      probe_tsan "$cxx" || return 1
      run_env=("TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1$symbolizer")
      if [[ "${tsan_wrap[$cxx]}" == setarch ]]; then
        wrap=(setarch "$(uname -m)" -R)
        step_notes="ran under setarch -R: ASLR off for TSan"
      fi
      ;;
  esac

  configure_config "$name" || return 1
  # The sanitizer environment also applies to the build: Catch2's post-build
  # step runs the test binary to list its test cases.
  env "${run_env[@]}" "${wrap[@]}" cmake --build "$dir" -j "$jobs" || return 1
  env "${run_env[@]}" "${wrap[@]}" ctest --test-dir "$dir" --output-on-failure \
    -j "$jobs" --timeout "$test_timeout" --no-tests=error || return 1
}

run_install_check() {
  local plain="$build_root/gcc-plain" prefix work cmake_dir out f
  # The install rules exist once the build is configured; nothing needs to be
  # built for a header-only library.
  if [[ ! -f "$plain/CMakeCache.txt" ]]; then
    configure_config gcc-plain || return 1
  fi
  mkdir -p "$build_root" || return 1
  prefix="$(mktemp -d "${TMPDIR:-/tmp}/await_tree-prefix.XXXXXX")" || return 1
  work="$build_root/consumer-install"
  rm -rf "$work"

  note "installing $plain into $prefix"
  cmake --install "$plain" --prefix "$prefix" || return 1

  cmake_dir="$prefix/share/cmake/await_tree"
  for f in "$prefix/include/await_tree/await_tree.hpp" \
    "$prefix/include/await_tree/detail" \
    "$cmake_dir/await_treeConfig.cmake" \
    "$cmake_dir/await_treeConfigVersion.cmake" \
    "$cmake_dir/await_treeTargets.cmake"; do
    if [[ ! -e "$f" ]]; then
      err "not installed: ${f#"$prefix"/}"
      return 1
    fi
  done
  # The installed package must be relocatable: no path into the source or
  # build tree.
  if grep -rlF -e "$repo_root" -e "$build_root" "$cmake_dir"; then
    err "installed CMake files refer to the source/build tree (listed above)"
    return 1
  fi

  # Boost is off limits: the package must not look for it unless asked.
  cmake -S "$repo_root/tests/consumer" -B "$work" -G Ninja \
    -DCMAKE_CXX_COMPILER=g++ \
    -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_DISABLE_FIND_PACKAGE_Boost=ON --no-warn-unused-cli \
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF || return 1
  # Make sure it found the freshly installed copy and nothing else.
  if ! grep -qF "await_tree_DIR:PATH=$cmake_dir" "$work/CMakeCache.txt"; then
    err "consumer did not pick up the package from $cmake_dir:"
    grep '^await_tree_DIR' "$work/CMakeCache.txt" >&2 || true
    return 1
  fi
  cmake --build "$work" -j "$jobs" || return 1
  out="$("$work/consumer")" || { err "consumer exited with an error"; return 1; }
  printf '%s\n' "$out"
  if ! grep -q consumer <<<"$out"; then
    err "consumer output does not contain \"consumer\""
    return 1
  fi
  run_boost_consumer "$prefix" || return 1
  rm -rf "$prefix"
}

# The installed package's boost_asio component, used by a program built with
# a user's warnings as errors (tests/consumer, CONSUMER_BOOST_ASIO).
run_boost_consumer() {  # prefix
  local work="$build_root/consumer-install-boost" out
  rm -rf "$work"
  cmake -S "$repo_root/tests/consumer" -B "$work" -G Ninja -DCMAKE_CXX_COMPILER=g++ \
    -DCMAKE_PREFIX_PATH="$1" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCONSUMER_BOOST_ASIO=ON ||
    return 1
  cmake --build "$work" -j "$jobs" --target consumer_boost_asio || return 1
  out="$("$work/consumer_boost_asio")" || { err "consumer_boost_asio failed"; return 1; }
  printf '%s\n' "$out"
  if ! grep -q '^  wait for the timer \[' <<<"$out"; then
    err "consumer_boost_asio did not show its task waiting on the timer"
    return 1
  fi
}

run_subdir_check() {
  local work="$build_root/consumer-subdir" out
  rm -rf "$work"
  cmake -S "$repo_root/tests/consumer_subdir" -B "$work" -G Ninja \
    -DCMAKE_CXX_COMPILER=g++ || return 1
  # As a subproject the tests and examples must default to OFF, and no test
  # or example target may exist (consumer_subdir/CMakeLists.txt checks the
  # targets at configure time as well).
  if ! grep -q '^AWAIT_TREE_BUILD_TESTS:BOOL=OFF$' "$work/CMakeCache.txt" ||
    ! grep -q '^AWAIT_TREE_BUILD_EXAMPLES:BOOL=OFF$' "$work/CMakeCache.txt"; then
    err "AWAIT_TREE_BUILD_TESTS/EXAMPLES are not OFF when used via add_subdirectory:"
    grep '^AWAIT_TREE_BUILD_' "$work/CMakeCache.txt" >&2 || true
    return 1
  fi
  if ninja -C "$work" -t targets all | grep -E '(^|/)(await_tree_tests|basic)(:| )'; then
    err "library tests/examples are part of the add_subdirectory build (listed above)"
    return 1
  fi
  cmake --build "$work" -j "$jobs" || return 1
  out="$("$work/consumer")" || { err "consumer exited with an error"; return 1; }
  printf '%s\n' "$out"
  if ! grep -q consumer <<<"$out"; then
    err "consumer output does not contain \"consumer\""
    return 1
  fi
}

# The benchmarks, built optimised and run for a moment each: they must build
# and run; their timings are not judged here (tests/bench/run.sh reports them).
run_bench_smoke() {
  local dir="$build_root/bench"
  cmake -S "$repo_root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=g++ \
    -DAWAIT_TREE_BUILD_BENCHMARKS=ON -DAWAIT_TREE_BUILD_TESTS=OFF -DAWAIT_TREE_BUILD_EXAMPLES=OFF \
    -DAWAIT_TREE_WERROR=ON || return 1
  cmake --build "$dir" -j "$jobs" || return 1
  local bench
  for bench in "$dir"/tests/bench/bench_*; do
    "$bench" --benchmark_min_time=0.01 || return 1
  done
}

# Each fuzzer runs on a scratch copy of its seed corpus, so that the inputs it
# finds never land in the committed one. Crash inputs are written next to the
# fuzzer's log in build/fuzz.
run_fuzz() {
  local dir="$build_root/fuzz" fuzzer name seeds corpus log execs leaks=1 ran=0 symbolizer=""
  if [[ -x /usr/lib/llvm-16/bin/llvm-symbolizer ]]; then
    symbolizer=":external_symbolizer_path=/usr/lib/llvm-16/bin/llvm-symbolizer"
  fi
  probe_lsan clang++-16 || return 1
  if [[ "${lsan_state[clang++-16]}" != ok ]]; then
    leaks=0
    step_notes="LeakSanitizer UNAVAILABLE here: leaks NOT checked; "
  fi
  cmake -S "$repo_root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++-16 \
    -DCMAKE_CXX_FLAGS=-O1 -DAWAIT_TREE_BUILD_FUZZERS=ON -DAWAIT_TREE_BUILD_TESTS=OFF \
    -DAWAIT_TREE_BUILD_EXAMPLES=OFF -DAWAIT_TREE_WERROR=ON || return 1
  cmake --build "$dir" -j "$jobs" || return 1
  for fuzzer in "$dir"/tests/fuzz/fuzz_*; do
    [[ -f "$fuzzer" && -x "$fuzzer" ]] || continue
    name="$(basename "$fuzzer")"
    seeds="$repo_root/tests/fuzz/corpus/${name#fuzz_}"
    corpus="$dir/corpus-${name#fuzz_}"
    log="$dir/$name.log"
    rm -rf "$corpus" && mkdir -p "$corpus" || return 1
    if [[ -d "$seeds" ]]; then
      cp -R "$seeds/." "$corpus/" || return 1
    else
      err "$name has no seed corpus ($seeds): it starts from nothing"
    fi
    note "$name: ${fuzz_seconds}s on $(find "$corpus" -type f | wc -l) seed inputs (log: $log)"
    if ! env "ASAN_OPTIONS=detect_leaks=$leaks:abort_on_error=1$symbolizer" \
      "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1$symbolizer" \
      "$fuzzer" -max_total_time="$fuzz_seconds" -timeout=30 -detect_leaks="$leaks" \
      -print_final_stats=1 -artifact_prefix="$dir/$name-" "$corpus" >"$log" 2>&1; then
      tail -n 80 "$log" >&2
      err "$name failed (inputs that crash it: $dir/$name-*)"
      return 1
    fi
    execs="$(awk '/stat::number_of_executed_units/ { print $2 }' "$log")"
    note "$name: ${execs:-?} runs in ${fuzz_seconds}s"
    step_notes+="$name: ${execs:-?} runs; "
    ran=$((ran + 1))
  done
  step_notes="${step_notes%; }"
  if ((ran == 0)); then
    err "no fuzzer was built in $dir/tests/fuzz"
    return 1
  fi
}

run_step() {  # step name
  case "$1" in
    install) run_install_check ;;
    subdir) run_subdir_check ;;
    bench-smoke) run_bench_smoke ;;
    instructions) AWAIT_TREE_BUILD_ROOT="$build_root" bash "$repo_root/tests/bench/instructions.sh" --check ;;
    fuzz) run_fuzz ;;
    *) run_config "$1" ;;
  esac
}

# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------
clean=0
steps=()
while (($#)); do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --list) printf '%s\n' "${all_steps[@]}"; exit 0 ;;
    --clean) clean=1 ;;
    all) steps+=("${all_steps[@]}") ;;
    quick) steps+=(gcc-plain) ;;
    *)
      if [[ " ${all_steps[*]} " != *" $1 "* ]]; then
        err "unknown step '$1' (try --list or --help)"
        exit 2
      fi
      steps+=("$1")
      ;;
  esac
  shift
done
((${#steps[@]})) || steps=("${all_steps[@]}")

banner "await_tree test suite: ${steps[*]}"
note "repo: $repo_root  build: $build_root  jobs: $jobs"
note "$(cmake --version | head -n1); ninja $(ninja --version)"
for cxx in g++ clang++-16; do
  if command -v "$cxx" >/dev/null; then
    note "$("$cxx" --version | head -n1)"
  else
    note "$cxx: not installed"
  fi
done
note "kernel $(uname -r), vm.mmap_rnd_bits=$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo '?')"

summary=()
failed=0
total_start=$SECONDS
for step in "${steps[@]}"; do
  if ((clean)) && config_line "$step" >/dev/null; then
    rm -rf "${build_root:?}/$step"
  fi
  banner "$step"
  step_notes=""
  start=$SECONDS
  if run_step "$step"; then
    status=PASS
  else
    status=FAIL
    failed=1
  fi
  line="$(printf '%-18s %s  %4ds' "$step" "$status" $((SECONDS - start)))"
  [[ -n "$step_notes" ]] && line+="  ($step_notes)"
  summary+=("$line")
  note "$line"
done

banner "summary"
printf '%s\n' "${summary[@]}"
printf 'total: %ds\n' $((SECONDS - total_start))
if ((failed)); then
  printf 'RESULT: FAILED\n'
  exit 1
fi
printf 'RESULT: all passed\n'
