// The storage engine's one file-system interface: an owned descriptor with positional
// I/O, the byte range of a file that reads hand out, the write-temp, fsync, rename idiom
// for small metadata files, and the namespace operations (open, rename, unlink, mkdir -p,
// stat, list). Nothing in storage/ or the broker's data files calls the OS for these.
//
// Two implementations, chosen once per process: POSIX (the default), and an in-memory
// one (UseMemoryFileSystem, memory_file_system.h) where every file is a memfd_create(2)
// descriptor named in an in-memory namespace. Either way a File is a real descriptor, so
// reads, writes, fsync, mmap and sendfile use it directly: only the namespace operations
// below dispatch on the choice (one predictable branch each), never the data path.
//
// A File closes its descriptor when the last shared_ptr to it goes away, so a FileRange
// (whose keep_alive holds the File) stays readable after its segment is closed or its
// files are unlinked.
// Errors: ENOENT becomes NotFound, every other errno Internal (the broker reports
// KAFKA_STORAGE_ERROR); messages name the operation and the path. The memory file system
// gives the errno a POSIX file system would.
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
  // open(2) with O_CLOEXEC added. In memory, a new descriptor of the file's memfd, which
  // is always readable and writable whatever the access mode asked.
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

// Switches this process to the in-memory file system: from then on no file or directory
// is created, opened or removed on disk by the functions here; paths name entries of an
// in-memory namespace (relative ones resolved against the working directory), which
// lives until the process exits. Invariant: call it once, before anything is opened;
// there is no way back (tests use memory_file_system.h's scoped override).
void UseMemoryFileSystem();
bool UsingMemoryFileSystem();

// What stat(2) says of a path; mtime in milliseconds since the epoch.
struct FileInfo {
  bool is_directory = false;
  uint64_t size = 0;
  int64_t mtime_ms = 0;
};
// stat(2): NotFound if nothing is there.
absl::StatusOr<FileInfo> Stat(const std::filesystem::path& path);
// Whether something, a directory, a regular file is there; false on any error.
bool PathExists(const std::filesystem::path& path);
bool IsDirectory(const std::filesystem::path& path);
bool IsRegularFile(const std::filesystem::path& path);

// rename(2): atomically replaces `to` (a file, or an empty directory when `from` is one).
absl::Status RenameFile(const std::filesystem::path& from, const std::filesystem::path& to);
// unlink(2): NotFound if absent.
absl::Status RemoveFile(const std::filesystem::path& path);
// Removes `path` and everything below it; fine if it does not exist.
absl::Status RemoveAll(const std::filesystem::path& path);
// mkdir -p: creates `dir` and its missing parents; fine if it is a directory already.
absl::Status CreateDirectories(const std::filesystem::path& dir);

// fsync(2) on a directory, making file creations, renames and unlinks in it durable.
// In memory there is nothing to make durable: it only checks that the directory exists.
absl::Status SyncDir(const std::filesystem::path& dir);

// Replaces `path` with `contents` atomically: writes `<path>.tmp`, fsyncs it, renames it
// over `path` and fsyncs the directory. A crash leaves either the old or the new file
// (and maybe a stale .tmp, which readers ignore). With sync=false nothing is fsynced: a
// crash may then also leave no file or an empty one, until SyncFileAndDir(path).
absl::Status WriteFileAtomically(const std::filesystem::path& path, std::string_view contents,
                                 bool sync = true);
// fsyncs a file and then its directory.
absl::Status SyncFileAndDir(const std::filesystem::path& path);

absl::StatusOr<std::string> ReadFileToString(const std::filesystem::path& path);

// The names of a directory's entries (without "." and ".."), in no particular order.
absl::StatusOr<std::vector<std::string>> ListDir(const std::filesystem::path& dir);

}  // namespace runnel::storage

#endif  // RUNNEL_STORAGE_FILE_H_
