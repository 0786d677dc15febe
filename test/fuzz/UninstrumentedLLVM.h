//===- UninstrumentedLLVM.h - LLVM headers in an ASan build ------*- C++ -*-===//
//
// Force-included (-include) into every C++ file of a sanitized full build
// (top-level CMakeLists.txt, DELTAFLOW_SANITIZE with address): Debian's
// libLLVM and libMLIR are not built with ASan, but LLVM's headers poison and
// unpoison BumpPtrAllocator slabs whenever the file including them is
// (llvm/Support/Compiler.h, Allocator.h). An inline copy in an instrumented
// file then poisons a fresh slab that the library's own, uninstrumented copy
// goes on allocating from without unpoisoning, and the next memcpy into that
// memory is a false "use-after-poison" (seen in StringAttr::get under the
// attn attribute parser). Here the two hooks are no-ops for LLVM's headers;
// ASan still checks every heap allocation and our own code as usual.
//
//===----------------------------------------------------------------------===//
#ifndef DELTAFLOW_TEST_FUZZ_UNINSTRUMENTEDLLVM_H
#define DELTAFLOW_TEST_FUZZ_UNINSTRUMENTEDLLVM_H

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#define __asan_poison_memory_region(p, size) ((void)(p), (void)(size))
#define __asan_unpoison_memory_region(p, size) ((void)(p), (void)(size))
#endif
#endif

#endif // DELTAFLOW_TEST_FUZZ_UNINSTRUMENTEDLLVM_H
