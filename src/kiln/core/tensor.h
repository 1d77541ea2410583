// A tensor is a typed view of a buffer plus a shared owner that keeps the buffer alive. Views
// (of numpy arrays, of the session arena, of initializers) and owning tensors share one type.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kiln/core/dtype.h"

namespace kiln {

using Shape = std::vector<int64_t>;

int64_t shape_size(const Shape& shape);
std::string shape_str(const Shape& shape);  // "[2,3,4]"

// 64-byte aligned, so AVX-512 loads and oneDNN never see a split cache line.
std::shared_ptr<void> aligned_buffer(size_t bytes);

// Per-thread scratch, grown to the largest request of each slot (`slot` tells apart buffers one
// thread uses at once): kernels run one after another, so they need not each hold their own.
void* thread_scratch(int slot, size_t bytes);

// Hands the pages of freed heap memory back to the system (glibc keeps them otherwise, and a
// buffer freed in the middle of the heap is not reused for a larger or aligned one).
void release_free_memory();
// Hands back the whole pages of a buffer about to be freed, at the cost of one system call
// rather than a walk of the heap: its contents are lost.
void release_pages(void* data, size_t bytes);

class Tensor {
 public:
  Tensor() = default;
  // An owning tensor with fresh storage (strings default-constructed, numbers uninitialized).
  Tensor(DType dtype, Shape shape);
  // A view of `data`; `owner` (may be null) keeps it alive.
  static Tensor view(DType dtype, Shape shape, void* data, std::shared_ptr<void> owner = nullptr);

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t rank() const { return int64_t(shape_.size()); }
  int64_t dim(int64_t i) const { return shape_[size_t(i)]; }
  int64_t size() const { return shape_size(shape_); }
  size_t bytes() const { return size_t(size()) * dtype_size(dtype_); }
  bool defined() const { return dtype_ != DType::Undefined; }

  void* raw() { return data_; }
  const void* raw() const { return data_; }
  template <typename T>
  T* data() {
    check_type<T>();
    return static_cast<T*>(data_);
  }
  template <typename T>
  const T* data() const {
    check_type<T>();
    return static_cast<const T*>(data_);
  }
  template <typename T>
  std::span<const T> values() const {
    return {data<T>(), size_t(size())};
  }
  const std::shared_ptr<void>& owner() const { return owner_; }

  // Same buffer, new shape of the same element count (Reshape, Flatten, Squeeze...).
  Tensor reshaped(Shape shape) const;
  // An independent copy with its own storage.
  Tensor clone() const;
  // Reads an integer tensor of any integer type as int64 (axes, shapes, indices inputs).
  std::vector<int64_t> to_int64s() const;
  double scalar_as_double() const;

 private:
  template <typename T>
  void check_type() const {
    if constexpr (!std::is_void_v<T>) {
      if (dtype_of<T>() != dtype_)
        fail(ErrorCode::Fail, "tensor holds ", dtype_name(dtype_), ", accessed as ",
             dtype_name(dtype_of<T>()));
    }
  }

  DType dtype_ = DType::Undefined;
  Shape shape_;
  void* data_ = nullptr;
  std::shared_ptr<void> owner_;
};

// Copies elements between tensors of the same type and count (strings by assignment).
void copy_elements(const Tensor& src, Tensor& dst);

}  // namespace kiln
