// SPDX-License-Identifier: Apache-2.0
// Must not compile: a floating-point key (NaN is never equal to itself).
#include <await_tree/registry.hpp>

int main() {
  await_tree::registry reg;
  const auto root = reg.register_task(0.5, "half");
}
