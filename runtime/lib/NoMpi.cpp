//===- NoMpi.cpp - Communicator entry points of a build without MPI --------===//

#include "deltaflow/Runtime/Communicator.h"

#include <stdexcept>

namespace deltaflow::rt {

bool haveMpi() { return false; }

std::unique_ptr<Communicator> mpiCommunicator(double) {
  throw std::runtime_error(
      "this deltaflow-run was built without MPI: install libopenmpi-dev and "
      "openmpi-bin (scripts/install-deps.sh does) and rebuild");
}

} // namespace deltaflow::rt
