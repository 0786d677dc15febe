//===- MpiCommunicator.cpp - Communicator on MPI ---------------------------===//
//
// Built when CMake finds MPI (Debian's libopenmpi-dev); otherwise
// NoMpi.cpp says so at run time. Collectives are the non-blocking forms,
// polled against a deadline, so that a rank that never arrives is a
// bounded, named error rather than a hang.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Runtime/Communicator.h"

#include <mpi.h>

#include <chrono>
#include <limits>
#include <utility>
#include <cstdlib>
#include <stdexcept>
#include <thread>
#include <vector>

namespace deltaflow::rt {

namespace {

class MpiCommunicator : public Communicator {
public:
  explicit MpiCommunicator(double timeout) : timeout_(timeout) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      int provided = 0;
      // Only the main thread calls MPI (the TBB workers never do).
      if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) !=
          MPI_SUCCESS)
        throw std::runtime_error("MPI_Init failed");
      if (provided < MPI_THREAD_FUNNELED)
        throw std::runtime_error("this MPI does not support MPI_THREAD_FUNNELED");
      std::atexit([] {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (!finalized)
          MPI_Finalize();
      });
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void allGather(const void *send, size_t bytes, void *recv) override {
    checkBytes(bytes, "an allgather");
    auto t0 = std::chrono::steady_clock::now();
    auto [count, type] = units(bytes);
    MPI_Request req;
    if (MPI_Iallgather(send, count, type, recv, count, type, MPI_COMM_WORLD, &req) !=
        MPI_SUCCESS)
      throw error("MPI_Iallgather failed");
    wait({req}, t0, "allgather");
  }
  void gather(const void *send, size_t bytes, void *recv, int root) override {
    checkBytes(bytes, "a gather");
    auto t0 = std::chrono::steady_clock::now();
    auto [count, type] = units(bytes);
    MPI_Request req;
    if (MPI_Igather(send, count, type, recv, count, type, root, MPI_COMM_WORLD, &req) !=
        MPI_SUCCESS)
      throw error("MPI_Igather failed");
    wait({req}, t0, "gather to rank " + std::to_string(root));
  }
  void checkBytes(size_t bytes, const std::string &what) const override {
    // Counts are ints: of 4-byte units where the size allows (8 GiB).
    size_t limit = size_t(std::numeric_limits<int>::max()) * (bytes % 4 == 0 ? 4 : 1);
    if (bytes > limit)
      throw error(what + " of " +
                               std::to_string(bytes) + " bytes is more than one MPI message "
                               "carries (" + std::to_string(limit) + ")");
  }
  void sendRecv(const void *send, size_t sendBytes, int dest, void *recv,
                size_t recvBytes, int source) override {
    checkBytes(sendBytes, "a send");
    checkBytes(recvBytes, "a receive");
    auto t0 = std::chrono::steady_clock::now();
    auto [rc, rt] = units(recvBytes);
    auto [sc, st] = units(sendBytes);
    MPI_Request reqs[2];
    if (MPI_Irecv(recv, rc, rt, source, 0, MPI_COMM_WORLD, &reqs[0]) != MPI_SUCCESS ||
        MPI_Isend(send, sc, st, dest, 0, MPI_COMM_WORLD, &reqs[1]) != MPI_SUCCESS)
      throw error("MPI_Isend/MPI_Irecv failed");
    wait({reqs[0], reqs[1]}, t0, "ring exchange with ranks " + std::to_string(source) +
                                     " and " + std::to_string(dest));
  }
  std::string describe() const override {
    char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int n = 0;
    MPI_Get_library_version(v, &n);
    std::string s(v, size_t(n));
    if (size_t cut = s.find(','); cut != std::string::npos)
      s.resize(cut);
    return "MPI (" + s + ")";
  }
  [[noreturn]] void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::exit(code);
  }

private:
  /// An error naming this rank, as every error of the communicator does:
  /// "rank r of N: what".
  std::runtime_error error(const std::string &what) const {
    return std::runtime_error("rank " + std::to_string(rank_) + " of " +
                              std::to_string(size_) + ": " + what);
  }
  /// `bytes` as an MPI count and type: 4-byte units where it divides.
  static std::pair<int, MPI_Datatype> units(size_t bytes) {
    return bytes % 4 == 0 ? std::make_pair(int(bytes / 4), MPI_INT)
                          : std::make_pair(int(bytes), MPI_BYTE);
  }
  /// Polls `reqs` until done, or throws naming this rank after the timeout.
  void wait(std::vector<MPI_Request> reqs, std::chrono::steady_clock::time_point t0,
            const std::string &what) {
    for (int done = 0;;) {
      MPI_Testall(int(reqs.size()), reqs.data(), &done, MPI_STATUSES_IGNORE);
      if (done)
        break;
      double waited =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (waited > timeout_)
        throw error(
            what + " did not complete within " + std::to_string(int(timeout_)) +
            " s (a rank stopped or is stuck; --timeout or DELTAFLOW_COLLECTIVE_TIMEOUT "
            "sets the limit)");
      std::this_thread::sleep_for(std::chrono::microseconds(waited > 0.01 ? 200 : 0));
    }
    commSeconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  double timeout_;
  int rank_ = 0, size_ = 1;
};

} // namespace

bool haveMpi() { return true; }

std::unique_ptr<Communicator> mpiCommunicator(double timeoutSeconds) {
  return std::make_unique<MpiCommunicator>(timeoutSeconds);
}

} // namespace deltaflow::rt
