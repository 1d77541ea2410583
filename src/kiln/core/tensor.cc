#include "kiln/core/tensor.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

#include <cstdlib>
#include <sstream>

namespace kiln {

int64_t shape_size(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_str(const Shape& shape) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? "," : "") << shape[i];
  os << ']';
  return os.str();
}

void* thread_scratch(int slot, size_t bytes) {
  struct Buffer {
    std::shared_ptr<void> data;
    size_t bytes = 0;
  };
  thread_local std::vector<Buffer> buffers;
  if (size_t(slot) >= buffers.size()) buffers.resize(size_t(slot) + 1);
  Buffer& b = buffers[size_t(slot)];
  if (b.bytes < bytes) {
    b.data = aligned_buffer(bytes);
    b.bytes = bytes;
  }
  return b.data.get();
}

void release_free_memory() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

void release_pages(void* data, size_t bytes) {
#if defined(__linux__)
  const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE)), begin = uintptr_t(data), end = begin + bytes;
  const uintptr_t first = (begin + page - 1) / page * page, last = end / page * page;
  if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
#endif
}

std::shared_ptr<void> aligned_buffer(size_t bytes) {
  size_t rounded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded ? rounded : 64);
  if (!p) fail(ErrorCode::RuntimeException, "out of memory allocating ", bytes, " bytes");
  return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
}

Tensor::Tensor(DType dtype, Shape shape) : dtype_(dtype), shape_(std::move(shape)) {
  for (int64_t d : shape_)
    if (d < 0) fail(ErrorCode::InvalidArgument, "negative dimension in shape ", shape_str(shape_));
  if (dtype == DType::String) {
    auto* strings = new std::string[size_t(size())];
    owner_ = std::shared_ptr<void>(strings, [](void* p) { delete[] static_cast<std::string*>(p); });
    data_ = strings;
  } else {
    owner_ = aligned_buffer(bytes());
    data_ = owner_.get();
  }
}

Tensor Tensor::view(DType dtype, Shape shape, void* data, std::shared_ptr<void> owner) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.data_ = data;
  t.owner_ = std::move(owner);
  return t;
}

Tensor Tensor::reshaped(Shape shape) const {
  if (shape_size(shape) != size())
    fail(ErrorCode::Fail, "cannot view ", shape_str(shape_), " as ", shape_str(shape));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::clone() const {
  Tensor t(dtype_, shape_);
  copy_elements(*this, t);
  return t;
}

void copy_elements(const Tensor& src, Tensor& dst) {
  if (src.dtype() != dst.dtype() || src.size() != dst.size())
    fail(ErrorCode::Fail, "copy between ", dtype_name(src.dtype()), shape_str(src.shape()), " and ",
         dtype_name(dst.dtype()), shape_str(dst.shape()));
  if (src.raw() == dst.raw()) return;
  if (src.dtype() == DType::String) {
    const auto* s = static_cast<const std::string*>(src.raw());
    auto* d = static_cast<std::string*>(dst.raw());
    for (int64_t i = 0; i < src.size(); ++i) d[i] = s[i];
  } else if (src.bytes()) {
    std::memcpy(dst.raw(), src.raw(), src.bytes());
  }
}

std::vector<int64_t> Tensor::to_int64s() const {
  std::vector<int64_t> out(static_cast<size_t>(size()));
  dispatch(IntTypes{}, dtype_, "integer list", [&]<typename T>() {
    const T* p = static_cast<const T*>(data_);
    for (size_t i = 0; i < out.size(); ++i) out[i] = int64_t(p[i]);
  });
  return out;
}

double Tensor::scalar_as_double() const {
  if (size() != 1) fail(ErrorCode::Fail, "expected a single value, got shape ", shape_str(shape_));
  if (dtype_ == DType::Float16) return half_to_float(*static_cast<const uint16_t*>(data_));
  if (dtype_ == DType::BFloat16) return bfloat16_to_float(*static_cast<const uint16_t*>(data_));
  return dispatch(TypeList<float, double, int32_t, int64_t, int8_t, int16_t, uint8_t, uint16_t,
                           uint32_t, uint64_t, bool>{},
                  dtype_, "scalar", [&]<typename T>() { return double(*static_cast<const T*>(data_)); });
}

}  // namespace kiln
