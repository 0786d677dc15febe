# Third-party libraries other than MLIR.

find_path(HALIDE_INCLUDE_DIR Halide.h PATHS /usr/include/halide14 REQUIRED NO_DEFAULT_PATH)
find_library(HALIDE_LIBRARY NAMES Halide14 Halide REQUIRED)
add_library(deltaflow_halide SHARED IMPORTED GLOBAL)
set_target_properties(deltaflow_halide PROPERTIES
  IMPORTED_LOCATION "${HALIDE_LIBRARY}"
  INTERFACE_INCLUDE_DIRECTORIES "${HALIDE_INCLUDE_DIR}")
# Halide.h needs RTTI and exceptions; LLVM's flags turn both off. Files that
# include Halide.h must not include MLIR/LLVM headers (see compiler/).
set(DELTAFLOW_HALIDE_CXX_FLAGS -frtti -fexceptions)

# Header-only HalideRuntime.h for the runtime, which never links libHalide.
add_library(deltaflow_halide_runtime_headers INTERFACE)
target_include_directories(deltaflow_halide_runtime_headers SYSTEM INTERFACE "${HALIDE_INCLUDE_DIR}")

find_package(TBB REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(GTest REQUIRED)
find_package(Threads REQUIRED)
