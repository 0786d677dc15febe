//===- Communicator.h - the ranks of a context-parallel run -----*- C++ -*-===//
//
// One process per device (a CPU node's process, or a GPU): the ranks of a
// context-parallel run exchange their attention partials (ContextParallel.h)
// through a communicator. Implementations sit on existing engines: MPI for
// CPU processes (Debian's Open MPI; rank and size from mpirun). Every
// collective is bounded in time and fails in one line naming the rank
// ("rank r of N: ...").
//
//===----------------------------------------------------------------------===//
#ifndef DELTAFLOW_RUNTIME_COMMUNICATOR_H
#define DELTAFLOW_RUNTIME_COMMUNICATOR_H

#include <cstddef>
#include <memory>
#include <string>

namespace deltaflow::rt {

class Communicator {
public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// Every rank's `bytes` bytes of `send`, in rank order, into `recv`
  /// (size() * bytes). Throws std::runtime_error naming this rank when the
  /// collective fails or does not complete within the timeout; after a
  /// timeout the run cannot go on (requests stay pending on the buffers):
  /// call abort().
  virtual void allGather(const void *send, size_t bytes, void *recv) = 0;
  /// Every rank's `bytes` bytes of `send`, in rank order, into `recv` on
  /// rank `root` only (size() * bytes there; unused elsewhere).
  virtual void gather(const void *send, size_t bytes, void *recv, int root) = 0;
  /// Throws naming `what` when `bytes` is more than one message can carry.
  virtual void checkBytes(size_t bytes, const std::string &what) const = 0;
  /// Sends `sendBytes` bytes to rank `dest` while receiving `recvBytes`
  /// from rank `source` (one step of a ring). Same errors as allGather.
  virtual void sendRecv(const void *send, size_t sendBytes, int dest, void *recv,
                        size_t recvBytes, int source) = 0;
  /// "MPI (Open MPI v4.1.4)" and the like.
  virtual std::string describe() const = 0;
  /// Ends every rank of the run with `code` (after an error on this one
  /// that the others cannot learn through a collective).
  [[noreturn]] virtual void abort(int code) = 0;
  /// Seconds spent in collectives so far.
  double commSeconds = 0;
};

/// Whether this build has MPI (libopenmpi-dev at configure time).
bool haveMpi();

/// The MPI communicator of this process (MPI_COMM_WORLD; MPI_Init on the
/// first call): rank and size from the launcher (mpirun -np N), or a
/// single rank when started alone. Collectives time out after
/// `timeoutSeconds`. Throws one line when the build has no MPI.
std::unique_ptr<Communicator> mpiCommunicator(double timeoutSeconds);

} // namespace deltaflow::rt

#endif // DELTAFLOW_RUNTIME_COMMUNICATOR_H
