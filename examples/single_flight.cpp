// SPDX-License-Identifier: Apache-2.0
//
// single_flight: a block cache that fetches each missing block once, and a
// join whose select strands that fetch.
//
// Readers that miss the same block must not fetch it twice: the first starts
// the fetch, later ones wait for it. In the first design the requester that
// started the fetch also hands the block to the others when the fetch returns.
// The join reads its two inputs through a select and drops the losing read
// each round (harmless for the inputs: a dropped read loses no row). When the
// read it drops is the one that started a fetch, the fetch goes on (the cache
// owns it) and completes, but handing the block over was the dropped read's
// next step: both inputs now wait for a block nobody will deliver. As in
// RisingWave's "Deadlock debugging with await-tree", the tree tells the story:
// the fetch sits in a [Detached] section (its read done, its result never
// taken), cut off from the reads waiting for it under the select. The reads'
// spans say they wait for the fetch's in-flight resource, which the detached
// fetch holds, so the dump opens by saying that nobody can end their wait.
//
// When the join has read no row for 2 s, the example prints the tree and
// stops the join. Then the fixed design runs: each fetch is a task of its own,
// registered so that it has its own tree, and fills the cache entry itself,
// whoever still waits. The join completes.
//
// Usage: single_flight [--fast]   (--fast: one "second" lasts 10 ms)

#include <await_tree/await_tree.hpp>

#include "example.hpp"
#include "runtime/combinators.hpp"
#include "runtime/event.hpp"
#include "runtime/executor.hpp"
#include "runtime/task.hpp"
#include "runtime/wait_queue.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace {

using await_tree::instrument;
using example::task;
using std::chrono::nanoseconds;

/// A block holds the keys of some rows.
using block = std::vector<int>;

/// Where the blocks the cache misses come from, slowly.
class object_store {
 public:
  object_store(rt::executor& ex, nanoseconds latency, std::map<int, block> blocks)
      : ex_(ex), latency_(latency), blocks_(std::move(blocks)) {}

  task<block> read(int id) {
    co_await instrument(ex_.sleep(latency_), fmt::format("read block {} from object store", id));
    co_return blocks_.at(id);
  }

 private:
  rt::executor& ex_;
  nanoseconds latency_;
  std::map<int, block> blocks_;
};

/// Who hands a fetched block to the requesters waiting for it.
enum class delivery {
  by_first_requester,  // the requester that started the fetch, once it returns
  by_fetch_task,       // the fetch itself, running as a task of its own
};

/// Fetches a missing block once, however many requesters ask for it meanwhile.
class block_cache {
 public:
  block_cache(rt::executor& ex, await_tree::registry& reg, object_store& store, delivery how)
      : ex_(ex), reg_(reg), store_(store), delivery_(how) {}

  /// Puts a block in the cache without fetching it.
  void insert(int id, block b) { entry_for(id).data = std::move(b); }

  task<block> get(int id) {
    const bool missing = !entries_.contains(id);
    entry& e = entry_for(id);
    if (missing) {
      if (delivery_ == delivery::by_first_requester) co_return co_await fetch_and_hand_over(id, e);
      spawn_fetch_task(id, e);
    }
    while (!e.data) {
      co_await instrument(e.filled.wait(),
                          await_tree::span(fmt::format("wait for in-flight fetch of block {}", id))
                              .waits_for(e.in_flight));
    }
    co_return *e.data;
  }

 private:
  struct entry {
    entry(rt::executor& ex, int id)
        : filled(ex), in_flight(fmt::format("in-flight fetch of block {}", id)) {}
    std::optional<block> data;
    rt::wait_queue filled;
    // Held by the fetch from its start until the block is in the entry.
    await_tree::resource in_flight;
    // The first design's fetch. The entry owns it, not its requester, so that
    // a requester that goes away does not cancel a fetch others wait for.
    std::optional<await_tree::instrumented<task<block>>> fetch;
  };

  entry& entry_for(int id) { return entries_.try_emplace(id, ex_, id).first->second; }

  /// Handing the block over is this coroutine's step after the fetch. If its
  /// requester is dropped meanwhile, the fetch completes into an awaitable
  /// nobody awaits any more, and the block is never handed over.
  task<block> fetch_and_hand_over(int id, entry& e) {
    e.fetch.emplace(instrument(fetch(id, e), fmt::format("fetch block {}", id)));
    e.data = co_await *e.fetch;
    e.in_flight.release();
    e.filled.notify_all();
    co_return *e.data;
  }

  /// The fix: no requester stands between the fetch and the waiters.
  void spawn_fetch_task(int id, entry& e) {
    const std::string name = fmt::format("fetch block {}", id);
    rt::spawn(ex_, reg_.register_task(name, name).instrument(fetch_and_fill(id, e)));
  }

  /// The first design's fetch: it holds the entry's in-flight resource,
  /// which its requester releases once the block is handed over.
  task<block> fetch(int id, entry& e) {
    e.in_flight.acquire();
    co_return co_await store_.read(id);
  }

