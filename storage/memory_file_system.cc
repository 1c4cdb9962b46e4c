#include "storage/memory_file_system.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <utility>

namespace runnel::storage {
namespace {

// memfd_create(2) names are for /proc/PID/fd only; at most 249 bytes.
std::string MemfdName(const std::string& path) {
  std::string name = std::filesystem::path(path).filename().string();
  if (name.size() > 200) name.resize(200);
  return name;
}

absl::StatusOr<int> Dup(int fd, const std::string& path) {
  int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return ErrnoError("open", path, errno);
  return copy;
}

}  // namespace

MemoryFileSystem::MemoryFileSystem() { entries_["/"] = kDirectory; }

MemoryFileSystem::~MemoryFileSystem() {
  for (const auto& [path, fd] : entries_) {
    if (fd != kDirectory) ::close(fd);
  }
}

std::string MemoryFileSystem::Normalize(const std::filesystem::path& path) {
  std::filesystem::path p = path;
  if (!p.is_absolute()) {
    std::error_code ec;
    p = std::filesystem::current_path(ec) / p;  // getcwd(3): touches nothing
  }
  std::string s = p.lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

std::string MemoryFileSystem::ChildPrefix(const std::string& dir) {
  return dir == "/" ? dir : dir + "/";
}

int MemoryFileSystem::ParentError(const std::string& path) const {
  if (path == "/") return 0;
  std::string parent = std::filesystem::path(path).parent_path().string();
  auto it = entries_.find(parent);
  if (it == entries_.end()) return ENOENT;
  return it->second == kDirectory ? 0 : ENOTDIR;
}

std::pair<std::map<std::string, int>::iterator, std::map<std::string, int>::iterator>
MemoryFileSystem::Below(const std::string& dir) {
  if (dir == "/") return {entries_.upper_bound("/"), entries_.end()};
  // '0' follows '/' in ASCII: [dir + "/", dir + "0") is exactly the keys below dir.
  return {entries_.lower_bound(dir + "/"), entries_.lower_bound(dir + "0")};
}

std::pair<std::map<std::string, int>::const_iterator, std::map<std::string, int>::const_iterator>
MemoryFileSystem::Below(const std::string& dir) const {
  if (dir == "/") return {entries_.upper_bound("/"), entries_.end()};
  return {entries_.lower_bound(dir + "/"), entries_.lower_bound(dir + "0")};
}

bool MemoryFileSystem::HasChildren(const std::string& dir) const {
  auto [begin, end] = Below(dir);
  return begin != end;
}

void MemoryFileSystem::Erase(const std::string& key) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  auto [begin, end] = Below(key);
  for (auto child = begin; child != end; ++child) {
    if (child->second != kDirectory) ::close(child->second);
  }
  entries_.erase(begin, end);
  if (key == "/") return;  // the root itself stays
  it = entries_.find(key);
  if (it->second != kDirectory) ::close(it->second);
  entries_.erase(it);
}

absl::StatusOr<int> MemoryFileSystem::Open(const std::filesystem::path& path, int flags) {
  const std::string key = Normalize(path);
  const bool writable = (flags & O_ACCMODE) != O_RDONLY;
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    if ((flags & O_CREAT) && (flags & O_EXCL)) return ErrnoError("open", path, EEXIST);
    if (it->second == kDirectory) {
      if (writable) return ErrnoError("open", path, EISDIR);
      // A descriptor to fsync and close, like one of a real directory.
      int fd = ::memfd_create(MemfdName(key).c_str(), MFD_CLOEXEC);
      if (fd < 0) return ErrnoError("open", path, errno);
      return fd;
    }
    if (flags & O_DIRECTORY) return ErrnoError("open", path, ENOTDIR);
    if ((flags & O_TRUNC) && writable && ::ftruncate(it->second, 0) != 0) {
      return ErrnoError("open", path, errno);
    }
    return Dup(it->second, path.string());
  }
  if (!(flags & O_CREAT)) return ErrnoError("open", path, ENOENT);
  if (int err = ParentError(key); err != 0) return ErrnoError("open", path, err);
  int fd = ::memfd_create(MemfdName(key).c_str(), MFD_CLOEXEC);
  if (fd < 0) return ErrnoError("open", path, errno);
  absl::StatusOr<int> copy = Dup(fd, path.string());
  if (!copy.ok()) {
    ::close(fd);
    return copy.status();
  }
  entries_.emplace(key, fd);
  return copy;
}

