// SPDX-License-Identifier: Apache-2.0
// Built as a position-independent shared library (tests/CMakeLists.txt) whose
// machine code check_tls.cmake reads: the await path reaches this thread's
// context with an initial-exec access, never a __tls_get_addr call.

#include <await_tree/await_tree.hpp>

#include "runtime/task.hpp"

namespace {

rt::task<int> ready_child() { co_return 1; }

rt::task<int> parent() { co_return co_await await_tree::instrument(ready_child(), "child"); }

}  // namespace

int await_tree_pic_probe() {
  rt::task<int> t = parent();
  t.start();
  return 0;
}
