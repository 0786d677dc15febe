//===- HalideParallelRuntime.cpp - Halide's parallel loops on oneTBB ------===//
//
// Each compiled .so carries its own Halide runtime. After dlopen the loader
// installs these hooks through that module's halide_set_custom_do_par_for /
// halide_set_custom_do_task, so Halide's parallel loops run as
// tbb::parallel_for in the caller's task arena: one thread pool, no
// oversubscription. Schedules never use .async(), which would bypass this.
//
//===----------------------------------------------------------------------===//

#include "HalideParallelRuntime.h"

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>

#include <atomic>

namespace deltaflow::rt::detail {

int tbbDoTask(void *userContext, halide_task_t f, int idx, uint8_t *closure) {
  return f(userContext, idx, closure);
}

int tbbDoParFor(void *userContext, halide_task_t f, int min, int size,
                uint8_t *closure) {
  if (size <= 0)
    return 0;
  if (size == 1)
    return f(userContext, min, closure);
  std::atomic<int> result{0};
  tbb::parallel_for(
      tbb::blocked_range<int>(min, min + size, 1),
      [&](const tbb::blocked_range<int> &r) {
        for (int i = r.begin(); i != r.end(); ++i) {
          if (result.load(std::memory_order_relaxed) != 0)
            return;
          int rc = f(userContext, i, closure);
          if (rc != 0) {
            int expected = 0;
            result.compare_exchange_strong(expected, rc);
          }
        }
      });
  return result.load();
}

} // namespace deltaflow::rt::detail
