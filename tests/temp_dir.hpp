// SPDX-License-Identifier: Apache-2.0
#pragma once

// A private directory for a test's files (dump files, links, FIFOs).

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

namespace test {

/// A directory of this test's own, removed with what it holds when it goes.
class temp_dir {
 public:
  temp_dir() {
    std::string pattern = "/tmp/await_tree_test_XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw std::system_error(errno, std::generic_category(), "mkdtemp");
    }
    path_ = pattern;
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() { std::filesystem::remove_all(path_); }

  /// The path of `name` in this directory.
  [[nodiscard]] std::string operator/(std::string_view name) const {
    return path_ + '/' + std::string(name);
  }

 private:
  std::string path_;
};

}  // namespace test