  task<> fetch_and_fill(int id, entry& e) {
    e.in_flight.acquire();
    e.data = co_await store_.read(id);
    e.in_flight.release();
    e.filled.notify_all();
  }

  rt::executor& ex_;
  await_tree::registry& reg_;
  object_store& store_;
  delivery delivery_;
  std::map<int, entry> entries_;
};

/// Where a row is stored: a slot of a block.
struct row_location {
  int block_id;
  std::size_t slot;
};

/// One input of the join: rows read through the block cache.
class input {
 public:
  input(block_cache& cache, std::vector<row_location> rows)
      : cache_(cache), rows_(std::move(rows)) {}

  [[nodiscard]] bool exhausted() const noexcept { return next_ == rows_.size(); }

  /// The next row's key. The position moves only once the row has been read,
  /// so a read dropped halfway loses nothing: the next one reads the same row.
  task<int> next() {
    const row_location row = rows_[next_];
    const block b =
        co_await instrument(cache_.get(row.block_id), fmt::format("get block {}", row.block_id));
    ++next_;
    co_return b.at(row.slot);
  }

 private:
  block_cache& cache_;
  std::vector<row_location> rows_;
  std::size_t next_ = 0;
};

/// A symmetric hash join: each row is matched against the rows the other
/// input has delivered so far.
class hash_join {
 public:
  hash_join(input& left, input& right) : left_(left), right_(right) {}

  task<> run() {
    while (!left_.exhausted() || !right_.exhausted()) {
      const keyed_row row = co_await next_row();
      std::vector<int>& own = row.from == side::left ? left_keys_ : right_keys_;
      const std::vector<int>& other = row.from == side::left ? right_keys_ : left_keys_;
      matches_ += static_cast<std::size_t>(std::count(other.begin(), other.end(), row.key));
      own.push_back(row.key);
    }
  }

  [[nodiscard]] std::size_t rows_read() const noexcept {
    return left_keys_.size() + right_keys_.size();
  }
  [[nodiscard]] std::size_t matches() const noexcept { return matches_; }

 private:
  enum class side { left, right };
  struct keyed_row {
    side from;
    int key;
  };

  /// The next row of either input, whichever comes first. Each round starts a
  /// read on both inputs and drops the read that loses.
  task<keyed_row> next_row() {
    if (left_.exhausted()) {
      co_return keyed_row{side::right, co_await instrument(right_.next(), "right: next row")};
    }
    if (right_.exhausted()) {
      co_return keyed_row{side::left, co_await instrument(left_.next(), "left: next row")};
    }
    auto left_read = instrument(left_.next(), "left: next row");
    auto right_read = instrument(right_.next(), "right: next row");
    const std::size_t winner =
        co_await instrument(rt::when_any(left_read, right_read), "select left/right");
    if (winner == 0) co_return keyed_row{side::left, co_await left_read};
    co_return keyed_row{side::right, co_await right_read};
  }

  input& left_;
  input& right_;
  std::vector<int> left_keys_;
  std::vector<int> right_keys_;
  std::size_t matches_ = 0;
};

/// Joins the same rows with the cache delivering blocks as `how` says, and
/// prints the trees on the way; a join that gets stuck is stopped.
void run_join(delivery how, nanoseconds second) {
  await_tree::registry reg(await_tree::config{.long_running_threshold = second});
  rt::executor ex;
  object_store store(ex, second / 2, {{7, {10, 20}}, {8, {20}}});
  block_cache cache(ex, reg, store, how);
  cache.insert(3, {10});                 // read by an earlier query
  input left(cache, {{7, 0}, {8, 0}});   // keys 10 and 20
  input right(cache, {{3, 0}, {7, 1}});  // keys 10 and 20
  hash_join join(left, right);
  rt::event stop;
  rt::spawn(ex, reg.register_task(std::string("hash join"), "hash join")
                    .instrument(example::until_stopped(join.run(), stop)));

  example::run_for(ex, second / 4);
  example::print_trees(reg, "0.25 s: both inputs wait for block 7");

  const example::stall_check check{
      .tick = second / 4, .patience = 2 * second, .limit = 10 * second};
  const example::run_end end = example::run_watched(
      ex, check, [&] { return reg.collect_all().empty(); }, [&] { return join.rows_read(); });
  if (end == example::run_end::stalled) {
    example::print_trees(reg, "no row read for 2 s: the join is stuck");
    stop.set();
    std::printf("stopped the stuck join: %zu task(s) left\n", reg.collect_all().size());
  } else {
    std::printf("join finished: %zu rows read, %zu matches; %zu task(s) left\n", join.rows_read(),
                join.matches(), reg.collect_all().size());
  }
}

}  // namespace

int main(int argc, char** argv) {
  const nanoseconds second = example::second(argc, argv);
  std::puts("=== design 1: the requester that starts a fetch hands the block over ===");
  run_join(delivery::by_first_requester, second);
  std::puts("=== design 2: each fetch is a task of its own ===");
  run_join(delivery::by_fetch_task, second);
}
