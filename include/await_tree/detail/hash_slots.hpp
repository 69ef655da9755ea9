// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace await_tree::detail {

/// Pointers to entries placed by their hash in one array (open addressing,
/// linear probing): a lookup reads consecutive slots, and adding an entry
/// allocates nothing unless the table grows. Entries are only added, and all
/// removed at once by clear(), which keeps the array for the next use. The
/// caller keeps one entry per key, so that runs stay short. Not
/// synchronised.
template <class Entry>
class hash_slots {
 public:
  /// The slot of the entry with hash `hash` that `matches`, or else the empty
  /// slot where `insert_at` puts such an entry. Requires room (make_room).
  template <class Matches>
  [[nodiscard]] std::size_t find_or_empty(std::size_t hash, Matches matches) const noexcept {
    for (std::size_t i = home(hash);; i = next(i)) {
      const slot& s = slots_[i];
      if (s.entry == nullptr || (s.hash == hash && matches(s.entry))) return i;
    }
  }

  [[nodiscard]] Entry*& at(std::size_t index) noexcept { return slots_[index].entry; }
  [[nodiscard]] Entry* at(std::size_t index) const noexcept { return slots_[index].entry; }

  /// Makes room for one more entry: may allocate (and throw) when the table
  /// grows, so that `insert` cannot.
  void make_room() {
    if (2 * (size_ + 1) > slots_.size()) grow();
  }

  /// Adds `entry` in the empty slot find_or_empty gave for its hash.
  void insert_at(std::size_t index, std::size_t hash, Entry* entry) noexcept {
    slots_[index] = slot{hash, entry};
    ++size_;
  }

  void clear() noexcept {
    for (slot& s : slots_) s = slot{};
    size_ = 0;
  }

 private:
  struct slot {
    std::size_t hash = 0;
    Entry* entry = nullptr;
  };

  /// The top bits of the hash times 2^64 / golden ratio: std::hash of an
  /// integer is the integer itself, and keys that step by a power of two
  /// would otherwise share their low bits.
  [[nodiscard]] std::size_t home(std::size_t hash) const noexcept {
    constexpr std::uint64_t golden = 0x9e3779b97f4a7c15;
    return static_cast<std::size_t>((static_cast<std::uint64_t>(hash) * golden) >> shift_);
  }
  [[nodiscard]] std::size_t next(std::size_t i) const noexcept {
    return (i + 1) & (slots_.size() - 1);
  }

  void place(std::size_t hash, Entry* entry) noexcept {
    std::size_t i = home(hash);
    while (slots_[i].entry != nullptr) i = next(i);
    slots_[i] = slot{hash, entry};
  }

  void grow() {
    std::vector<slot> old(slots_.empty() ? initial_slots : 2 * slots_.size());
    old.swap(slots_);
    shift_ = 64 - bits_of(slots_.size());
    for (const slot& s : old) {
      if (s.entry != nullptr) place(s.hash, s.entry);
    }
  }

  [[nodiscard]] static int bits_of(std::size_t power_of_two) noexcept {
    return __builtin_ctzll(power_of_two);
  }

  static constexpr std::size_t initial_slots = 16;
  std::vector<slot> slots_;
  std::size_t size_ = 0;
  int shift_ = 64;
};

}  // namespace await_tree::detail
