//===- ManifestFuzzer.cpp - the module manifest reader --------------------===//
//
// Input: a manifest's JSON text. manifest::fromJson parses and checks it as
// Module::load does before it opens the library. An accepted manifest must
// round-trip (fromJson(toJson(m)) == m, and toJson is a fixed point), and
// what the runtime computes from it without the library must hold up: the
// read-after-write dependencies, every tensor's shape resolved from small
// input shapes, their byte sizes, and the buffer plan.
//
//===----------------------------------------------------------------------===//

#include "FuzzCommon.h"

#include "deltaflow/Common/KernelGraph.h"
#include "deltaflow/Common/Manifest.h"

#include <exception>

using namespace deltaflow;
using namespace deltaflow::manifest;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const std::string text(reinterpret_cast<const char *>(data), size);
  ModuleSpec m;
  try {
    m = fromJson(text, "fuzz.manifest.json");
  } catch (const std::exception &) {
    return 0;
  }
  std::string json = toJson(m);
  ModuleSpec back = fromJson(json, "toJson of the fuzz manifest"); // must parse
  FUZZ_CHECK(back == m);
  FUZZ_CHECK(toJson(back) == json);

  for (const EntrySpec &e : m.entries) {
    // deps only name earlier kernels (fromJson checks), as the planner needs.
    std::vector<PlanKernel> plan;
    for (size_t i = 0; i < e.kernels.size(); ++i) {
      const KernelSpec &k = e.kernels[i];
      for (size_t d : k.deps)
        FUZZ_CHECK(d < i);
      plan.push_back({k.inputs, k.outputs, k.deps});
      for (Arg a : {Arg::Query, Arg::Key, Arg::Value, Arg::Out, Arg::Indices}) {
        int at = k.argIndex(a);
        FUZZ_CHECK(at < int(k.inputs.size() + k.outputs.size()));
        if (at >= 0)
          (void)k.buffer(a); // present: must not throw
      }
    }
    std::vector<std::vector<size_t>> raw = readAfterWriteDeps(e.kernels);
    FUZZ_CHECK(raw.size() == e.kernels.size());
    for (size_t i = 0; i < raw.size(); ++i)
      for (size_t d : raw[i])
        FUZZ_CHECK(d < i);

    // Inputs of a few rows each, as a small run would pass them.
    std::map<std::string, std::vector<int64_t>> shapes;
    for (const TensorSpec &t : e.inputs) {
      std::vector<int64_t> s;
      for (const Dim &d : t.shape)
        s.push_back(d.isStatic() ? d.size : 3);
      shapes[t.name] = s;
    }
    std::map<std::string, size_t> temps;
    for (const auto *list : {&e.inputs, &e.outputs, &e.temporaries, &e.valueBuffers})
      for (const TensorSpec &t : *list) {
        (void)t.shapeString();
        // A dimension beyond int64 is a ManifestError (as at run time).
        try {
          for (int64_t d : resolveShape(t, shapes))
            FUZZ_CHECK(d >= 0);
          (void)bytesAt(t, 5);
          if (list == &e.temporaries)
            temps[t.name] = bytesAt(t, 2) % (size_t(1) << 40);
        } catch (const ManifestError &) {
        }
      }
    BufferPlan p = planBuffers(plan, temps);
    for (const auto &[name, bytes] : temps) {
      FUZZ_CHECK(p.offset.count(name));
      FUZZ_CHECK(p.offset.at(name) % 64 == 0);
      FUZZ_CHECK(p.offset.at(name) + bytes <= p.arenaBytes);
    }
  }
  return 0;
}
