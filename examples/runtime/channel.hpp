// SPDX-License-Identifier: Apache-2.0
#pragma once

// A bounded channel between coroutines on one executor: send() waits while it
// is full, recv() while it is empty. Either may be cancelled while it waits.

#include "executor.hpp"
#include "task.hpp"
#include "wait_queue.hpp"

#include <cstddef>
#include <deque>
#include <optional>
#include <utility>

namespace rt {

template <class T>
class channel {
 public:
  channel(executor& ex, std::size_t capacity) : capacity_(capacity), room_(ex), items_(ex) {}

  [[nodiscard]] bool full() const noexcept { return buffer_.size() >= capacity_; }

  task<> send(T value) {
    while (full()) co_await room_.wait();
    buffer_.push_back(std::move(value));
    items_.notify_all();
  }

  /// The next value; nothing once the channel is closed and drained.
  task<std::optional<T>> recv() {
    while (buffer_.empty() && !closed_) co_await items_.wait();
    if (buffer_.empty()) co_return std::nullopt;
    std::optional<T> value(std::move(buffer_.front()));
    buffer_.pop_front();
    room_.notify_all();
    co_return value;
  }

  /// No more sends; receivers get what is buffered, then nothing.
  void close() {
    closed_ = true;
    items_.notify_all();
  }

 private:
  std::size_t capacity_;
  std::deque<T> buffer_;
  bool closed_ = false;
  wait_queue room_;
  wait_queue items_;
};

}  // namespace rt
