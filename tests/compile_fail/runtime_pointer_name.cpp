// SPDX-License-Identifier: Apache-2.0
// Must not compile: a span from a runtime `const char*` (the node would keep
// a pointer into a buffer that may die first). The message says what to
// write instead.

#include <await_tree/span.hpp>

await_tree::span name_for(bool urgent) {
  const char* name = urgent ? "urgent read" : "read";
  return name;
}

int main() { return name_for(true).name().empty() ? 1 : 0; }
