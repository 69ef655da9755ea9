// SPDX-License-Identifier: Apache-2.0
// Must compile, with the same command as the files that must not: the
// control that shows their failures come from the keys.
#include <await_tree/registry.hpp>

#include <string>
#include <string_view>

int main() {
  await_tree::registry reg;
  const auto literal = reg.register_task("worker", "literal");
  const auto view = reg.register_task(std::string_view("view"), "view");
  const auto number = reg.register_task(7, "number");
  return static_cast<int>(reg.collect<std::string>().size() + reg.get("view").has_value());
}
