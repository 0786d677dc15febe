# Compiler executables load two LLVMs (MLIR's LLVM 19 and Halide's LLVM 14).
# The executable must export nothing, or libLLVM-14 may bind to LLVM 19
# template instances inside it. test/lit/tools/no-bindings-into-exe.test checks.
set(DELTAFLOW_EXPORT_NOTHING_MAP "${CMAKE_CURRENT_LIST_DIR}/export-nothing.map")
function(deltaflow_export_nothing target)
  target_link_options(${target} PRIVATE
    "LINKER:--exclude-libs,ALL"
    "LINKER:--version-script=${DELTAFLOW_EXPORT_NOTHING_MAP}")
  set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS "${DELTAFLOW_EXPORT_NOTHING_MAP}")
endfunction()
