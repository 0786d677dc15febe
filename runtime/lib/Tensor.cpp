//===- Tensor.cpp - host tensors ------------------------------------------===//

#include "deltaflow/Runtime/Tensor.h"

#include "HalideRuntime.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <sstream>
#include <stdexcept>

namespace deltaflow::rt {

namespace {
/// Refuses a negative dimension, and a shape whose element count or bytes
/// (counted dimension by dimension, as numel() does) exceed 64 bits.
void checkShape(const Tensor &t) {
  uint64_t bytes = dtypeSize(t.dtype());
  for (int64_t d : t.shape()) {
    if (d < 0)
      throw std::runtime_error("negative dimension in tensor shape " +
                               t.shapeString());
    if (__builtin_mul_overflow(bytes, uint64_t(d), &bytes))
      throw std::runtime_error("tensor shape " + t.shapeString() + " of " +
                               dtypeName(t.dtype()) + " is too large");
  }
}
} // namespace

Tensor::Tensor(std::vector<int64_t> shape, DType dtype)
    : shape_(std::move(shape)), dtype_(dtype) {
  checkShape(*this);
  size_t n = std::max<size_t>(bytes(), 1);
  size_t rounded = (n + 63) / 64 * 64;
  void *p = std::aligned_alloc(64, rounded);
  if (!p)
    throw std::bad_alloc();
  data_ = std::shared_ptr<uint8_t>(static_cast<uint8_t *>(p), std::free);
  initBuffer();
}

Tensor Tensor::view(std::vector<int64_t> shape, DType dtype, void *data,
                    std::shared_ptr<void> owner) {
  Tensor t;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  checkShape(t);
  if (!data)
    throw std::runtime_error("tensor view " + t.shapeString() +
                             " over a null pointer");
  if (reinterpret_cast<uintptr_t>(data) % dtypeSize(dtype))
    throw std::runtime_error("tensor view " + t.shapeString() + " of " +
                             dtypeName(dtype) + " over a misaligned pointer");
  // Aliasing constructor: shares `owner`'s control block, points at `data`.
  t.data_ = std::shared_ptr<uint8_t>(std::move(owner),
                                     static_cast<uint8_t *>(data));
  t.initBuffer();
  return t;
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape_)
    n *= d;
  return n;
}

void *Tensor::typedData(DType want) const {
  if (dtype_ != want)
    throw std::runtime_error(std::string("tensor is not ") + dtypeName(want));
  return data_.get();
}
float *Tensor::f32() { return static_cast<float *>(typedData(DType::Float32)); }
const float *Tensor::f32() const {
  return static_cast<const float *>(typedData(DType::Float32));
}
int32_t *Tensor::i32() { return static_cast<int32_t *>(typedData(DType::Int32)); }
const int32_t *Tensor::i32() const {
  return static_cast<const int32_t *>(typedData(DType::Int32));
}

Tensor Tensor::toFloat32() const {
  if (dtype_ == DType::Float32)
    return *this;
  Tensor t(shape_, DType::Float32);
  if (dtype_ == DType::Int32) {
    for (int64_t i = 0, n = numel(); i < n; ++i)
      t.f32()[i] = float(i32()[i]);
    return t;
  }
  auto *src = reinterpret_cast<const uint16_t *>(data_.get());
  float *dst = t.f32();
  bool bf16 = dtype_ == DType::BFloat16;
  for (int64_t i = 0, n = numel(); i < n; ++i)
    dst[i] = bf16 ? bfloat16ToFloat(src[i]) : halfToFloat(src[i]);
  return t;
}

namespace {
/// A float32 tensor narrowed to a 16-bit float type element by element.
Tensor narrowFloat32(const Tensor &src, DType to, uint16_t (*round)(float)) {
  Tensor t(src.shape(), to);
  const float *in = src.f32();
  auto *out = reinterpret_cast<uint16_t *>(t.raw());
  for (int64_t i = 0, n = src.numel(); i < n; ++i)
    out[i] = round(in[i]);
  return t;
}
} // namespace

