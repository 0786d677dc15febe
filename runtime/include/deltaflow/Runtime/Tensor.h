//===- Tensor.h - host tensors over halide_buffer_t -------------*- C++ -*-===//
#ifndef DELTAFLOW_RUNTIME_TENSOR_H
#define DELTAFLOW_RUNTIME_TENSOR_H

#include "deltaflow/Common/Manifest.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct halide_buffer_t;
struct halide_dimension_t;

namespace deltaflow::rt {

/// "[1, 32, 7, 128]".
std::string shapeString(const std::vector<int64_t> &shape);

/// The manifest's element types (deltaflow/Common/Manifest.h).
using manifest::DType;
/// "float32", "float16", "int32", "bfloat16", as manifests and .npy errors
/// spell them.
inline const char *dtypeName(DType t) { return manifest::toString(t); }
inline size_t dtypeSize(DType t) { return manifest::byteSize(t); }

/// A dense, C-ordered (row-major) host tensor. Shapes are outermost first,
/// as in NumPy; the Halide view reverses them (innermost first).
class Tensor {
public:
  Tensor() = default;
  explicit Tensor(std::vector<int64_t> shape, DType dtype = DType::Float32);

  /// A tensor over memory it does not own (no copy): `data` holds the
  /// C-ordered elements and must stay valid while `owner` lives; the tensor
  /// and every copy of it keep `owner` alive. `data` must be non-null and
  /// aligned to the dtype's size. Read-only memory (a PROT_READ mapping)
  /// stays read-only: writing through raw()/f32() faults.
  static Tensor view(std::vector<int64_t> shape, DType dtype, void *data,
                     std::shared_ptr<void> owner);

  const std::vector<int64_t> &shape() const { return shape_; }
  int rank() const { return int(shape_.size()); }
  int64_t numel() const;
  DType dtype() const { return dtype_; }
  size_t bytes() const { return size_t(numel()) * dtypeSize(dtype_); }
  bool defined() const { return data_ != nullptr; }

  void *raw() { return data_.get(); }
  const void *raw() const { return data_.get(); }
  float *f32();
  const float *f32() const;
  int32_t *i32();
  const int32_t *i32() const;

  /// A float32 copy (or this tensor, shared, if already float32).
  Tensor toFloat32() const;
  /// A float16 copy with round-to-nearest-even.
  Tensor toFloat16() const;
  /// A bfloat16 copy with round-to-nearest-even (as torch's .bfloat16()).
  Tensor toBFloat16() const;
  /// A copy in `dtype`: float types round to nearest even; int32 converts
  /// to float32, and nothing converts to int32 but int32 itself (throws).
  Tensor to(DType dtype) const;

  /// A view of the first `length` entries along `dim`, sharing the data and
  /// keeping the strides (a KV-cache view). Such a view is not dense:
  /// address its elements through halideBuffer()'s strides. Where this
  /// tensor has a device allocation (a GPU session's KV cache), the view
  /// aliases it too (Halide's device_crop; released, not freed, with the
  /// view) and takes its dirty flags. Throws if the crop fails.
  Tensor narrow(int dim, int64_t length) const;
  /// This tensor (the same host bytes) whose device copy is `owner`'s
  /// device allocation from `byteOffset` on: a temporary placed in a GPU
  /// run's device arena. Wrapped through the owner's device interface
  /// (wrap_native), detached (not freed) with the returned handle, which
  /// keeps `owner` alive. Throws when `owner` has no device allocation.
  Tensor aliasDevice(const Tensor &owner, uint64_t byteOffset) const;
  bool dense() const { return dense_; }
  /// Whether this handle is the only one on its data (no copy, view or
  /// owner elsewhere keeps it alive).
  bool sole() const { return data_ && data_.use_count() == 1; }
  /// Whether the host bytes are current: false while a GPU kernel's output
  /// is newer on the device (Halide's device_dirty flag) until copied back.
  bool hostCurrent() const;

  /// A halide_buffer_t describing this tensor; valid while it lives.
  halide_buffer_t *halideBuffer();

  std::string shapeString() const;

private:
  /// The data, after checking the dtype (throws "tensor is not ...").
  void *typedData(DType want) const;
  void initBuffer();
  /// A new halide_buffer_t over data_ and dims_; `cropOf` set: its device
  /// field will alias that buffer's allocation (released, not freed), and
  /// it keeps that buffer alive.
  void makeBuffer(std::shared_ptr<halide_buffer_t> cropOf = nullptr,
                  bool wrapped = false);
  bool dense_ = true;
  std::vector<int64_t> shape_;
  DType dtype_ = DType::Float32;
  std::shared_ptr<uint8_t> data_;
  std::shared_ptr<halide_buffer_t> buffer_;
  std::shared_ptr<std::vector<halide_dimension_t>> dims_;
};

/// A float32 tensor of N(0, 1) values from a seeded generator (never zeros in
/// practice): inputs for tests, benchmarks and examples.
Tensor randomNormal(std::vector<int64_t> shape, uint64_t seed);

float halfToFloat(uint16_t h);
uint16_t floatToHalf(float f);
/// bfloat16 <-> float32: bf16 is the upper half of the float32 bits; the
/// narrowing rounds to nearest even and keeps NaN a (quiet) NaN.
float bfloat16ToFloat(uint16_t b);
uint16_t floatToBFloat16(float f);

} // namespace deltaflow::rt

#endif // DELTAFLOW_RUNTIME_TENSOR_H
