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
      // z and r of units [j0, j0 + n): pre-activation in place, then f. gzr and x point at the
      // row's gates and projected input.
      auto zr = [&](T* gzr, const T* x, int64_t j0, int64_t n) {
        for (T* gate : {gzr + j0, gzr + H + j0}) {
          const T* xg = x + (gate - gzr);
#pragma omp simd
          for (int64_t j = 0; j < n; ++j) gate[j] += xg[j];
          if (has_clip_) clip_to(gate, n, lim);
          activate(f, gate, n);
        }
      };
      // New state of n units from z and the candidate's pre-activation a (all at the units).
      auto finish = [&](int64_t b, int64_t t, int64_t j0, int64_t n, const T* z, T* a, const T* h_prev, T* h_new) {
        if (has_clip_) clip_to(a, n, lim);
        activate(g, a, n);
#pragma omp simd
        for (int64_t j = 0; j < n; ++j) h_new[j] = (T(1) - z[j]) * a[j] + z[j] * h_prev[j];
        if (p.y) std::memcpy(p.y + y_off(t, d, b) + j0, h_new, size_t(n) * sizeof(T));
      };
      if (lbr_) {
        const T* rbh = has_bias_ ? ctx.input(3).data<T>() + d * 2 * G + G + 2 * H : nullptr;
        T* gates = gh<T>(0);
        time_loop(p, [&](int64_t b, int64_t t, int64_t j0, int64_t j1, const T* h_prev, T* h_new) {
          const int64_t n = j1 - j0;
          T* gz = gates + b * G;
          const T* x = p.xw + xw_row(t, b) * G;
          zr(gz, x, j0, n);
          const T* r = gz + H + j0;
          T* a = gz + 2 * H + j0;
          const T* xh = x + 2 * H + j0;
          if (rbh) {
#pragma omp simd
            for (int64_t j = 0; j < n; ++j) a[j] += rbh[j0 + j];
          }
#pragma omp simd
          for (int64_t j = 0; j < n; ++j) a[j] = xh[j] + r[j] * a[j];
          finish(b, t, j0, n, gz + j0, a, h_prev + j0, h_new + j0);
        });
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
            zr(gz, p.xw + xw_row(t, b) * G, 0, H);
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
            finish(b, t, 0, H, gzr + b * 2 * H, a, p.h + b * H, p.h + b * H);
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
