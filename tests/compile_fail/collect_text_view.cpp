// SPDX-License-Identifier: Apache-2.0
// Must not compile: text keys are stored as std::string, so a collect of
// string views would always be empty.
#include <await_tree/registry.hpp>

#include <string_view>

int main() {
  const await_tree::registry reg;
  return static_cast<int>(reg.collect<std::string_view>().size());
}
