// SPDX-License-Identifier: Apache-2.0
// Must not compile: coroutine_span() in a coroutine whose promise is not
// integrated (it has nowhere to keep the coroutine's node). The message says
// what an integrated task type is.

#include <await_tree/coroutine_span.hpp>

#include "runtime/task.hpp"

rt::plain_task<> not_integrated() { auto scope = co_await await_tree::coroutine_span(); }

int main() { return 0; }
