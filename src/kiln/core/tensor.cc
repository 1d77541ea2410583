#include "kiln/core/tensor.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

#include <cstdlib>
#include <mutex>
#include <sstream>
#include <utility>
#include <vector>

namespace kiln {

namespace {

// Large buffers handed back, kept for the next one of about their size. A run's output that
// replaces the last run's (GPT-2's 25.7 MB logits) otherwise came from fresh pages on every
// run: glibc serves a large allocation from a new mapping, or trims its heap's top, while an
// equal buffer is still alive, and faulting the pages in (6,300 faults) took a tenth of the
// LM head's time. At most 4 blocks and 32 MB, dropped whenever the C heap's free memory is
// handed back (release_free_memory: after a run at new shapes whose buffers outgrew the arena).
class Recycler {
 public:
  static constexpr size_t kMinBytes = size_t(1) << 20, kMaxBlocks = 4, kMaxBytes = size_t(32) << 20;

  static Recycler& get() {
    static Recycler* r = new Recycler;  // never destroyed: buffers may be freed at exit
    return *r;
  }
  // A kept block of at least `bytes` and at most a quarter more, or null; its capacity in `cap`.
  void* take(size_t bytes, size_t& cap) {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < blocks_.size(); ++i)
      if (blocks_[i].second >= bytes && blocks_[i].second <= bytes + bytes / 4) {
        void* raw = blocks_[i].first;
        cap = blocks_[i].second;
        held_ -= cap;
        blocks_.erase(blocks_.begin() + ptrdiff_t(i));
        return raw;
      }
    return nullptr;
  }
  // Keeps a block, the oldest going back to the heap past the limits.
  void keep(void* raw, size_t cap) {
    std::vector<void*> out;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (cap > kMaxBytes) {
        out.push_back(raw);
      } else {
        blocks_.emplace_back(raw, cap);
        held_ += cap;
        while (blocks_.size() > kMaxBlocks || held_ > kMaxBytes) {
          out.push_back(blocks_.front().first);
          held_ -= blocks_.front().second;
          blocks_.erase(blocks_.begin());
        }
      }
    }
    for (void* p : out) std::free(p);
  }
  void clear() {
    std::vector<std::pair<void*, size_t>> out;
    {
      std::lock_guard<std::mutex> lock(mu_);
      out.swap(blocks_);
      held_ = 0;
    }
    for (auto& b : out) std::free(b.first);
  }

 private:
  std::mutex mu_;
  std::vector<std::pair<void*, size_t>> blocks_;  // (malloc's pointer, usable bytes), oldest first
  size_t held_ = 0;
};

}  // namespace

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
    // Grown to a power of two, from 64 KB: a larger batch or sequence then mostly fits the
    // buffer it had (each new buffer is fresh pages, faulted in during the run).
    size_t cap = size_t(64) << 10;
    while (cap < bytes) cap *= 2;
    b.data = aligned_buffer(cap);
    b.bytes = cap;
  }
  return b.data.get();
}

void release_free_memory() {
  Recycler::get().clear();
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
  // malloc with the 64-byte alignment made here: glibc's aligned_alloc maps a large block anew
  // each time an equal one is alive, which even the recycling below would not always avoid.
  size_t cap = bytes;
  void* raw = bytes >= Recycler::kMinBytes ? Recycler::get().take(bytes, cap) : nullptr;
  if (!raw) raw = std::malloc(bytes + 64);
  if (!raw) fail(ErrorCode::RuntimeException, "out of memory allocating ", bytes, " bytes");
  void* p = reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(raw) + 63) / 64 * 64);
  if (cap < Recycler::kMinBytes) return std::shared_ptr<void>(p, [raw](void*) { std::free(raw); });
  return std::shared_ptr<void>(p, [raw, cap](void*) { Recycler::get().keep(raw, cap); });
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
