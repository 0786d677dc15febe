//===- Session.h - model state for prefill and decode -----------*- C++ -*-===//
//
// A Model is a compiled module with `prefill` and `decode` entries plus its
// weights (memory-mapped .safetensors). A Session owns what one generation
// needs: the position, a KV cache per kv_cache input (reserved for the
// capacity, pages committed as they are written), and the selection cache
// of token-select decode. Sessions of one Model may run concurrently from
// several threads.
//
//===----------------------------------------------------------------------===//
#ifndef DELTAFLOW_RUNTIME_SESSION_H
#define DELTAFLOW_RUNTIME_SESSION_H

#include "deltaflow/Runtime/Executor.h"
#include "deltaflow/Runtime/Checkpoint.h"

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace deltaflow::rt {

class Model {
public:
  /// Loads the module and the weights (a .safetensors file or a Hugging Face
  /// checkpoint directory, see Checkpoint.h), and validates every `weight`
  /// input of both entries against them (names, shapes, dtypes).
  static std::shared_ptr<Model> load(const std::string &soPath,
                                     const std::string &weightsPath,
                                     int threads = 0, int device = -1);
  Executor &executor() { return *executor_; }
  const Module &module() const { return *module_; }
  const std::map<std::string, Tensor> &weights() const { return weights_; }
  size_t weightBytes() const;
  int64_t vocab() const { return vocab_; }

private:
  std::shared_ptr<Module> module_;
  std::unique_ptr<Executor> executor_;
  std::shared_ptr<Checkpoint> file_;
  std::map<std::string, Tensor> weights_;
  int64_t vocab_ = -1;
};

struct SessionOptions {
  int64_t capacity = 4096;      ///< KV-cache positions
  bool selectionCache = true;   ///< reuse token-select indices in decode
  double theta = 0.9;           ///< reuse while cos(q_t, q_cached) >= theta
  /// CUDA modules: keep the KV cache in GPU memory (new rows written there
  /// by the device). Off: in host memory, copied to the device each step
  /// (llama.cpp's --no-kv-offload), for contexts larger than GPU memory.
  bool kvOffload = true;
};

/// The size of a selection: `indices` [B, heads, chunks, slots] int32 from a
/// select kernel, unused slots -1. `selected`: the slots that hold a key;
/// `rows`: B x heads x chunks. selected / rows is the mean budget (adaptive
/// varies it; every policy selects fewer where a chunk has fewer
/// candidates than its budget). {0, 0} for a tensor that is not dense int32
/// or whose bytes are on a GPU (not hostCurrent).
struct SelectionSize {
  int64_t selected = 0, rows = 0;
};
SelectionSize selectionSize(const Tensor &indices);

struct StepStats {
  double seconds = 0;
  int selectHits = 0, selectMisses = 0;
  int denseFallbacks = 0; ///< sparse kernels that ran dense (context fits)
  /// Selected keys and selection rows of this step's select kernels
  /// (selectionSize); their ratio is the mean budget the policy used.
  int64_t selectedKeys = 0, selectionRows = 0;
  size_t arenaBytes = 0, separateBytes = 0;
  size_t valueBytes = 0; ///< every SSA value in its own buffer (baseline)
  std::vector<KernelTiming> profile;
  /// Set before the call: GPU modules wait after every kernel, so that
  /// `profile` holds each kernel's own time (generate --profile); otherwise
  /// those times are launches, and the step waits once at its end.
  bool timeEachKernel = false;
};

class Session {
public:
  Session(std::shared_ptr<Model> model, SessionOptions options = {});
  ~Session();
  Session(const Session &) = delete;
  Session &operator=(const Session &) = delete;

  /// Runs `tokens` at positions start .. start+n-1; start must be the
  /// session's position. Returns the logits of the last token [1, vocab].
  /// `promptRowsAfter`: the prompt's rows still to come after these (0 for
  /// the call that ends the prompt), so that Δ-correction computes its
  /// dense tail once, for the prompt's last rows, which the first generated
  /// token reads (docs/design.md, "Δ-correction").
  Tensor prefill(const std::vector<int32_t> &tokens, int64_t start,
                 StepStats *stats = nullptr, int64_t promptRowsAfter = 0);
  /// One token at the session's position (after a prefill).
  Tensor decode(int32_t token, StepStats *stats = nullptr);

  int64_t position() const { return pos_; }
  int64_t capacity() const { return opts_.capacity; }
  size_t cacheBytes() const; ///< reserved for the KV cache
  int selectHits() const { return hits_; }
  int selectMisses() const { return misses_; }
  /// Sparse attention kernel runs that took the dense fallback so far.
  int denseFallbacks() const { return fallbacks_; }
  /// Selected keys and selection rows so far (StepStats); 0 and 0 for a
  /// dense module or contexts that fit the kept keys.
  int64_t selectedKeys() const { return selectedKeys_; }
  int64_t selectionRows() const { return selectionRows_; }

private:
  Tensor step(const std::string &entry, const std::vector<int32_t> &tokens,
              StepStats *stats, int64_t promptRowsAfter = 0);
  std::shared_ptr<Model> model_;
  SessionOptions opts_;
  int64_t pos_ = 0;
  struct Cache;
  std::map<std::string, std::unique_ptr<Cache>> caches_;
  struct Selection {
    std::vector<float> q;
    Tensor indices;
  };
  std::mutex selMutex_;
  std::map<std::string, Selection> selections_; ///< per select kernel (layer)
  int hits_ = 0, misses_ = 0, fallbacks_ = 0;
  int64_t selectedKeys_ = 0, selectionRows_ = 0;
};

} // namespace deltaflow::rt

#endif // DELTAFLOW_RUNTIME_SESSION_H
