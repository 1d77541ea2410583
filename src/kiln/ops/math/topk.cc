// TopK: the k largest (or smallest) elements along `axis` and their int64 indices. k is an
// attribute in opset 1 and a 1-element input from opset 10; largest and sorted arrive in 11.
// Equal values keep the lower index first; NaN ranks above every number (as in PyTorch), which
// keeps the ordering strict-weak for the sort. With sorted=0 the results are still sorted,
// one of the orders the spec allows.
#include <algorithm>
#include <numeric>

#include "kiln/ops/reduce/reduce.h"

namespace kiln {
namespace {

class TopK : public Kernel {
 public:
  explicit TopK(const ir::Node& node)
      : k_input_(node.opset >= 10),
        k_attr_(node.attr_int("k", -1)),
        axis_(node.attr_int("axis", -1)),
        largest_(node.attr_int("largest", 1) != 0) {
    if (!k_input_ && !node.has_attr("k")) fail(ErrorCode::InvalidGraph, "the k attribute is required before opset 10");
  }

  std::vector<int> value_inputs() const override { return k_input_ ? std::vector<int>{1} : std::vector<int>{}; }

  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const int64_t a = normalize_axis(axis_, x.rank());
    int64_t k = k_attr_;
    if (k_input_) {
      const Tensor& kt = ctx.input(1);
      if (kt.dtype() != DType::Int64 || kt.size() != 1)
        fail(ErrorCode::InvalidArgument, "K must hold a single int64, got ", dtype_name(kt.dtype()), " of shape ",
             shape_str(kt.shape()));
      k = kt.to_int64s()[0];
    }
    if (k < 0 || k > x.dim(a))
      fail(ErrorCode::InvalidArgument, "k must be in [0, ", x.dim(a), "] (the size of axis ", a, "), got ", k);
    k_ = k;
    outer_ = 1, n_ = x.dim(a), inner_ = 1;
    for (int64_t d = 0; d < x.rank(); ++d) {
      if (d < a) outer_ *= x.dim(d);
      if (d > a) inner_ *= x.dim(d);
    }
    Shape out = x.shape();
    out[size_t(a)] = k;
    ctx.set_output(0, x.dtype(), out);
    ctx.set_output(1, DType::Int64, out);
  }

  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    dispatch(NumericTypes{}, x.dtype(), "TopK", [&]<typename T>() {
      if (largest_) run<T, true>(x.data<T>(), ctx.output(0).data<T>(), ctx.output(1).data<int64_t>());
      else run<T, false>(x.data<T>(), ctx.output(0).data<T>(), ctx.output(1).data<int64_t>());
    });
  }

 private:
  // Does a rank before b? (values first, then the lower index.)
  template <typename T, bool kLargest>
  static bool before(T a, T b) {
    if constexpr (std::is_floating_point_v<T>) {
      const bool na = std::isnan(a), nb = std::isnan(b);
      if (na || nb) return kLargest ? (na && !nb) : (!na && nb);
    }
    return kLargest ? a > b : a < b;
  }

  template <typename T, bool kLargest>
  void run(const T* x, T* vals, int64_t* idxs) const {
    const int64_t n = n_, inner = inner_, k = k_;
    if (k == 0 || outer_ * inner == 0) return;
    parallel_for(outer_ * inner, std::max<int64_t>(1, 16384 / n), [&](int64_t s, int64_t e) {
      std::vector<T> buf(inner == 1 ? 0 : size_t(n));
      std::vector<int64_t> order(static_cast<size_t>(n));
      for (int64_t w = s; w < e; ++w) {
        const int64_t o = w / inner, c = w % inner;
        const T* v = x + o * n * inner + c;
        if (inner != 1) {  // gather the strided slice so the selection reads it contiguously
          for (int64_t i = 0; i < n; ++i) buf[size_t(i)] = v[i * inner];
          v = buf.data();
        }
        T* ov = vals + o * k * inner + c;
        int64_t* oi = idxs + o * k * inner + c;
        if (k == 1) {
          int64_t best = 0;
          for (int64_t i = 1; i < n; ++i)
            if (before<T, kLargest>(v[i], v[best])) best = i;
          ov[0] = v[best], oi[0] = best;
          continue;
        }
        auto cmp = [v](int64_t a, int64_t b) {
          if (before<T, kLargest>(v[a], v[b])) return true;
          if (before<T, kLargest>(v[b], v[a])) return false;
          return a < b;
        };
        std::iota(order.begin(), order.end(), int64_t(0));
        if (k < n) std::partial_sort(order.begin(), order.begin() + k, order.end(), cmp);
        else std::sort(order.begin(), order.end(), cmp);
        for (int64_t j = 0; j < k; ++j) {
          ov[j * inner] = v[order[size_t(j)]];
          oi[j * inner] = order[size_t(j)];
        }
      }
    });
  }

  bool k_input_;
  int64_t k_attr_, axis_;
  bool largest_;
  int64_t k_ = 0, outer_ = 1, n_ = 1, inner_ = 1;
};

const OpRegistration kTopK{"TopK", make_kernel<TopK>};

}  // namespace
}  // namespace kiln