Tensor Tensor::toBFloat16() const {
  if (dtype_ == DType::BFloat16)
    return *this;
  return narrowFloat32(toFloat32(), DType::BFloat16, floatToBFloat16);
}

Tensor Tensor::to(DType dtype) const {
  switch (dtype) {
  case DType::Float32:
    return toFloat32();
  case DType::Float16:
    return toFloat16();
  case DType::BFloat16:
    return toBFloat16();
  case DType::Int32:
    if (dtype_ != DType::Int32)
      throw std::runtime_error(std::string("cannot convert ") +
                               dtypeName(dtype_) + " to int32");
    return *this;
  }
  return *this;
}

Tensor Tensor::toFloat16() const {
  if (dtype_ == DType::Float16)
    return *this;
  // From bf16 through float32 (exact); int32 is refused by f32() as before.
  return narrowFloat32(dtype_ == DType::BFloat16 ? toFloat32() : *this,
                       DType::Float16, floatToHalf);
}

bool Tensor::hostCurrent() const {
  return !buffer_ || !buffer_->device || !(buffer_->flags & halide_buffer_flag_device_dirty);
}

halide_buffer_t *Tensor::halideBuffer() {
  if (!buffer_) {
    throw std::runtime_error(
        "tensor " + shapeString() +
        (data_ ? " does not fit a Halide buffer (an extent or stride beyond 2^31 - 1)"
              : " has no data"));
  }
  return buffer_.get();
}

void Tensor::initBuffer() {
  {
    // Made once, with the data, so that every copy of this Tensor shares it
    // (and a device copy a GPU kernel made of it). Halide's extents and
    // strides are int32: without a buffer when one does not fit (an empty
    // tensor may have a huge dimension), which halideBuffer() reports.
    int64_t stride = 1;
    for (int i = rank() - 1; i >= 0; --i) {
      if (shape_[i] > INT32_MAX || stride > INT32_MAX)
        return;
      stride *= shape_[i]; // both below 2^31: no overflow
    }
    if (stride > INT32_MAX)
      return;
    dims_ = std::make_shared<std::vector<halide_dimension_t>>(shape_.size());
    stride = 1;
    for (int i = rank() - 1, j = 0; i >= 0; --i, ++j) {
      (*dims_)[j] = halide_dimension_t(0, int32_t(shape_[i]), int32_t(stride));
      stride *= shape_[i];
    }
    makeBuffer();
  }
}

void Tensor::makeBuffer(std::shared_ptr<halide_buffer_t> cropOf, bool wrapped) {
  // Frees a device copy a GPU kernel made, through the module's runtime. A
  // crop of another buffer's allocation is released instead, and holds
  // that buffer (so its allocation) until then; a wrapped pointer into it
  // (aliasDevice) is detached.
  buffer_ = std::shared_ptr<halide_buffer_t>(
      new halide_buffer_t, [parent = std::move(cropOf), wrapped](halide_buffer_t *b) {
        if (b->device && b->device_interface) {
          if (wrapped)
            b->device_interface->detach_native(nullptr, b);
          else if (parent)
            b->device_interface->device_release_crop(nullptr, b);
          else
            b->device_interface->device_free(nullptr, b);
        }
        delete b;
      });
  std::memset(buffer_.get(), 0, sizeof(halide_buffer_t));
  buffer_->host = data_.get();
  buffer_->type = dtype_ == DType::Float32   ? halide_type_t(halide_type_float, 32)
                  : dtype_ == DType::Float16 ? halide_type_t(halide_type_float, 16)
                  : dtype_ == DType::BFloat16 ? halide_type_t(halide_type_bfloat, 16)
                                             : halide_type_t(halide_type_int, 32);
  buffer_->dimensions = rank();
  buffer_->dim = dims_->data();
}

