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
      T* gates = gh<T>(0);
      for (int64_t s = 0; s < p.max_len; ++s) {
        recurrent<T>(d, 0, p.h, gates);
        for_rows(s, p.reverse, [&](int64_t b, int64_t t) {
          const T* gr = gates + b * H;
          const T* x = p.xw + xw_row(t, b) * H;
          T* hb = p.h + b * H;
#pragma omp simd
          for (int64_t j = 0; j < H; ++j) hb[j] = gr[j] + x[j];
          if (has_clip_) clip_to(hb, H, lim);
          activate(f, hb, H);
          if (p.y) std::memcpy(p.y + y_off(t, d, b), hb, size_t(H) * sizeof(T));
        });
      }
      finish_direction(ctx, p);
    }
  }
};

const OpRegistration kRnn{"RNN", make_kernel<Rnn>};

}  // namespace
}  // namespace kiln::rnn
