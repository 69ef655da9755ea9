// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <await_tree/any_key.hpp>
#include <await_tree/config.hpp>
#include <await_tree/context.hpp>
#include <await_tree/detail/registry_state.hpp>
#include <await_tree/tree_root.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace await_tree {

namespace detail {
struct registry_access;
}  // namespace detail

/// Holds the trees of every registered task, readable from any thread at any
/// time while the tasks run.
///
/// A registry is a handle: copies share the same tasks. Entries are weak (a
/// task's entry goes when its root ends), and a registry may be destroyed
/// before its tasks end, or after: both orders are safe.
class registry {
 public:
  explicit registry(config cfg = {})
      : state_(detail::registry_state::create(cfg), &detail::registry_state::release_handles) {}

  /// Registers a task under `key`. Of the live tasks registered under equal
  /// keys, the newest by the registry's clock is the one lookups,
  /// collections and dumps show (of two registered on different threads
  /// within one tick of the default clock, 1 to 4 ms, either): an older one
  /// runs on unlisted, and shows again if it outlives the newer. A crash
  /// dump shows them all.
  /// Text keys (string literals, char pointers, string views) are stored as
  /// `std::string`.
  template <registry_key Key>
  [[nodiscard]] tree_root register_task(Key key, span root) {
    if constexpr (detail::borrowed_text_key<Key>) {
      // Measured here, inlined at the call: a literal's length is a constant.
      const std::string_view text = detail::text_of(key);
      return register_as([text] { return any_key(text); }, std::move(root));
    } else {
      return register_as([&key] { return any_key(std::move(key)); }, std::move(root));
    }
  }

  /// register_task() for text in a `char` array, a string literal mostly:
  /// the text up to its first null character, or the whole array when it
  /// has none. When the text fills the array, its length is a constant of
  /// the type, so that copying it into the key is a few moves, not a call.
  template <std::size_t N>
  [[nodiscard]] tree_root register_task(const char (&key)[N], span root) {
    const std::string_view text = detail::text_in_array(key);
    if (text.size() != N - 1) return register_task(text, std::move(root));
    return register_as([&key] { return any_key(std::string_view(key, N - 1)); }, std::move(root));
  }

  /// Registers a task that is listed only by collect_anonymous/collect_all.
  [[nodiscard]] tree_root register_anonymous(span root) {
    detail::registry_state& state = *state_;
    return register_as([&state] { return any_key::anonymous(state.next_anonymous_id()); },
                       std::move(root));
  }

  /// The tree of the newest task registered under a key equal to `key`; text
  /// is looked up as a view, without a copy. A lookup compares every live
  /// registration's key (registering stays a mere append): meant for
  /// debugging endpoints, not for a request's hot path.
  template <registry_key Key>
  [[nodiscard]] std::optional<tree> get(const Key& key) const {
    return state_->snapshot(detail::probe_of(key));
  }

  /// The trees of the tasks whose key is a `Key` (`std::string` for text).
  template <registry_key Key>
  [[nodiscard]] std::vector<std::pair<Key, tree>> collect() const {
    detail::require_stored_form<Key>();
    std::vector<std::pair<Key, tree>> out;
    for (auto& [key, t] :
         state_->snapshot_all([](const any_key& k) { return k.template get<Key>() != nullptr; })) {
      out.emplace_back(*key.template get<Key>(), std::move(t));
    }
    return out;
  }

  [[nodiscard]] std::vector<tree> collect_anonymous() const {
    std::vector<tree> out;
    for (auto& entry : state_->snapshot_all([](const any_key& k) { return k.is_anonymous(); })) {
      out.push_back(std::move(entry.second));
    }
    return out;
  }

  [[nodiscard]] std::vector<std::pair<any_key, tree>> collect_all() const {
    return state_->snapshot_all([](const any_key&) { return true; });
  }

  /// Unlists every task. Their roots keep running and end quietly.
  void clear() noexcept { state_->clear(); }

  [[nodiscard]] const config& settings() const noexcept { return state_->settings(); }

 private:
  friend struct detail::registry_access;  // the crash handlers' way in

  /// `make_key` makes the key in its entry: a key is never moved.
  template <class MakeKey>
  [[gnu::noinline]] tree_root register_as(MakeKey make_key, span&& root) {
    const config& cfg = state_->settings();
    const std::chrono::nanoseconds start = cfg.clock();
    detail::tree_state* t = detail::tree_state::create(std::move(root), cfg, start);
    try {
      return tree_root(state_->enter(make_key, t, start));
    } catch (...) {
      t->close_and_release();
      throw;
    }
  }

  std::shared_ptr<detail::registry_state> state_;
};

/// The calling task's tree, when the calling code runs inside a task: in an
/// integrated coroutine, or in a bracketed region of a task (see context.hpp).
[[gnu::noinline]] [[nodiscard]] inline std::optional<tree> current_tree() {
  const detail::thread_context& tc = detail::this_thread_context();
  const detail::context_state& here = tc.here;
  if (!tc.says_task_runs() || here.at.empty()) return std::nullopt;
  detail::tree_state& t = *here.at.tree;
  const auto lock = t.lock();
  if (!t.is_open_at(here.at)) return std::nullopt;
  return t.snapshot();
}

namespace detail {
inline std::atomic<registry*> global_registry_instance{nullptr};
}  // namespace detail

/// Creates the process-wide registry. Only the first call has an effect (it
/// returns true); the registry lives until the process exits, so it can be
/// read from crash and exit handlers.
inline bool init_global_registry(config cfg = {}) {
  if (detail::global_registry_instance.load(std::memory_order_acquire) != nullptr) return false;
  auto candidate = std::make_unique<registry>(cfg);
  registry* expected = nullptr;
  if (!detail::global_registry_instance.compare_exchange_strong(expected, candidate.get(),
                                                                std::memory_order_acq_rel)) {
    return false;
  }
  candidate.release();  // intentionally never freed, see above
  return true;
}

/// The process-wide registry; nullptr until init_global_registry().
[[nodiscard]] inline registry* global_registry() noexcept {
  return detail::global_registry_instance.load(std::memory_order_acquire);
}

}  // namespace await_tree
