// The in-memory file system behind file.h when log.in.memory=true (LevelDB's MemEnv idea):
// no file or directory is ever created on disk.
//
// A file is an anonymous memfd_create(2) descriptor, so everything done to a File's
// descriptor (pread/pwrite, ftruncate, fstat, fsync, mmap, sendfile) works unchanged and
// its pages live in RAM (shmem; sparse like tmpfs). The namespace is a map from path to
// entry: a directory, or a file with the namespace's own descriptor of its memfd. Open
// hands out a dup of it; unlink and rename only change the map, so a descriptor opened
// before stays readable after its name is gone, as on disk. Paths are made absolute
// (against the working directory) and lexically normalised; "/" always exists.
//
// Semantics follow Linux for what the storage engine does: O_CREAT, O_EXCL, O_TRUNC,
// O_DIRECTORY; a file needs an existing parent directory (ENOENT, ENOTDIR otherwise);
// rename replaces a file, or an empty directory with a directory, moves a directory's
// whole subtree, and refuses EISDIR / ENOTDIR / ENOTEMPTY / EINVAL as rename(2) does;
// unlink of a directory is EISDIR. Not modelled: permissions, links, the access mode (a
// descriptor is always read-write), directory mtimes.
// Thread-compatible, like the rest of the storage engine.
#ifndef RUNNEL_STORAGE_MEMORY_FILE_SYSTEM_H_
#define RUNNEL_STORAGE_MEMORY_FILE_SYSTEM_H_

#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "storage/file.h"

namespace runnel::storage {

class MemoryFileSystem {
 public:
  MemoryFileSystem();
  ~MemoryFileSystem();  // closes the namespace's descriptors; dups handed out live on
  MemoryFileSystem(const MemoryFileSystem&) = delete;
  MemoryFileSystem& operator=(const MemoryFileSystem&) = delete;

  // A new descriptor (close-on-exec) the caller owns.
  absl::StatusOr<int> Open(const std::filesystem::path& path, int flags);
  absl::StatusOr<FileInfo> Stat(const std::filesystem::path& path) const;
  absl::Status Rename(const std::filesystem::path& from, const std::filesystem::path& to);
  absl::Status Unlink(const std::filesystem::path& path);
  absl::Status RemoveAll(const std::filesystem::path& path);
  absl::Status CreateDirectories(const std::filesystem::path& dir);
  absl::Status SyncDir(const std::filesystem::path& dir) const;
  // The entries of `dir` as `dir / name`, sorted by name.
  absl::StatusOr<std::vector<std::string>> List(const std::filesystem::path& dir) const;

 private:
  static constexpr int kDirectory = -1;

  // Absolute, lexically normal, no trailing separator.
  static std::string Normalize(const std::filesystem::path& path);
  // Every key strictly below `dir` starts with this.
  static std::string ChildPrefix(const std::string& dir);
  // The entries strictly below `dir`: contiguous in the map, though not right after
  // `dir` itself ("d-0" and "d.x" sort between "d" and "d/x").
  std::pair<std::map<std::string, int>::iterator, std::map<std::string, int>::iterator> Below(
      const std::string& dir);
  std::pair<std::map<std::string, int>::const_iterator, std::map<std::string, int>::const_iterator>
  Below(const std::string& dir) const;
  // 0 if `path`'s parent is a directory here, else the errno of creating `path`.
  int ParentError(const std::string& path) const;
  bool HasChildren(const std::string& dir) const;
  // Closes and forgets `key` and everything below it.
  void Erase(const std::string& key);

  // Normalised path -> the namespace's descriptor of the file's memfd, or kDirectory.
  std::map<std::string, int> entries_;
};

// Tests only: makes `fs` (nullptr: POSIX) the file system of file.h and returns the one
// it replaces. Nothing opened through the old one may be used afterwards. The caller
// keeps ownership.
MemoryFileSystem* SwapFileSystemForTesting(MemoryFileSystem* fs);

}  // namespace runnel::storage

#endif  // RUNNEL_STORAGE_MEMORY_FILE_SYSTEM_H_
