//===- HalideParallelRuntime.h - TBB hooks for Halide (private) -*- C++ -*-===//
#ifndef DELTAFLOW_RUNTIME_LIB_HALIDEPARALLELRUNTIME_H
#define DELTAFLOW_RUNTIME_LIB_HALIDEPARALLELRUNTIME_H

#include "HalideRuntime.h"

namespace deltaflow::rt::detail {
int tbbDoTask(void *userContext, halide_task_t f, int idx, uint8_t *closure);
int tbbDoParFor(void *userContext, halide_task_t f, int min, int size,
                uint8_t *closure);
} // namespace deltaflow::rt::detail

#endif
