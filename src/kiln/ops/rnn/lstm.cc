// LSTM (opset 1+; opset 14 adds layout): gates i, o, f, c (W, R and B in that order), optional
// peepholes P (i, o, f), input_forget coupling f = 1 - i, clip on every gate's pre-activation.
#include "kiln/ops/rnn/rnn_common.h"

namespace kiln::rnn {
namespace {

class Lstm : public RnnBase {
 public:
  explicit Lstm(const KernelInit& init)
      : RnnBase(init, 4, true, {"Sigmoid", "Tanh", "Tanh"}, {{0, 4}}),
        input_forget_(init.node.attr_int("input_forget", 0) != 0) {}

  void compute(OpContext& ctx) override {
    dispatch(FloatTypes{}, dtype_, "LSTM", [&]<typename T>() { run<T>(ctx); });
  }

 private:
  template <typename T>
  void run(OpContext& ctx) {
    if (!begin_run<T>(ctx)) return;
    const int64_t H = hidden_, G = 4 * H;
    const T lim = T(clip_);
    for (int d = 0; d < num_dir_; ++d) {
      Pass<T> p = start_direction<T>(ctx, d);
      const T* peep = ctx.has_input(7) ? ctx.input(7).data<T>() + d * 3 * H : nullptr;
      const Activation &f = act(d, 0), &g = act(d, 1), &h = act(d, 2);
      T* gates = gh<T>(0);
      time_loop(p, [&](int64_t b, int64_t t, int64_t j0, int64_t j1, const T*, T* h_new) {
        const int64_t n = j1 - j0;
        T* gi = gates + b * G + j0;
        T* go = gi + H;
        T* gf = gi + 2 * H;
        T* gc = gi + 3 * H;
        const T* x = p.xw + xw_row(t, b) * G + j0;
        T* c = p.c + b * H + j0;
        T* hb = h_new + j0;
        for (int k = 0; k < 4; ++k) {
#pragma omp simd
          for (int64_t j = 0; j < n; ++j) gi[k * H + j] += x[k * H + j];
        }
        if (peep) {
          const T* pi = peep + j0;
          const T* pf = peep + 2 * H + j0;
#pragma omp simd
          for (int64_t j = 0; j < n; ++j) {
            gi[j] += pi[j] * c[j];
            gf[j] += pf[j] * c[j];
          }
        }
        if (has_clip_) {
          clip_to(gi, n, lim);
          clip_to(gf, n, lim);
          clip_to(gc, n, lim);
        }
        activate(f, gi, n);
        if (input_forget_) {
#pragma omp simd
          for (int64_t j = 0; j < n; ++j) gf[j] = T(1) - gi[j];
        } else {
          activate(f, gf, n);
        }
        activate(g, gc, n);
#pragma omp simd
        for (int64_t j = 0; j < n; ++j) c[j] = gf[j] * c[j] + gi[j] * gc[j];
        if (peep) {
          const T* po = peep + H + j0;  // the output gate peeks at the new cell state
#pragma omp simd
          for (int64_t j = 0; j < n; ++j) go[j] += po[j] * c[j];
        }
        if (has_clip_) clip_to(go, n, lim);
        activate(f, go, n);
        std::memcpy(gc, c, size_t(n) * sizeof(T));
        activate(h, gc, n);
#pragma omp simd
        for (int64_t j = 0; j < n; ++j) hb[j] = go[j] * gc[j];
        if (p.y) std::memcpy(p.y + y_off(t, d, b) + j0, hb, size_t(n) * sizeof(T));
      });
      finish_direction(ctx, p);
    }
  }

  bool input_forget_;
};

const OpRegistration kLstm{"LSTM", make_kernel<Lstm>};

}  // namespace
}  // namespace kiln::rnn
