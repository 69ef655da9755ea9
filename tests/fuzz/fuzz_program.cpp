// SPDX-License-Identifier: Apache-2.0
// Fuzzes the model test's interpreter: the bytes choose a program (any bytes
// make a valid one) and its schedule; the run aborts at the first snapshot
// that differs from the reference model. The seed corpus in
// corpus/program/ holds the choices of a few generated programs.

#include "model/interpreter.hpp"
#include "model/program.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <span>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  model::choice_source choices(std::span<const std::uint8_t>(data, size));
  const model::program p = model::generator(choices).generate();
  model::interpreter run(p, choices);
  if (const std::optional<model::mismatch> found = run.run()) {
    std::fprintf(stderr, "program:\n%s\nstep %zu, %s\nexpected:\n%sactual:\n%s\n",
                 model::to_string(p).c_str(), found->step, found->where.c_str(),
                 found->expected.to_string().c_str(), found->actual.c_str());
    std::abort();
  }
  return 0;
}
