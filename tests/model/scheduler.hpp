// SPDX-License-Identifier: Apache-2.0
#pragma once

// The deterministic scheduler of the model-based test. Every suspension of a
// program is at a gate; one step opens one pending gate, picked by the choice
// source, and resumes its coroutine until everything it starts has suspended
// again. A "hop" gate is resumed on a thread of its own, which the scheduler
// joins before the step ends: lockstep, so the run stays deterministic. A
// "refusing" gate throws from await_suspend instead of suspending.
//
// Resumptions are plain `resume()` calls, as in any runtime that knows
// nothing of await-tree: no context_scope anywhere.

#include <await_tree/await_tree.hpp>

#include "program.hpp"

#include <algorithm>
#include <coroutine>
#include <cstddef>
#include <thread>
#include <utility>
#include <vector>

namespace model {

class scheduler {
 public:
  class gate {
   public:
    gate(scheduler& owner, std::size_t task, gate_kind kind) noexcept
        : owner_(owner), task_(task), kind_(kind) {}
    // Movable until awaited, as instrument() moves it into its wrapper.
    gate(gate&& other) noexcept : owner_(other.owner_), task_(other.task_), kind_(other.kind_) {}
    gate& operator=(gate&&) = delete;
    // Destroyed while pending: its coroutine was cancelled.
    ~gate() {
      if (pending_) std::erase(owner_.pending_, this);
    }

    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) {
      if (kind_ == gate_kind::refusing) throw program_error{};
      handle_ = h;
      pending_ = true;
      owner_.pending_.push_back(this);
    }
    void await_resume() const noexcept {}

   private:
    friend class scheduler;
    scheduler& owner_;
    std::size_t task_;
    gate_kind kind_;
    bool pending_ = false;
    std::coroutine_handle<> handle_;
  };

  [[nodiscard]] gate make_gate(std::size_t task, gate_kind kind) noexcept {
    return {*this, task, kind};
  }

  /// Opens one pending gate picked by `choices`; false when none is left.
  bool step(choice_source& choices) {
    if (pending_.empty()) return false;
    open(pending_[choices.pick(pending_.size())], true);
    return true;
  }

  /// Opens task `t`'s oldest pending gate inline, from code of another task.
  /// Not from inside another wake: the task woken there could be the one
  /// running the outer wake, and cancel the coroutine that is running it.
  void wake(std::size_t t) {
    if (waking_) return;
    const auto found = std::find_if(pending_.begin(), pending_.end(),
                                    [t](const gate* g) { return g->task_ == t; });
    if (found == pending_.end()) return;
    waking_ = true;
    open(*found, false);
    waking_ = false;
  }

 private:
  void open(gate* g, bool may_hop) {
    std::erase(pending_, g);
    g->pending_ = false;
    // Only copies from here: resuming may destroy the gate.
    const std::coroutine_handle<> h = g->handle_;
    if (may_hop && g->kind_ == gate_kind::hop) {
      std::thread([h] { h.resume(); }).join();
    } else {
      h.resume();
    }
  }

  std::vector<gate*> pending_;
  bool waking_ = false;
};

}  // namespace model
