#!/usr/bin/env bash
# Usage: tests/check_tls.sh SHARED_LIBRARY
#
# Fails when a function of the library calls __tls_get_addr, apart from the
# cold ones allowed below: in position-independent code the await path must
# still reach its thread's context with one initial-exec access.
#
# Allowed: list_this_thread (a thread's first published position),
# enroll_this_thread (a thread's first use of the pool of trees) and the PLT
# stub itself.
set -euo pipefail

allowed='list_this_thread|enroll_this_thread|__tls_get_addr@plt'
callers="$(objdump -d -C --no-show-raw-insn "$1" |
  awk -v allowed="$allowed" '
    /^[0-9a-f]+ <.*>:$/ { function_name = $0; next }
    /__tls_get_addr/ && function_name !~ allowed { print function_name }' | sort -u)"

if [[ -n "$callers" ]]; then
  printf '__tls_get_addr called from:\n%s\n' "$callers"
  exit 1
fi
echo "no __tls_get_addr call outside the cold path of $1"
