// POSIX file helpers for the storage layer: an owned descriptor with positional I/O,
// the byte range of a file that reads hand out, and the write-temp, fsync, rename idiom
// for small metadata files.
//
// A File closes its descriptor when the last shared_ptr to it goes away, so a FileRange
// (whose keep_alive holds the File) stays readable after its segment is closed or its
// files are unlinked.
// Errors: ENOENT becomes NotFound, every other errno Internal (the broker reports
// KAFKA_STORAGE_ERROR); messages name the operation and the path.
// Thread-compatible.
#ifndef RUNNEL_STORAGE_FILE_H_
#define RUNNEL_STORAGE_FILE_H_

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace runnel::storage {

// A byte range of a segment file; `keep_alive` keeps `fd` open.
struct FileRange {
  int fd = -1;
  uint64_t position = 0;
  uint64_t length = 0;
  std::shared_ptr<const void> keep_alive;
};

absl::Status ErrnoError(std::string_view op, const std::filesystem::path& path, int err);

class File {
 public:
  // open(2) with O_CLOEXEC added.
  static absl::StatusOr<std::shared_ptr<File>> Open(const std::filesystem::path& path, int flags,
                                                    mode_t mode = 0644);
  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  int fd() const { return fd_; }
  const std::filesystem::path& path() const { return path_; }

  // Reads up to n bytes at pos; returns fewer only at end of file.
  absl::StatusOr<size_t> ReadAt(uint64_t pos, void* buf, size_t n) const;
  // Reads exactly n bytes at pos; DataLoss if the file ends first.
  absl::Status ReadFullyAt(uint64_t pos, void* buf, size_t n) const;
  // Writes all n bytes at pos.
  absl::Status WriteAt(uint64_t pos, const void* data, size_t n);
  absl::Status Truncate(uint64_t size);
  absl::Status Sync();
  absl::StatusOr<uint64_t> Size() const;

 private:
  File(int fd, std::filesystem::path path) : fd_(fd), path_(std::move(path)) {}

  int fd_;
  std::filesystem::path path_;
};

// fsync(2) on a directory, making file creations, renames and unlinks in it durable.
absl::Status SyncDir(const std::filesystem::path& dir);

// Replaces `path` with `contents` atomically: writes `<path>.tmp`, fsyncs it, renames it
// over `path` and fsyncs the directory. A crash leaves either the old or the new file
// (and maybe a stale .tmp, which readers ignore).
absl::Status WriteFileAtomically(const std::filesystem::path& path, std::string_view contents);

absl::StatusOr<std::string> ReadFileToString(const std::filesystem::path& path);

// The entries of a directory (without "." and ".."), in no particular order.
absl::StatusOr<std::vector<std::filesystem::path>> ListDir(const std::filesystem::path& dir);

}  // namespace runnel::storage

#endif  // RUNNEL_STORAGE_FILE_H_