absl::StatusOr<FileInfo> MemoryFileSystem::Stat(const std::filesystem::path& path) const {
  auto it = entries_.find(Normalize(path));
  if (it == entries_.end()) return ErrnoError("stat", path, ENOENT);
  FileInfo info;
  if (it->second == kDirectory) {
    info.is_directory = true;
    return info;
  }
  struct stat st;
  if (::fstat(it->second, &st) != 0) return ErrnoError("stat", path, errno);
  info.size = static_cast<uint64_t>(st.st_size);
  info.mtime_ms = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
  return info;
}

absl::Status MemoryFileSystem::Rename(const std::filesystem::path& from,
                                      const std::filesystem::path& to) {
  const std::string src = Normalize(from);
  const std::string dst = Normalize(to);
  auto s = entries_.find(src);
  if (s == entries_.end()) return ErrnoError("rename", from, ENOENT);
  if (int err = ParentError(dst); err != 0) return ErrnoError("rename", from, err);
  if (src == dst) return absl::OkStatus();
  const bool src_dir = s->second == kDirectory;
  if (src_dir && (src == "/" || dst.starts_with(ChildPrefix(src)))) {
    return ErrnoError("rename", from, EINVAL);  // into its own subtree
  }
  if (auto d = entries_.find(dst); d != entries_.end()) {
    const bool dst_dir = d->second == kDirectory;
    if (!src_dir && dst_dir) return ErrnoError("rename", from, EISDIR);
    if (src_dir && !dst_dir) return ErrnoError("rename", from, ENOTDIR);
    if (dst_dir && (dst == "/" || HasChildren(dst))) return ErrnoError("rename", from, ENOTEMPTY);
    Erase(dst);
  }
  // Move src and its subtree under the new name.
  std::vector<std::pair<std::string, int>> moved = {{dst, s->second}};
  entries_.erase(s);
  auto [begin, end] = Below(src);
  for (auto it = begin; it != end; ++it) {
    moved.emplace_back(dst + it->first.substr(src.size()), it->second);
  }
  entries_.erase(begin, end);
  for (auto& [key, fd] : moved) entries_.emplace(std::move(key), fd);
  return absl::OkStatus();
}

absl::Status MemoryFileSystem::Unlink(const std::filesystem::path& path) {
  const std::string key = Normalize(path);
  auto it = entries_.find(key);
  if (it == entries_.end()) return ErrnoError("unlink", path, ENOENT);
  if (it->second == kDirectory) return ErrnoError("unlink", path, EISDIR);
  ::close(it->second);  // descriptors opened before keep the memfd alive
  entries_.erase(it);
  return absl::OkStatus();
}

absl::Status MemoryFileSystem::RemoveAll(const std::filesystem::path& path) {
  std::string key = Normalize(path);
  if (key == "/") return ErrnoError("remove", path, EBUSY);
  Erase(key);
  return absl::OkStatus();
}

absl::Status MemoryFileSystem::CreateDirectories(const std::filesystem::path& dir) {
  const std::string key = Normalize(dir);
  std::string prefix;
  for (const std::filesystem::path& part : std::filesystem::path(key)) {
    if (prefix.empty()) {
      prefix = "/";
      continue;  // the root
    }
    prefix = prefix == "/" ? "/" + part.string() : prefix + "/" + part.string();
    auto [it, inserted] = entries_.emplace(prefix, kDirectory);
    if (!inserted && it->second != kDirectory) {
      return ErrnoError("mkdir", dir, prefix == key ? EEXIST : ENOTDIR);
    }
  }
  return absl::OkStatus();
}

absl::Status MemoryFileSystem::SyncDir(const std::filesystem::path& dir) const {
  auto it = entries_.find(Normalize(dir));
  if (it == entries_.end()) return ErrnoError("open", dir, ENOENT);
  if (it->second != kDirectory) return ErrnoError("open", dir, ENOTDIR);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> MemoryFileSystem::List(
    const std::filesystem::path& dir) const {
  const std::string key = Normalize(dir);
  auto it = entries_.find(key);
  if (it == entries_.end()) return ErrnoError("readdir", dir, ENOENT);
  if (it->second != kDirectory) return ErrnoError("readdir", dir, ENOTDIR);
  std::vector<std::string> out;
  const size_t prefix = ChildPrefix(key).size();
  auto [begin, end] = Below(key);
  for (it = begin; it != end; ++it) {
    std::string_view name = std::string_view(it->first).substr(prefix);
    if (name.find('/') == std::string_view::npos) out.emplace_back(name);
  }
  return out;
}

}  // namespace runnel::storage
