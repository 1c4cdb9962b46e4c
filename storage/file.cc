#include "storage/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace runnel::storage {

absl::Status ErrnoError(std::string_view op, const std::filesystem::path& path, int err) {
  std::string message = absl::StrCat(absl::string_view(op.data(), op.size()), " ", path.string(),
                                     ": ", std::strerror(err));
  return err == ENOENT ? absl::NotFoundError(message) : absl::InternalError(message);
}

absl::StatusOr<std::shared_ptr<File>> File::Open(const std::filesystem::path& path, int flags,
                                                 mode_t mode) {
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

absl::Status SyncDir(const std::filesystem::path& dir) {
  absl::StatusOr<std::shared_ptr<File>> d = File::Open(dir, O_RDONLY | O_DIRECTORY);
  if (!d.ok()) return d.status();
  return (*d)->Sync();
}

absl::Status WriteFileAtomically(const std::filesystem::path& path, std::string_view contents) {
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  {
    absl::StatusOr<std::shared_ptr<File>> f = File::Open(tmp, O_WRONLY | O_CREAT | O_TRUNC);
    if (!f.ok()) return f.status();
    if (absl::Status s = (*f)->WriteAt(0, contents.data(), contents.size()); !s.ok()) return s;
    if (absl::Status s = (*f)->Sync(); !s.ok()) return s;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoError("rename", tmp, errno);
  return SyncDir(path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path());
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

absl::StatusOr<std::vector<std::filesystem::path>> ListDir(const std::filesystem::path& dir) {
  // The error_code overloads throughout: the storage layer does not throw.
  std::error_code ec;
  std::vector<std::filesystem::path> entries;
  std::filesystem::directory_iterator it(dir, ec);
  for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    entries.push_back(it->path());
  }
  if (ec) return ErrnoError("readdir", dir, ec.value());
  return entries;
}

}  // namespace runnel::storage
