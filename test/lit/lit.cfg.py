# -*- Python -*-
import os

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "DELTAFLOW"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.excludes = ["Inputs", "CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.deltaflow_obj_root, "test", "lit")

config.substitutions.append(("%PATH%", config.environment["PATH"]))
config.substitutions.append(("%examples", os.path.join(config.deltaflow_src_root, "examples")))
config.substitutions.append(("%srcroot", config.deltaflow_src_root))
config.substitutions.append(("%python", config.python_executable))
config.substitutions.append(("%deltaflow_bin", config.deltaflow_tools_dir))
config.substitutions.append(
    ("%dilated_plugin", os.path.join(config.deltaflow_lib_dir, "libDeltaflowDilatedPolicy.so")))

# %numpy: a Python with NumPy for the float64 reference checks. The project's
# install script puts python3-numpy into the system Python, which need not be
# the interpreter CMake found.
import subprocess
numpy_python = None
for candidate in [config.python_executable, "/usr/bin/python3"]:
    try:
        subprocess.run([candidate, "-c", "import numpy"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        numpy_python = candidate
        break
    except (OSError, subprocess.CalledProcessError):
        pass
# arm64: the aarch64 runtime (scripts/build-arm64.sh) under qemu-user.
import shutil
arm64_run = os.path.join(config.deltaflow_src_root, "build-arm64", "bin", "deltaflow-run")
qemu = shutil.which("qemu-aarch64-static")
if qemu and os.path.exists(arm64_run) and shutil.which("aarch64-linux-gnu-g++"):
    config.available_features.add("arm64-qemu")
    config.substitutions.append(("%arm64_run", arm64_run))
    config.substitutions.append(
        ("%qemu", qemu + " -L /usr/aarch64-linux-gnu -E LD_LIBRARY_PATH=/usr/lib/aarch64-linux-gnu"))

# ptxas (a CUDA toolkit's; CI has none): register and spill reports of the
# generated PTX.
ptxas = shutil.which("ptxas") or ("/usr/local/cuda/bin/ptxas" if os.path.exists("/usr/local/cuda/bin/ptxas") else None)
if ptxas:
    config.available_features.add("ptxas")
    config.substitutions.append(("%ptxas", ptxas))

# GPU modules are only run where the CUDA driver is present.
import ctypes
try:
    ctypes.CDLL("libcuda.so.1")
except OSError:
    config.available_features.add("no-cuda-driver")

# pocl: an OpenCL implementation on the CPU, for the GPU schedules.
try:
    ctypes.CDLL("libOpenCL.so.1")
    if os.path.exists("/etc/OpenCL/vendors/pocl.icd"):
        config.available_features.add("pocl")
        # CUDA launches at most 1024 threads per block; pocl's default limit
        # (4096) would let a GPU schedule with larger blocks pass here and
        # fail on the device.
        config.environment["POCL_MAX_WORK_GROUP_SIZE"] = "1024"
except OSError:
    pass

if numpy_python:
    config.available_features.add("numpy")
    config.substitutions.append(("%numpy", numpy_python))

# The sanitizers' settings reach the tools (scripts/sanitize.sh sets them).
llvm_config.with_system_environment(["HOME", "INCLUDE", "LIB", "TMP", "TEMP",
                                     "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"])
llvm_config.use_default_substitutions()
llvm_config.add_tool_substitutions(["not", "count"], [config.llvm_tools_dir])

tool_dirs = [config.deltaflow_tools_dir, config.llvm_tools_dir]
tools = ["deltaflow-opt"]
# A runtime-only build's lit configuration (scripts/sanitize.sh) runs its own
# deltaflow-run (with ASan and UBSan) and the full build's compiler tools.
deltaflow_run = getattr(config, "deltaflow_run", "")
for optional in ["deltaflow-compile", "deltaflow-run", "deltaflow-bench"]:
    if optional == "deltaflow-run" and deltaflow_run:
        tools.append(ToolSubst("deltaflow-run", command=deltaflow_run))
        config.available_features.add(optional)
    elif os.path.exists(os.path.join(config.deltaflow_tools_dir, optional)):
        tools.append(optional)
        config.available_features.add(optional)
llvm_config.add_tool_substitutions(tools, tool_dirs)

# deltaflow-run shard under Open MPI's launcher (as root in CI: Open MPI
# refuses root without --allow-run-as-root; --oversubscribe: more ranks
# than cores on a 2-core machine).
mpirun = getattr(config, "deltaflow_mpiexec", "") or shutil.which("mpirun")
if mpirun and getattr(config, "deltaflow_mpi", "") in ("ON", "1", "TRUE", "YES"):
    config.available_features.add("mpi")
    config.substitutions.append(("%mpirun", mpirun + " --allow-run-as-root --oversubscribe"))
