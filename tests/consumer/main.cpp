// Smoke test for the packaged library: one registered task, one dump.
#include <await_tree/await_tree.hpp>

#include <cstdio>

int main() {
  await_tree::registry reg;
  auto root = reg.register_task(1, "consumer");

  auto tree = reg.get(1);
  if (!tree) {
    std::fputs("task 1 is not registered\n", stderr);
    return 1;
  }
  std::fputs(tree->to_string().c_str(), stdout);
  std::fputs("\n", stdout);
  return 0;
}
