// RNN (opset 1+; opset 14 adds layout): H = f(X·Wi + H·Ri + Wbi + Rbi), clip on the
// pre-activation.
#include "kiln/ops/rnn/rnn_common.h"

namespace kiln::rnn {
namespace {

class Rnn : public RnnBase {
 public:
  explicit Rnn(const KernelInit& init) : RnnBase(init, 1, false, {"Tanh"}, {{0, 1}}) {}

  void compute(OpContext& ctx) override {
    dispatch(FloatTypes{}, dtype_, "RNN", [&]<typename T>() { run<T>(ctx); });
  }

 private:
  template <typename T>
  void run(OpContext& ctx) {
    if (!begin_run<T>(ctx)) return;
    const int64_t H = hidden_;
    const T lim = T(clip_);
    for (int d = 0; d < num_dir_; ++d) {
      Pass<T> p = start_direction<T>(ctx, d);
      const Activation& f = act(d, 0);
      const T* gates = gh<T>(0);
      time_loop(p, [&](int64_t b, int64_t t, int64_t j0, int64_t j1, const T*, T* h_new) {
        const int64_t n = j1 - j0;
        const T* gr = gates + b * H + j0;
        const T* x = p.xw + xw_row(t, b) * H + j0;
        T* hb = h_new + j0;
#pragma omp simd
        for (int64_t j = 0; j < n; ++j) hb[j] = gr[j] + x[j];
        if (has_clip_) clip_to(hb, n, lim);
        activate(f, hb, n);
        if (p.y) std::memcpy(p.y + y_off(t, d, b) + j0, hb, size_t(n) * sizeof(T));
      });
      finish_direction(ctx, p);
    }
  }
};

const OpRegistration kRnn{"RNN", make_kernel<Rnn>};

}  // namespace
}  // namespace kiln::rnn
