// LayerNormalization (opset 17): each row X[d0..d(axis-1), :] over the trailing dims is
// normalized to zero mean and unit variance, then scaled and shifted by Scale and the optional
// B, both unidirectionally broadcast to the normalized shape. The optional Mean and InvStdDev
// outputs have X's shape with the normalized dims set to 1, in stash_type's element type.
#include "kiln/ops/common/vec.h"
#include "kiln/ops/reduce/reduce.h"

// GCC 12 flags the undefined pass-through operand inside the intrinsics' horizontal reductions
// as uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace kiln {
namespace {

#if defined(KILN_VEC)
// One float row as the plain loop below computes it (the mean, then the mean of the centered
// squares), four vectors of sums at a time: one chain of sums waited on each add's latency.
// The last pass fetches the row after (`next`, d floats) into L1. ViT-B/16's 197 x 768: 53 ->
// 28 us a normalization with the four chains, 21 with the fetch and whole vectors unmasked.
void normalize_row(const float* x, const float* next, float* y, int64_t d, const float* scale, const float* bias,
                   float eps, float& mean_out, float& inv_out) {
  using V = Vec::V;
  constexpr int64_t L = Vec::kLanes, kWide = 4 * L;
  const int64_t whole = d / kWide * kWide;
  // Sums of f(x) over the row: four accumulators across whole groups, the rest one vector (the
  // last masked) at a time.
  auto row_sum = [&](auto f) {
    V acc[4] = {Vec::zero(), Vec::zero(), Vec::zero(), Vec::zero()};
    int64_t i = 0;
    for (; i < whole; i += kWide)
      for (int u = 0; u < 4; ++u) acc[u] = Vec::add(acc[u], f(Vec::load(x + i + u * L)));
    for (; i < d; i += L) {
      const Vec::Mask m = Vec::mask(d - i);
      acc[0] = Vec::add(acc[0], Vec::select(m, f(Vec::load(x + i, m))));
    }
    return Vec::sum(Vec::add(Vec::add(acc[0], acc[1]), Vec::add(acc[2], acc[3])));
  };
  const float mean = row_sum([](V v) { return v; }) / float(d);
  const V vmean = Vec::set1(mean);
  const float sq = row_sum([&](V v) {
    const V c = Vec::sub(v, vmean);
    return Vec::mul(c, c);
  });
  const float inv = 1.0f / std::sqrt(sq / float(d) + eps);
  const V vinv = Vec::set1(inv);
  // (x - mean) inv scale + bias, whole vectors unmasked (AVX2's masked stores are slow).
  auto out = [&](int64_t i, auto load, auto store) {
    _mm_prefetch(reinterpret_cast<const char*>(next + i), _MM_HINT_T0);
    const V v = Vec::mul(Vec::mul(Vec::sub(load(x + i), vmean), vinv), load(scale + i));
    store(y + i, bias ? Vec::add(v, load(bias + i)) : v);
  };
  int64_t i = 0;
  for (; i + L <= d; i += L)
    out(i, [](const float* p) { return Vec::load(p); }, [](float* p, V v) { Vec::store(p, v); });
  if (i < d) {
    const Vec::Mask m = Vec::mask(d - i);
    out(i, [m](const float* p) { return Vec::load(p, m); }, [m](float* p, V v) { Vec::store(p, m, v); });
  }
  mean_out = mean;
  inv_out = inv;
}
#endif

// Expands `t` (broadcastable to `target`, aligned on the right) to a dense row of shape `target`.
template <typename T>
std::vector<T> broadcast_row(const Tensor& t, const Shape& target) {
  const int64_t n = shape_size(target);
  std::vector<T> out(static_cast<size_t>(n));
  const T* src = t.data<T>();
  const int64_t lead = int64_t(target.size()) - t.rank();
  Shape strides(target.size(), 0);
  const Shape ts = row_major_strides(t.shape());
  for (int64_t d = 0; d < t.rank(); ++d)
    if (t.dim(d) != 1) strides[size_t(lead + d)] = ts[size_t(d)];
  Odometer od(target, strides, 0);
  for (int64_t i = 0; i < n; ++i, od.next()) out[size_t(i)] = src[od.offset()];
  return out;
}

void check_broadcastable(const char* what, const Tensor& t, const Shape& target) {
  bool ok = t.rank() <= int64_t(target.size());
  for (int64_t d = 0; ok && d < t.rank(); ++d) {
    const int64_t want = target[size_t(int64_t(target.size()) - t.rank() + d)];
    ok = t.dim(d) == want || t.dim(d) == 1;
  }
  if (!ok)
    fail(ErrorCode::InvalidArgument, what, " of shape ", shape_str(t.shape()),
         " does not broadcast to the normalized shape ", shape_str(target));
}

class LayerNormalization : public Kernel {
 public:
  explicit LayerNormalization(const ir::Node& node)
      : axis_(node.attr_int("axis", -1)), eps_(node.attr_float("epsilon", 1e-5f)) {
    const int64_t stash = node.attr_int("stash_type", 1);
    if (stash == 1) stash_ = DType::Float32;
    else if (stash == 11) stash_ = DType::Float64;
    else fail(ErrorCode::NotImplemented, "stash_type ", stash, " is not supported (expected 1 for float or 11 for double)");
  }

  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const int64_t a = normalize_axis(axis_, x.rank());
    norm_shape_ = Shape(x.shape().begin() + a, x.shape().end());
    rows_ = shape_size(Shape(x.shape().begin(), x.shape().begin() + a));
    d_ = shape_size(norm_shape_);
    for (int i = 1; i <= 2; ++i) {
      if (i == 2 && !ctx.has_input(2)) continue;
      const Tensor& p = ctx.input(i);
      if (p.dtype() != x.dtype())
        fail(ErrorCode::InvalidArgument, i == 1 ? "Scale" : "B", " is ", dtype_name(p.dtype()), " but X is ",
             dtype_name(x.dtype()));
      check_broadcastable(i == 1 ? "Scale" : "B", p, norm_shape_);
    }
    ctx.set_output(0, x.dtype(), x.shape());
    Shape stat = x.shape();
    for (int64_t d = a; d < x.rank(); ++d) stat[size_t(d)] = 1;
    for (int i = 1; i <= 2; ++i)
      if (ctx.has_output(i)) ctx.set_output(i, stash_, stat);
  }

  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    dispatch(FloatTypes{}, x.dtype(), "LayerNormalization", [&]<typename T>() {
      if (stash_ == DType::Float32) run<T, float>(ctx);
      else run<T, double>(ctx);
    });
  }

 private:
  template <typename T, typename U>
  void run(OpContext& ctx) {
    const Tensor& x = ctx.input(0);
    const Tensor& sc = ctx.input(1);
    const bool has_b = ctx.has_input(2);
    // Scale and B as dense rows of d: a view when they already are, else an expanded copy.
    std::vector<T> sc_buf, b_buf;
    const T* scale = sc.size() == d_ ? sc.data<T>() : (sc_buf = broadcast_row<T>(sc, norm_shape_)).data();
    const T* bias = nullptr;
    if (has_b) {
      const Tensor& b = ctx.input(2);
      bias = b.size() == d_ ? b.data<T>() : (b_buf = broadcast_row<T>(b, norm_shape_)).data();
    }
    const T* px = x.data<T>();
    T* py = ctx.output(0).data<T>();
    U* mean_out = ctx.has_output(1) ? ctx.output(1).data<U>() : nullptr;
    U* inv_out = ctx.has_output(2) ? ctx.output(2).data<U>() : nullptr;
    const int64_t d = d_;
    const T eps = T(eps_);
    parallel_for(rows_, std::max<int64_t>(1, 4096 / std::max<int64_t>(d, 1)), [&](int64_t s, int64_t e) {
      for (int64_t r = s; r < e; ++r) {
        const T* xr = px + r * d;
        T* yr = py + r * d;
#if defined(KILN_VEC)
        if constexpr (std::is_same_v<T, float> && std::is_same_v<U, float>) {
          float mean, inv;
          normalize_row(xr, r + 1 < e ? xr + d : xr, yr, d, scale, bias, eps, mean, inv);
          if (mean_out) mean_out[r] = mean;
          if (inv_out) inv_out[r] = inv;
          continue;
        }
#endif
        T sum = 0;
#pragma omp simd reduction(+ : sum)
        for (int64_t i = 0; i < d; ++i) sum += xr[i];
        const T mean = sum / T(d);
        T sq = 0;
#pragma omp simd reduction(+ : sq)
        for (int64_t i = 0; i < d; ++i) sq += (xr[i] - mean) * (xr[i] - mean);
        const T inv = T(1) / std::sqrt(sq / T(d) + eps);
        if (bias) {
#pragma omp simd
          for (int64_t i = 0; i < d; ++i) yr[i] = (xr[i] - mean) * inv * scale[i] + bias[i];
        } else {
#pragma omp simd
          for (int64_t i = 0; i < d; ++i) yr[i] = (xr[i] - mean) * inv * scale[i];
        }
        if (mean_out) mean_out[r] = U(mean);
        if (inv_out) inv_out[r] = U(inv);
      }
    });
  }

  int64_t axis_;
  float eps_;
  DType stash_ = DType::Float32;
  Shape norm_shape_;
  int64_t rows_ = 0, d_ = 0;
};

const OpRegistration kLayerNormalization{"LayerNormalization", make_kernel<LayerNormalization>};

}  // namespace
}  // namespace kiln
