//===- FuzzCommon.h - helpers shared by the fuzz targets --------*- C++ -*-===//
//
// A fuzz target rejects bad input the way the tools do (a thrown
// std::exception, a failed parse) and returns 0; it crashes only on a real
// bug: a sanitizer report, an uncaught exception, a broken invariant
// (FUZZ_CHECK), a hang. The same sources build as libFuzzer targets
// (DELTAFLOW_FUZZ=ON, scripts/fuzz.sh) and, everywhere else, as replay
// tools (ReplayMain.cpp) that CTest runs over test/fuzz/corpus/.
//
//===----------------------------------------------------------------------===//
#ifndef DELTAFLOW_TEST_FUZZ_FUZZCOMMON_H
#define DELTAFLOW_TEST_FUZZ_FUZZCOMMON_H

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unistd.h>

/// An invariant of an accepted input; a failure is a bug, not a rejection.
#define FUZZ_CHECK(cond)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__,         \
                   __LINE__, #cond);                                           \
      std::abort();                                                            \
    }                                                                          \
  } while (0)

namespace deltaflow::fuzz {

/// A scratch file of this process (for readers that take a path),
/// rewritten with each input. Under $TMPDIR (default /tmp); removed at exit.
class ScratchFile {
public:
  explicit ScratchFile(const char *suffix) {
    const char *dir = std::getenv("TMPDIR");
    path_ = std::string(dir && *dir ? dir : "/tmp") + "/deltaflow-fuzz-" +
            std::to_string(::getpid()) + "-XXXXXX" + suffix;
    fd_ = ::mkstemps(path_.data(), int(std::strlen(suffix)));
    if (fd_ < 0) {
      std::perror(("mkstemps " + path_).c_str());
      std::abort();
    }
  }
  ~ScratchFile() {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  /// Replaces the file's contents with `data`.
  const std::string &write(const uint8_t *data, size_t size) {
    if (::ftruncate(fd_, 0) != 0) {
      std::perror("ftruncate");
      std::abort();
    }
    size_t done = 0;
    while (done < size) {
      ssize_t n = ::pwrite(fd_, data + done, size - done, off_t(done));
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0) {
        std::perror("pwrite");
        std::abort();
      }
      done += size_t(n);
    }
    return path_;
  }
  const std::string &path() const { return path_; }

private:
  std::string path_;
  int fd_ = -1;
};

} // namespace deltaflow::fuzz

#endif // DELTAFLOW_TEST_FUZZ_FUZZCOMMON_H
