// Tensor: shape + dtype + a byte offset into refcounted Storage. Always contiguous (row-major).
// Views: reshape() and slice() of the leading dimension share the storage. Activations are NHWC,
// convolution weights OHWI (DESIGN.md "Data layout"). Copies between devices go through Context.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "core/dtype.h"
#include "core/error.h"

namespace yolo {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);

// One allocation. Returned to its allocator when the last tensor viewing it goes away.
class Storage {
 public:
  Storage(std::shared_ptr<Allocator> allocator, size_t bytes, StreamHandle stream);
  // Wraps memory the caller owns (never freed by us), e.g. a pinned or user buffer.
  Storage(void* external, size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  std::shared_ptr<Allocator> allocator_;
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_;
};

class Tensor {
 public:
  Tensor() = default;

  // New uninitialised tensor from `allocator` (ordered on `stream` for CUDA).
  static Tensor empty(const Shape& shape, DType dtype, const std::shared_ptr<Allocator>& allocator,
                      StreamHandle stream = nullptr);
  // Host conveniences (CPU allocator).
  static Tensor empty_cpu(const Shape& shape, DType dtype = DType::f32);
  static Tensor zeros_cpu(const Shape& shape, DType dtype = DType::f32);
  // Host tensor holding `values` (size must equal numel(shape)).
  static Tensor from_vector(const Shape& shape, const std::vector<float>& values);
  static Tensor from_vector(const Shape& shape, const std::vector<double>& values);
  // Wraps caller-owned memory without taking ownership.
  static Tensor wrap(void* data, const Shape& shape, DType dtype, Device device);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  // Size of dimension i; negative i counts from the end.
  int64_t dim(int i) const;
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }
  DType dtype() const { return dtype_; }
  Device device() const;
  const std::shared_ptr<Storage>& storage() const { return storage_; }

  void* raw() const;
  // Typed pointer; throws yolo::Error when T does not match dtype().
  template <typename T>
  T* data() const {
    YOLO_CHECK(DTypeOf<T>::value == dtype_, "tensor of dtype " << dtype_name(dtype_) << " read as "
                                                               << dtype_name(DTypeOf<T>::value));
    return static_cast<T*>(raw());
  }

  // Same storage, new shape with the same number of elements; one entry may be -1 (inferred).
  Tensor reshape(const Shape& shape) const;
  // Rows [begin, end) of the leading dimension, as a view.
  Tensor slice(int64_t begin, int64_t end) const;

  // Host-only element helpers, for tests and tools (f32/f64 tensors on the CPU).
  std::vector<float> to_float_vector() const;
  std::vector<double> to_double_vector() const;

  std::string str() const;  // "f32(2, 3) on cpu"

 private:
  std::shared_ptr<Storage> storage_;
  size_t offset_ = 0;  // bytes
  Shape shape_;
  int64_t numel_ = 0;
  DType dtype_ = DType::f32;
};

// Argument checks that throw yolo::Error naming both sides, e.g.
// "conv2d: x and dy disagree in shape: (2, 8, 8, 3) vs (2, 8, 8, 4)".
void check_same_shape(const char* op, const char* a_name, const Tensor& a, const char* b_name,
                      const Tensor& b);
void check_shape(const char* op, const char* name, const Tensor& t, const Shape& expected);
void check_dtype(const char* op, const char* name, const Tensor& t, DType expected);
void check_same_dtype(const char* op, const char* a_name, const Tensor& a, const char* b_name,
                      const Tensor& b);
void check_same_device(const char* op, const char* a_name, const Tensor& a, const char* b_name,
                       const Tensor& b);
void check_ndim(const char* op, const char* name, const Tensor& t, int ndim);
void check_defined(const char* op, const char* name, const Tensor& t);

}  // namespace yolo
