// Tensor and Storage.
#include "core/tensor.h"

#include <cstring>
#include <sstream>

namespace yolo {

std::string shape_str(const Shape& s) {
  std::ostringstream o;
  o << "(";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << ")";
  return o.str();
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    YOLO_CHECK(d >= 0, "negative dimension in shape " << shape_str(s));
    n *= d;
  }
  return n;
}

Storage::Storage(std::shared_ptr<Allocator> allocator, size_t bytes, StreamHandle stream)
    : allocator_(std::move(allocator)), bytes_(bytes), device_(allocator_->device()) {
  data_ = allocator_->allocate(bytes, stream);
}

Storage::Storage(void* external, size_t bytes, Device device)
    : data_(external), bytes_(bytes), device_(device) {}

Storage::~Storage() {
  if (allocator_) allocator_->deallocate(data_);
}

Tensor Tensor::empty(const Shape& shape, DType dtype, const std::shared_ptr<Allocator>& allocator,
                     StreamHandle stream) {
  Tensor t;
  t.shape_ = shape;
  t.numel_ = shape_numel(shape);
  t.dtype_ = dtype;
  t.storage_ = std::make_shared<Storage>(allocator, t.nbytes(), stream);
  return t;
}

Tensor Tensor::empty_cpu(const Shape& shape, DType dtype) {
  return empty(shape, dtype, cpu_allocator());
}

Tensor Tensor::zeros_cpu(const Shape& shape, DType dtype) {
  Tensor t = empty_cpu(shape, dtype);
  std::memset(t.raw(), 0, t.nbytes());
  return t;
}

Tensor Tensor::from_vector(const Shape& shape, const std::vector<float>& values) {
  Tensor t = empty_cpu(shape, DType::f32);
  YOLO_CHECK(static_cast<int64_t>(values.size()) == t.numel(),
             "from_vector: " << values.size() << " values for shape " << shape_str(shape));
  std::memcpy(t.raw(), values.data(), t.nbytes());
  return t;
}

Tensor Tensor::from_vector(const Shape& shape, const std::vector<double>& values) {
  Tensor t = empty_cpu(shape, DType::f64);
  YOLO_CHECK(static_cast<int64_t>(values.size()) == t.numel(),
             "from_vector: " << values.size() << " values for shape " << shape_str(shape));
  std::memcpy(t.raw(), values.data(), t.nbytes());
  return t;
}

Tensor Tensor::wrap(void* data, const Shape& shape, DType dtype, Device device) {
  Tensor t;
  t.shape_ = shape;
  t.numel_ = shape_numel(shape);
  t.dtype_ = dtype;
  t.storage_ = std::make_shared<Storage>(data, t.nbytes(), device);
  return t;
}

int64_t Tensor::dim(int i) const {
  const int n = ndim();
  const int j = i < 0 ? i + n : i;
  YOLO_CHECK(j >= 0 && j < n, "dimension " << i << " out of range for shape " << shape_str(shape_));
  return shape_[j];
}

Device Tensor::device() const {
  return storage_ ? storage_->device() : Device::cpu();
}

void* Tensor::raw() const {
  YOLO_CHECK(storage_ != nullptr, "use of an undefined tensor");
  return static_cast<char*>(storage_->data()) + offset_;
}

Tensor Tensor::reshape(const Shape& shape) const {
  Shape s = shape;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      YOLO_CHECK(infer < 0, "reshape: more than one -1 in " << shape_str(shape));
      infer = static_cast<int>(i);
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0) {
    YOLO_CHECK(known > 0 && numel_ % known == 0,
               "reshape: cannot infer -1 in " << shape_str(shape) << " from " << shape_str(shape_));
    s[infer] = numel_ / known;
  }
  YOLO_CHECK(shape_numel(s) == numel_, "reshape: " << shape_str(shape_) << " has " << numel_
                                                   << " elements, " << shape_str(s) << " has "
                                                   << shape_numel(s));
  Tensor t = *this;
  t.shape_ = s;
  return t;
}

