// GRU (opset 1+; linear_before_reset from opset 3, layout from 14): gates z, r, h (W, R and B in
// that order), clip on every gate's pre-activation.
//   linear_before_reset = 0: h = g(X·Wh + (r ⊙ H)·Rh + Rbh + Wbh), a second GEMM per step;
//   linear_before_reset = 1: h = g(X·Wh + r ⊙ (H·Rh + Rbh) + Wbh), one GEMM for all gates.
#include "kiln/ops/rnn/rnn_common.h"

namespace kiln::rnn {
namespace {

class Gru : public RnnBase {
 public:
  explicit Gru(const KernelInit& init) : Gru(init, init.node.attr_int("linear_before_reset", 0) != 0) {}

  void prepare(OpContext& ctx) override {
    RnnBase::prepare(ctx);
    if (!lbr_) rh_.reserve(size_t(batch_ * hidden_) * dtype_size(dtype_));
  }

  void compute(OpContext& ctx) override {
    dispatch(FloatTypes{}, dtype_, "GRU", [&]<typename T>() { run<T>(ctx); });
  }

 private:
  Gru(const KernelInit& init, bool lbr)
      : RnnBase(init, 3, false, {"Sigmoid", "Tanh"},
                lbr ? std::vector<std::pair<int, int>>{{0, 3}} : std::vector<std::pair<int, int>>{{0, 2}, {2, 1}}),
        lbr_(lbr) {
    if (lbr) rb_apart_gate_ = 2;
  }

  template <typename T>
  void run(OpContext& ctx) {
    if (!begin_run<T>(ctx)) return;
    const int64_t H = hidden_, G = 3 * H;
    const T lim = T(clip_);
    for (int d = 0; d < num_dir_; ++d) {
      Pass<T> p = start_direction<T>(ctx, d);
      const Activation &f = act(d, 0), &g = act(d, 1);
      // z and r: pre-activation in place, then f over both blocks at once.
      auto zr = [&](T* gzr, const T* x) {
#pragma omp simd
        for (int64_t j = 0; j < 2 * H; ++j) gzr[j] += x[j];
        if (has_clip_) clip_to(gzr, 2 * H, lim);
        activate(f, gzr, 2 * H);
      };
      // New state from z and the candidate's pre-activation a.
      auto finish = [&](int64_t b, int64_t t, const T* z, T* a) {
        if (has_clip_) clip_to(a, H, lim);
        activate(g, a, H);
        T* hb = p.h + b * H;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) hb[j] = (T(1) - z[j]) * a[j] + z[j] * hb[j];
        if (p.y) std::memcpy(p.y + y_off(t, d, b), hb, size_t(H) * sizeof(T));
      };
      if (lbr_) {
        const T* rbh = has_bias_ ? ctx.input(3).data<T>() + d * 2 * G + G + 2 * H : nullptr;
        T* gates = gh<T>(0);
        for (int64_t s = 0; s < p.max_len; ++s) {
          recurrent<T>(d, 0, p.h, gates);
          for_rows(s, p.reverse, [&](int64_t b, int64_t t) {
            T* gz = gates + b * G;
            const T* x = p.xw + xw_row(t, b) * G;
            zr(gz, x);
            const T* r = gz + H;
            T* a = gz + 2 * H;
            if (rbh) {
#pragma omp simd
              for (int64_t j = 0; j < H; ++j) a[j] += rbh[j];
            }
#pragma omp simd
            for (int64_t j = 0; j < H; ++j) a[j] = x[2 * H + j] + r[j] * a[j];
            finish(b, t, gz, a);
          });
        }
      } else {
        T* gzr = gh<T>(0);
        T* ghh = gh<T>(1);
        T* rh = rh_.get<T>();
        // Rows that are done keep stale but finite values: the GEMM reads them, nothing uses them.
        std::fill_n(rh, batch_ * H, T(0));
        for (int64_t s = 0; s < p.max_len; ++s) {
          recurrent<T>(d, 0, p.h, gzr);
          for_rows(s, p.reverse, [&](int64_t b, int64_t t) {
            T* gz = gzr + b * 2 * H;
            zr(gz, p.xw + xw_row(t, b) * G);
            const T* r = gz + H;
            const T* hb = p.h + b * H;
            T* rhb = rh + b * H;
#pragma omp simd
            for (int64_t j = 0; j < H; ++j) rhb[j] = r[j] * hb[j];
          });
          recurrent<T>(d, 1, rh, ghh);
          for_rows(s, p.reverse, [&](int64_t b, int64_t t) {
            T* a = ghh + b * H;
            const T* x = p.xw + xw_row(t, b) * G + 2 * H;
#pragma omp simd
            for (int64_t j = 0; j < H; ++j) a[j] += x[j];
            finish(b, t, gzr + b * 2 * H, a);
          });
        }
      }
      finish_direction(ctx, p);
    }
  }

  bool lbr_;
  Scratch rh_;  // r ⊙ H, [batch, H]
};

const OpRegistration kGru{"GRU", make_kernel<Gru>};

}  // namespace
}  // namespace kiln::rnn
