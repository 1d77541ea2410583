// Unique: the distinct elements (or, with `axis`, the distinct slices along it) with, for
// each, the index of its first occurrence, the index of every input entry's match in the
// output, and its count. sorted=1 orders them ascending (slices lexicographically, NaNs
// last and equal to each other, as numpy does); sorted=0 keeps the order of first occurrence.
#include <cmath>
#include <numeric>

#include "kiln/ops/tensor/scatter_reduce.h"

namespace kiln {
namespace {
// A strict weak order on every element type: NaN sorts after all numbers and equals NaN.
template <typename T>
int compare(const T& a, const T& b) {
  if constexpr (std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>) {
    return compare(tensor_ops::to_float_bits(a), tensor_ops::to_float_bits(b));
  } else if constexpr (std::is_floating_point_v<T>) {
    const bool na = std::isnan(a), nb = std::isnan(b);
    if (na || nb) return int(na) - int(nb);
    return a < b ? -1 : (b < a ? 1 : 0);
  } else {
    return a < b ? -1 : (b < a ? 1 : 0);
  }
}

class Unique : public Kernel {
 public:
  explicit Unique(const ir::Node& node)
      : sorted_(node.attr_int("sorted", 1) != 0), axis_(node.attr_int("axis", 0)), has_axis_(node.has_attr("axis")) {}
  void prepare(OpContext&) override {}
  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    // Entries are slices: `count` of them along the axis, each `outer` runs of `inner` elements.
    int64_t outer = 1, count = x.size(), inner = 1, axis = 0;
    if (has_axis_) {
      axis = tensor_ops::normalize_axis(axis_, x.rank());
      count = x.dim(axis);
      for (int64_t d = 0; d < axis; ++d) outer *= x.dim(d);
      for (int64_t d = axis + 1; d < x.rank(); ++d) inner *= x.dim(d);
    }
    dispatch(AllTypes{}, x.dtype(), "Unique", [&]<typename T>() {
      const T* p = x.data<T>();
      auto cmp = [&](int64_t a, int64_t b) {
        for (int64_t o = 0; o < outer; ++o)
          for (int64_t i = 0; i < inner; ++i) {
            const int64_t base = o * count * inner + i;
            if (int c = compare(p[base + a * inner], p[base + b * inner])) return c;
          }
        return 0;
      };
      // Stable: within a run of equal entries the first occurrence comes first.
      std::vector<int64_t> order(static_cast<size_t>(count));
      std::iota(order.begin(), order.end(), int64_t(0));
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return cmp(a, b) < 0; });
      std::vector<int64_t> first, counts, group(static_cast<size_t>(count));
      for (size_t k = 0; k < order.size(); ++k) {
        if (k == 0 || cmp(order[k - 1], order[k]) != 0) {
          first.push_back(order[k]);
          counts.push_back(0);
        }
        group[size_t(order[k])] = int64_t(first.size()) - 1;
        ++counts.back();
      }
      const int64_t n = int64_t(first.size());
      std::vector<int64_t> rank(static_cast<size_t>(n));  // sorted group -> output position
      std::iota(rank.begin(), rank.end(), int64_t(0));
      if (!sorted_) {
        std::vector<int64_t> by_first(static_cast<size_t>(n));
        std::iota(by_first.begin(), by_first.end(), int64_t(0));
        std::sort(by_first.begin(), by_first.end(), [&](int64_t a, int64_t b) { return first[size_t(a)] < first[size_t(b)]; });
        for (int64_t pos = 0; pos < n; ++pos) rank[size_t(by_first[size_t(pos)])] = pos;
      }
      std::vector<int64_t> out_first(static_cast<size_t>(n)), out_counts(static_cast<size_t>(n));
      for (int64_t g = 0; g < n; ++g) {
        out_first[size_t(rank[size_t(g)])] = first[size_t(g)];
        out_counts[size_t(rank[size_t(g)])] = counts[size_t(g)];
      }

      Shape yshape{n};
      if (has_axis_) {
        yshape = x.shape();
        yshape[size_t(axis)] = n;
      }
      T* y = ctx.allocate_output(0, x.dtype(), yshape).template data<T>();
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t k = 0; k < n; ++k)
          tensor_ops::copy_n(p + (o * count + out_first[size_t(k)]) * inner, inner, y + (o * n + k) * inner);
      auto emit = [&](int i, const std::vector<int64_t>& v) {
        if (!ctx.has_output(i)) return;
        std::copy(v.begin(), v.end(), ctx.allocate_output(i, DType::Int64, {int64_t(v.size())}).template data<int64_t>());
      };
      emit(1, out_first);
      if (ctx.has_output(2)) {
        std::vector<int64_t> inverse(static_cast<size_t>(count));
        for (int64_t e = 0; e < count; ++e) inverse[size_t(e)] = rank[size_t(group[size_t(e)])];
        emit(2, inverse);
      }
      emit(3, out_counts);
    });
  }

 private:
  bool sorted_;
  int64_t axis_;
  bool has_axis_;
};
const OpRegistration kUnique{"Unique", make_kernel<Unique>};
}  // namespace
}  // namespace kiln
