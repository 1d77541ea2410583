// NonZero: the coordinates of the non-zero elements, as an int64 [rank, count] tensor in
// row-major order (a scalar counts as a 1-D tensor of one element, like numpy). Chunks are
// counted in parallel, then each chunk writes its coordinates at its prefix offset.
#include "kiln/ops/tensor/tensor_copy.h"

namespace kiln {
namespace {
template <typename T>
bool nonzero(const T& v) {
  if constexpr (std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>) return (v.bits & 0x7fff) != 0;
  else if constexpr (std::is_same_v<T, std::string>) return !v.empty();
  else return v != T(0);
}

class NonZero : public Kernel {
 public:
  explicit NonZero(const ir::Node&) {}
  void prepare(OpContext&) override {}
  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Shape shape = x.rank() == 0 ? Shape{1} : x.shape();
    const int64_t n = x.size(), r = int64_t(shape.size());
    const int64_t chunks = std::min<int64_t>(256, std::max<int64_t>(1, n / 16384));
    std::vector<int64_t> counts(static_cast<size_t>(chunks + 1), 0);
    dispatch(AllTypes{}, x.dtype(), "NonZero", [&]<typename T>() {
      const T* p = x.data<T>();
      parallel_for(chunks, 1, [&](int64_t b, int64_t e) {
        for (int64_t c = b; c < e; ++c) {
          int64_t cnt = 0;
          for (int64_t i = n * c / chunks; i < n * (c + 1) / chunks; ++i) cnt += nonzero(p[i]) ? 1 : 0;
          counts[size_t(c + 1)] = cnt;
        }
      });
      for (int64_t c = 0; c < chunks; ++c) counts[size_t(c + 1)] += counts[size_t(c)];
      const int64_t total = counts.back();
      int64_t* out = ctx.allocate_output(0, DType::Int64, {r, total}).data<int64_t>();
      if (total == 0) return;
      parallel_for(chunks, 1, [&](int64_t b, int64_t e) {
        std::vector<int64_t> coord(static_cast<size_t>(r));
        for (int64_t c = b; c < e; ++c) {
          const int64_t begin = n * c / chunks, end = n * (c + 1) / chunks;
          int64_t rem = begin;
          for (int64_t d = r; d-- > 0;) {
            coord[size_t(d)] = rem % shape[size_t(d)];
            rem /= shape[size_t(d)];
          }
          int64_t k = counts[size_t(c)];
          for (int64_t i = begin; i < end; ++i) {
            if (nonzero(p[i])) {
              for (int64_t d = 0; d < r; ++d) out[d * total + k] = coord[size_t(d)];
              ++k;
            }
            for (int64_t d = r; d-- > 0;) {
              if (++coord[size_t(d)] < shape[size_t(d)]) break;
              coord[size_t(d)] = 0;
            }
          }
        }
      });
    });
  }
};
const OpRegistration kNonZero{"NonZero", make_kernel<NonZero>};
}  // namespace
}  // namespace kiln
