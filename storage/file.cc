#include "storage/file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "storage/memory_file_system.h"

namespace runnel::storage {
namespace {

// nullptr: POSIX. Set once at startup (UseMemoryFileSystem), or by tests.
MemoryFileSystem* memory_fs = nullptr;

}  // namespace

void UseMemoryFileSystem() {
  if (memory_fs == nullptr) memory_fs = new MemoryFileSystem();  // lives as long as the process
}

bool UsingMemoryFileSystem() { return memory_fs != nullptr; }

MemoryFileSystem* SwapFileSystemForTesting(MemoryFileSystem* fs) {
  return std::exchange(memory_fs, fs);
}

absl::Status ErrnoError(std::string_view op, const std::filesystem::path& path, int err) {
  std::string message = absl::StrCat(absl::string_view(op.data(), op.size()), " ", path.string(),
                                     ": ", std::strerror(err));
  return err == ENOENT ? absl::NotFoundError(message) : absl::InternalError(message);
}

absl::StatusOr<std::shared_ptr<File>> File::Open(const std::filesystem::path& path, int flags,
                                                 mode_t mode) {
  if (memory_fs != nullptr) {
    absl::StatusOr<int> fd = memory_fs->Open(path, flags);
    if (!fd.ok()) return fd.status();
    return std::shared_ptr<File>(new File(*fd, path));
  }
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ErrnoError("open", path, errno);
  return std::shared_ptr<File>(new File(fd, path));
}

File::~File() { ::close(fd_); }

absl::StatusOr<size_t> File::ReadAt(uint64_t pos, void* buf, size_t n) const {
  size_t done = 0;
  while (done < n) {
    ssize_t r =
        ::pread(fd_, static_cast<char*>(buf) + done, n - done, static_cast<off_t>(pos + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("pread", path_, errno);
    }
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  return done;
}

absl::Status File::ReadFullyAt(uint64_t pos, void* buf, size_t n) const {
  absl::StatusOr<size_t> r = ReadAt(pos, buf, n);
  if (!r.ok()) return r.status();
  if (*r != n) {
    return absl::DataLossError(
        absl::StrCat("short read of ", n, " bytes at ", pos, " in ", path_.string()));
  }
  return absl::OkStatus();
}

absl::Status File::WriteAt(uint64_t pos, const void* data, size_t n) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pwrite(fd_, static_cast<const char*>(data) + done, n - done,
                         static_cast<off_t>(pos + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("pwrite", path_, errno);
    }
    done += static_cast<size_t>(r);
  }
  return absl::OkStatus();
}

absl::Status File::Truncate(uint64_t size) {
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) return ErrnoError("ftruncate", path_, errno);
  return absl::OkStatus();
}

absl::Status File::Sync() {
  if (::fsync(fd_) != 0) return ErrnoError("fsync", path_, errno);
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> File::Size() const {
  struct stat st;
  if (::fstat(fd_, &st) != 0) return ErrnoError("fstat", path_, errno);
  return static_cast<uint64_t>(st.st_size);
}

absl::StatusOr<FileInfo> Stat(const std::filesystem::path& path) {
  if (memory_fs != nullptr) return memory_fs->Stat(path);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoError("stat", path, errno);
  FileInfo info;
  info.is_directory = S_ISDIR(st.st_mode);
  info.size = static_cast<uint64_t>(st.st_size);
  info.mtime_ms = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
  return info;
}

bool PathExists(const std::filesystem::path& path) {
  if (memory_fs != nullptr) return memory_fs->Stat(path).ok();
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

bool IsDirectory(const std::filesystem::path& path) {
  if (memory_fs != nullptr) {
    absl::StatusOr<FileInfo> info = memory_fs->Stat(path);
    return info.ok() && info->is_directory;
  }
  std::error_code ec;
  return std::filesystem::is_directory(path, ec);
}

bool IsRegularFile(const std::filesystem::path& path) {
  if (memory_fs != nullptr) {
    absl::StatusOr<FileInfo> info = memory_fs->Stat(path);
    return info.ok() && !info->is_directory;
  }
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec);
}

absl::Status RenameFile(const std::filesystem::path& from, const std::filesystem::path& to) {
  if (memory_fs != nullptr) return memory_fs->Rename(from, to);
  if (::rename(from.c_str(), to.c_str()) != 0) return ErrnoError("rename", from, errno);
  return absl::OkStatus();
}

absl::Status RemoveFile(const std::filesystem::path& path) {
  if (memory_fs != nullptr) return memory_fs->Unlink(path);
  if (::unlink(path.c_str()) != 0) return ErrnoError("unlink", path, errno);
  return absl::OkStatus();
}

absl::Status RemoveAll(const std::filesystem::path& path) {
  if (memory_fs != nullptr) return memory_fs->RemoveAll(path);
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) return ErrnoError("remove", path, ec.value());
  return absl::OkStatus();
}

absl::Status CreateDirectories(const std::filesystem::path& dir) {
  if (memory_fs != nullptr) return memory_fs->CreateDirectories(dir);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return ErrnoError("mkdir", dir, ec.value());
  return absl::OkStatus();
}

absl::Status SyncDir(const std::filesystem::path& dir) {
  if (memory_fs != nullptr) return memory_fs->SyncDir(dir);
  absl::StatusOr<std::shared_ptr<File>> d = File::Open(dir, O_RDONLY | O_DIRECTORY);
  if (!d.ok()) return d.status();
  return (*d)->Sync();
}

namespace {

std::filesystem::path ParentDir(const std::filesystem::path& path) {
  return path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
}

}  // namespace

absl::Status WriteFileAtomically(const std::filesystem::path& path, std::string_view contents,
                                 bool sync) {
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  {
    absl::StatusOr<std::shared_ptr<File>> f = File::Open(tmp, O_WRONLY | O_CREAT | O_TRUNC);
    if (!f.ok()) return f.status();
    if (absl::Status s = (*f)->WriteAt(0, contents.data(), contents.size()); !s.ok()) return s;
    if (sync) {
      if (absl::Status s = (*f)->Sync(); !s.ok()) return s;
    }
  }
  if (absl::Status s = RenameFile(tmp, path); !s.ok()) return s;
  return sync ? SyncDir(ParentDir(path)) : absl::OkStatus();
}

absl::Status SyncFileAndDir(const std::filesystem::path& path) {
  absl::StatusOr<std::shared_ptr<File>> f = File::Open(path, O_RDONLY);
  if (!f.ok()) return f.status();
  if (absl::Status s = (*f)->Sync(); !s.ok()) return s;
  return SyncDir(ParentDir(path));
}

absl::StatusOr<std::string> ReadFileToString(const std::filesystem::path& path) {
  absl::StatusOr<std::shared_ptr<File>> f = File::Open(path, O_RDONLY);
  if (!f.ok()) return f.status();
  absl::StatusOr<uint64_t> size = (*f)->Size();
  if (!size.ok()) return size.status();
  std::string contents(*size, '\0');
  absl::StatusOr<size_t> n = (*f)->ReadAt(0, contents.data(), contents.size());
  if (!n.ok()) return n.status();
  contents.resize(*n);
  return contents;
}

absl::StatusOr<std::vector<std::string>> ListDir(const std::filesystem::path& dir) {
  if (memory_fs != nullptr) return memory_fs->List(dir);
  // Plain readdir: a log dir holds a directory per partition, and building a
  // std::filesystem::path per entry was most of the cost of listing it at start.
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return ErrnoError("opendir", dir, errno);
  std::vector<std::string> names;
  errno = 0;
  while (const dirent* entry = ::readdir(d)) {
    std::string_view name = entry->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) return ErrnoError("readdir", dir, err);
  return names;
}

}  // namespace runnel::storage