Tensor Tensor::narrow(int dim, int64_t length) const {
  if (dim < 0 || dim >= rank() || length < 0 || length > shape_[dim])
    throw std::runtime_error("cannot narrow tensor " + shapeString() +
                             " to " + std::to_string(length) +
                             " along dimension " + std::to_string(dim));
  if (!dims_)
    throw std::runtime_error("tensor " + shapeString() + " has no data");
  Tensor t;
  t.shape_ = shape_;
  t.shape_[dim] = length;
  t.dtype_ = dtype_;
  t.data_ = data_;
  t.dims_ = std::make_shared<std::vector<halide_dimension_t>>(*dims_);
  (*t.dims_)[rank() - 1 - dim].extent = int32_t(length);
  t.dense_ = false;
  const halide_buffer_t *src = buffer_.get();
  const bool crop = src && src->device && src->device_interface;
  t.makeBuffer(crop ? buffer_ : nullptr);
  if (crop) {
    t.buffer_->flags = src->flags;
    if (int rc = src->device_interface->device_crop(nullptr, src, t.buffer_.get()); rc != 0) {
      t.buffer_->device = 0; // nothing to release
      throw std::runtime_error("cannot narrow tensor " + shapeString() + " to " +
                               std::to_string(length) + " along dimension " +
                               std::to_string(dim) + " on the device: Halide error " +
                               std::to_string(rc));
    }
  }
  return t;
}

Tensor Tensor::aliasDevice(const Tensor &owner, uint64_t byteOffset) const {
  const halide_buffer_t *o = owner.buffer_.get();
  if (!o || !o->device || !o->device_interface || !o->device_interface->wrap_native)
    throw std::runtime_error("tensor " + shapeString() +
                             ": its owner has no device allocation to alias");
  if (!dims_)
    throw std::runtime_error("tensor " + shapeString() + " has no data");
  Tensor t = *this;
  t.makeBuffer(owner.buffer_, /*wrapped=*/true);
  if (int rc = o->device_interface->wrap_native(nullptr, t.buffer_.get(),
                                                o->device + byteOffset,
                                                o->device_interface);
      rc != 0) {
    t.buffer_->device = 0; // nothing to detach
    throw std::runtime_error("tensor " + shapeString() +
                             ": cannot alias its device arena (Halide error " +
                             std::to_string(rc) + ")");
  }
  return t;
}

std::string shapeString(const std::vector<int64_t> &shape) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < shape.size(); ++i)
    os << (i ? ", " : "") << shape[i];
  os << "]";
  return os.str();
}

std::string Tensor::shapeString() const { return rt::shapeString(shape_); }

Tensor randomNormal(std::vector<int64_t> shape, uint64_t seed) {
  Tensor t(std::move(shape));
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  float *p = t.f32();
  for (int64_t i = 0, n = t.numel(); i < n; ++i)
    p[i] = dist(rng);
  return t;
}

float halfToFloat(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else { // subnormal
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) {
        mant <<= 1;
        --exp;
      }
      bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000 | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t floatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint16_t sign = uint16_t((x >> 16) & 0x8000);
  uint32_t absx = x & 0x7fffffff;
  if (absx >= 0x7f800000) // inf or nan
    return sign | 0x7c00 | (absx > 0x7f800000 ? 0x200 : 0);
  if (absx >= 0x477ff000) // rounds to >= 65520: overflow to inf
    return sign | 0x7c00;
  if (absx < 0x38800000) { // subnormal half or zero
    float af;
    std::memcpy(&af, &absx, 4);
    // Scale so the subnormal unit (2^-24) becomes 1; rint rounds to even.
    return sign | uint16_t(std::nearbyint(af * 16777216.0f));
  }
  uint32_t mant = absx & 0x7fffff;
  uint32_t exp = (absx >> 23) - 127 + 15;
  uint32_t h = (exp << 10) | (mant >> 13);
  uint32_t rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
    ++h;
  return sign | uint16_t(h);
}

float bfloat16ToFloat(uint16_t b) {
  uint32_t bits = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t floatToBFloat16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffff) > 0x7f800000) // NaN: keep it a quiet NaN
    return uint16_t((x >> 16) | 0x40);
  // Round to nearest even on the 16 dropped bits (overflow goes to inf).
  x += 0x7fff + ((x >> 16) & 1);
  return uint16_t(x >> 16);
}

} // namespace deltaflow::rt
