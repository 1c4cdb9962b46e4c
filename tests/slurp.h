// Test helper shared by the storage tests: a whole file's bytes.
#ifndef RUNNEL_TESTS_SLURP_H_
#define RUNNEL_TESTS_SLURP_H_

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace runnel::storage {

// The file's bytes; empty if it cannot be read.
inline std::string Slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace runnel::storage

#endif  // RUNNEL_TESTS_SLURP_H_
