// MeanVarianceNormalization (opsets 9, 13): Y = (X - E[X]) / (sqrt(E[X^2] - E[X]^2) + 1e-9),
// the expectations taken over `axes` (default [0, 2, 3]), as ONNX's function body defines it.
// The moments accumulate in double so the variance does not cancel away.
#include "kiln/ops/reduce/reduce.h"

namespace kiln {
namespace {

struct Moments {
  double mean, inv;
};

template <typename T>
struct MomentsOp {
  struct Acc {
    double s = 0, ss = 0;
  };
  Acc init() const { return {}; }
  Acc step(Acc a, T x) const { return {a.s + double(x), a.ss + double(x) * double(x)}; }
  Acc merge(Acc a, Acc b) const { return {a.s + b.s, a.ss + b.ss}; }
  Moments done(Acc a, int64_t n) const {
    const double mean = a.s / double(n);
    const double var = std::max(0.0, a.ss / double(n) - mean * mean);
    return {mean, 1.0 / (std::sqrt(var) + 1e-9)};
  }
};

class MeanVarianceNormalization : public Kernel {
 public:
  explicit MeanVarianceNormalization(const ir::Node& node) : axes_(node.attr_ints("axes", {0, 2, 3})) {}

  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    plan_ = make_reduce_plan(x.shape(), axes_mask(axes_, x.rank()), true);
    ctx.set_output(0, x.dtype(), x.shape());
  }

  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.size() == 0) return;
    dispatch(FloatTypes{}, x.dtype(), "MeanVarianceNormalization", [&]<typename T>() {
      const T* px = x.data<T>();
      T* py = ctx.output(0).data<T>();
      std::vector<Moments> st(size_t(plan_.out_count));
      run_reduce(plan_, px, st.data(), MomentsOp<T>{});
      const ReducePlan& p = plan_;
      if (p.inner_reduced) {  // each output's elements are contiguous rows
        parallel_for(p.out_count, 1, [&](int64_t s, int64_t e) {
          Odometer od(p.kept_sizes, p.kept_strides, s);
          for (int64_t o = s; o < e; ++o, od.next()) {
            const T mean = T(st[size_t(o)].mean), inv = T(st[size_t(o)].inv);
            for (int64_t off : p.red_offsets) {
              const T* xr = px + od.offset() + off;
              T* yr = py + od.offset() + off;
#pragma omp simd
              for (int64_t i = 0; i < p.inner; ++i) yr[i] = (xr[i] - mean) * inv;
            }
          }
        });
      } else {  // rows of `inner` adjacent outputs
        const int64_t k = p.inner;
        parallel_for(p.out_count / k, 1, [&](int64_t s, int64_t e) {
          std::vector<T> mean(static_cast<size_t>(k)), inv(static_cast<size_t>(k));
          Odometer od(p.kept_sizes, p.kept_strides, s);
          for (int64_t ob = s; ob < e; ++ob, od.next()) {
            for (int64_t t = 0; t < k; ++t) mean[size_t(t)] = T(st[size_t(ob * k + t)].mean), inv[size_t(t)] = T(st[size_t(ob * k + t)].inv);
            for (int64_t off : p.red_offsets) {
              const T* xr = px + od.offset() + off;
              T* yr = py + od.offset() + off;
#pragma omp simd
              for (int64_t t = 0; t < k; ++t) yr[t] = (xr[t] - mean[size_t(t)]) * inv[size_t(t)];
            }
          }
        });
      }
    });
  }

 private:
  std::vector<int64_t> axes_;
  ReducePlan plan_;
};

const OpRegistration kMeanVarianceNormalization{"MeanVarianceNormalization", make_kernel<MeanVarianceNormalization>};

}  // namespace
}  // namespace kiln