Tensor Tensor::slice(int64_t begin, int64_t end) const {
  YOLO_CHECK(ndim() >= 1, "slice of a 0-d tensor");
  YOLO_CHECK(0 <= begin && begin <= end && end <= shape_[0],
             "slice [" << begin << ", " << end << ") out of range for shape " << shape_str(shape_));
  const int64_t row = shape_[0] == 0 ? 0 : numel_ / shape_[0];
  Tensor t = *this;
  t.shape_[0] = end - begin;
  t.numel_ = row * (end - begin);
  t.offset_ = offset_ + static_cast<size_t>(begin * row) * dtype_size(dtype_);
  return t;
}

std::vector<float> Tensor::to_float_vector() const {
  YOLO_CHECK(device().is_cpu(), "to_float_vector needs a cpu tensor, got " << str());
  std::vector<float> out(static_cast<size_t>(numel_));
  if (numel_ == 0) return out;
  switch (dtype_) {
    case DType::f32:
      std::memcpy(out.data(), raw(), nbytes());
      break;
    case DType::f64:
      for (int64_t i = 0; i < numel_; ++i) out[i] = static_cast<float>(data<double>()[i]);
      break;
    case DType::f16:
      for (int64_t i = 0; i < numel_; ++i) out[i] = half_to_float(data<Half>()[i]);
      break;
    case DType::bf16:
      for (int64_t i = 0; i < numel_; ++i) out[i] = bf16_to_float(data<BFloat16>()[i]);
      break;
    case DType::i32:
      for (int64_t i = 0; i < numel_; ++i) out[i] = static_cast<float>(data<int32_t>()[i]);
      break;
    case DType::i64:
      for (int64_t i = 0; i < numel_; ++i) out[i] = static_cast<float>(data<int64_t>()[i]);
      break;
    case DType::u8:
      for (int64_t i = 0; i < numel_; ++i) out[i] = static_cast<float>(data<uint8_t>()[i]);
      break;
  }
  return out;
}

std::vector<double> Tensor::to_double_vector() const {
  if (dtype_ == DType::f64) {
    YOLO_CHECK(device().is_cpu(), "to_double_vector needs a cpu tensor, got " << str());
    const double* p = data<double>();
    return std::vector<double>(p, p + numel_);
  }
  const std::vector<float> f = to_float_vector();
  return std::vector<double>(f.begin(), f.end());
}

std::string Tensor::str() const {
  return std::string(dtype_name(dtype_)) + shape_str(shape_) + " on " + device().str();
}

void check_same_shape(const char* op, const char* a_name, const Tensor& a, const char* b_name,
                      const Tensor& b) {
  YOLO_CHECK(a.shape() == b.shape(), op << ": " << a_name << " and " << b_name
                                        << " disagree in shape: " << shape_str(a.shape()) << " vs "
                                        << shape_str(b.shape()));
}

void check_shape(const char* op, const char* name, const Tensor& t, const Shape& expected) {
  YOLO_CHECK(t.shape() == expected, op << ": " << name << " has shape " << shape_str(t.shape())
                                       << ", expected " << shape_str(expected));
}

void check_dtype(const char* op, const char* name, const Tensor& t, DType expected) {
  YOLO_CHECK(t.dtype() == expected, op << ": " << name << " has dtype " << dtype_name(t.dtype())
                                       << ", expected " << dtype_name(expected));
}

void check_same_dtype(const char* op, const char* a_name, const Tensor& a, const char* b_name,
                      const Tensor& b) {
  YOLO_CHECK(a.dtype() == b.dtype(), op << ": " << a_name << " and " << b_name
                                        << " disagree in dtype: " << dtype_name(a.dtype()) << " vs "
                                        << dtype_name(b.dtype()));
}

void check_same_device(const char* op, const char* a_name, const Tensor& a, const char* b_name,
                       const Tensor& b) {
  YOLO_CHECK(a.device() == b.device(), op << ": " << a_name << " and " << b_name
                                          << " are on different devices: " << a.device().str()
                                          << " vs " << b.device().str()
                                          << " (copy one with Context::to_device/to_host)");
}

void check_ndim(const char* op, const char* name, const Tensor& t, int ndim) {
  YOLO_CHECK(t.ndim() == ndim, op << ": " << name << " must have " << ndim << " dimensions, got "
                                  << shape_str(t.shape()));
}

void check_defined(const char* op, const char* name, const Tensor& t) {
  YOLO_CHECK(t.defined(), op << ": " << name << " is undefined");
}

}  // namespace yolo
