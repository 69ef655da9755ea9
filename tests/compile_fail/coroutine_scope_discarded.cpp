// SPDX-License-Identifier: Apache-2.0
// Must not compile with -Werror: the scope of a coroutine span thrown away at
// once (its node would go at the end of the statement). The message says to
// keep it.

#include <await_tree/coroutine_span.hpp>

#include "runtime/task.hpp"

rt::task<> discarded() { co_await await_tree::coroutine_span(); }

int main() { return 0; }
