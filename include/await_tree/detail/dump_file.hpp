// SPDX-License-Identifier: Apache-2.0
#pragma once

// The file a signal_dump appends to. Dumps name tasks and spans, which often
// hold user ids and query text, so the file must stay private even in a
// shared directory such as /tmp: it is created with mode 0600, and a path
// that another local user could have prepared (a symbolic link to a file of
// their choosing, a file of their own that they can read) is refused. POSIX
// only.

#include <cerrno>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

namespace await_tree::detail {

[[noreturn]] inline void refuse_dump_file(int error, const std::string& path, const char* why) {
  throw std::system_error(error, std::generic_category(),
                          "await-tree: refusing the dump file " + path + ": " + why);
}

/// Throws unless `fd`, opened from `path`, is a regular file of this user.
inline void check_dump_file(int fd, const std::string& path) {
  struct stat status {};
  if (::fstat(fd, &status) != 0) refuse_dump_file(errno, path, "fstat failed");
  if (!S_ISREG(status.st_mode)) refuse_dump_file(EINVAL, path, "it is not a regular file");
  if (status.st_uid != ::geteuid()) {
    refuse_dump_file(EPERM, path, "it is owned by another user");
  }
}

/// Opens `path` for appending, creating it with mode 0600, and returns the
/// descriptor (close-on-exec). O_NOFOLLOW refuses a symbolic link as the
/// last component; O_NONBLOCK keeps a FIFO planted there from blocking the
/// open (it is then refused as not a regular file). Throws std::system_error
/// saying why the path is refused.
[[nodiscard]] inline int open_dump_file(const std::string& path) {
  const int fd =
      ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK,
             S_IRUSR | S_IWUSR);
  if (fd < 0) {
    const int error = errno;
    refuse_dump_file(error, path, error == ELOOP ? "it is a symbolic link" : "it cannot be opened");
  }
  try {
    check_dump_file(fd, path);
  } catch (...) {
    ::close(fd);
    throw;
  }
  return fd;
}

}  // namespace await_tree::detail
