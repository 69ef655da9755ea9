// SPDX-License-Identifier: Apache-2.0
#pragma once

// The command line of the programs whose instructions
// tests/bench/instructions.sh counts:
//
//   PROGRAM WORKLOAD plain|instrumented OPS
//   PROGRAM --list

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string_view>

namespace bench {

struct workload {
  std::string_view name;
  void (*run)(bool instrumented, std::size_t ops);
};

inline int usage() {
  std::fputs("usage: PROGRAM WORKLOAD plain|instrumented OPS | --list\n", stderr);
  return 2;
}

/// Runs the workload the command line names, or lists them.
inline int run_workload(int argc, char** argv, std::span<const workload> workloads) {
  if (argc == 2 && std::string_view(argv[1]) == "--list") {
    for (const workload& w : workloads) std::printf("%.*s\n", int(w.name.size()), w.name.data());
    return 0;
  }
  if (argc != 4) return usage();
  const std::string_view variant = argv[2];
  if (variant != "plain" && variant != "instrumented") return usage();
  const long ops = std::strtol(argv[3], nullptr, 10);
  if (ops <= 0) return usage();
  for (const workload& w : workloads) {
    if (w.name == argv[1]) {
      w.run(variant == "instrumented", static_cast<std::size_t>(ops));
      return 0;
    }
  }
  return usage();
}

}  // namespace bench
