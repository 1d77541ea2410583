// Shared machinery of LSTM, GRU and RNN. Each direction runs in two phases:
//   1. one big GEMM projects every time step of X at once: XW = X·W^T + bias, [rows, G*H];
//   2. the time loop: per step one GEMM of the hidden state with R (packed once), then a fused
//      gate loop per batch row that reads XW and the recurrent product and updates the state.
// All scratch lives in the kernel, sized in prepare, so the time loop never allocates.
// XW rows follow X's own row order (time- or batch-major), so the layout attribute costs nothing.
#pragma once

#include <algorithm>
#include <cmath>
#include <optional>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "kiln/core/parallel.h"
#include "kiln/exec/kernel.h"
#include "kiln/ops/common/dnnl.h"
#include "kiln/ops/math/packed_gemm.h"

namespace kiln::rnn {

// --- activations ----------------------------------------------------------------------------

enum class ActKind { Sigmoid, Tanh, Relu, LeakyRelu, ThresholdedRelu, ScaledTanh, HardSigmoid, Elu, Softsign, Softplus, Affine };

struct Activation {
  ActKind kind = ActKind::Sigmoid;
  float alpha = 0, beta = 0;
};

// The node's activations, `per_dir` for each of `num_dir` directions, with alphas and betas
// handed in order to the functions that take them (ONNX Runtime's reading of the spec).
std::vector<Activation> parse_activations(const ir::Node& node, int per_dir, int num_dir,
                                          const std::vector<std::string>& defaults);

// exp for float as a branch-free polynomial that vectorizes under omp simd (relative error
// ~2e-7); glibc's vector expf is only reachable with -ffast-math. The floor of -86 keeps results
// normal: denormals, which saturated gates would otherwise make, cost ~100 cycles each.
inline float vexp(float x) {
  x = std::min(std::max(x, -86.0f), 88.0f);
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = p * r * r + r + 1.0f;
  const int32_t bits = (int32_t(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  return e * scale;
}
inline double vexp(double x) { return std::exp(x); }

template <typename T>
inline T sigmoid(T x) {
  return T(1) / (T(1) + vexp(-x));
}
template <typename T>
inline T tanh_fn(T x) {
  if constexpr (std::is_same_v<T, double>) {
    return std::tanh(x);
  } else {
    const T e = vexp(T(-2) * std::abs(x));
    const T t = (T(1) - e) / (T(1) + e);
    return x < T(0) ? -t : t;
  }
}

// A float sigmoid or tanh in Kiln's vector forms, in place; false for the other activations
// (and without AVX-512 or AVX2).
bool activate_vectors(const Activation& act, float* x, int64_t n);

template <typename T>
void activate(const Activation& act, T* x, int64_t n) {
  const T a = T(act.alpha), b = T(act.beta);
  if constexpr (std::is_same_v<T, float>)
    if (activate_vectors(act, x, n)) return;
  switch (act.kind) {
    case ActKind::Sigmoid:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) x[i] = sigmoid(x[i]);
      break;
    case ActKind::Tanh:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) x[i] = tanh_fn(x[i]);
      break;
    case ActKind::Relu:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) x[i] = x[i] > T(0) ? x[i] : T(0);
      break;
    case ActKind::LeakyRelu:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) x[i] = x[i] >= T(0) ? x[i] : a * x[i];
      break;
    case ActKind::ThresholdedRelu:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) x[i] = x[i] > a ? x[i] : T(0);
      break;
    case ActKind::ScaledTanh:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) x[i] = a * tanh_fn(b * x[i]);
      break;
    case ActKind::HardSigmoid:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) x[i] = std::min(std::max(a * x[i] + b, T(0)), T(1));
      break;
    case ActKind::Elu:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) x[i] = x[i] >= T(0) ? x[i] : a * (vexp(x[i]) - T(1));
      break;
    case ActKind::Softsign:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) x[i] = x[i] / (T(1) + std::abs(x[i]));
      break;
    case ActKind::Softplus:
      // log1p(exp(x)) overflows for large x, where it equals x.
      for (int64_t i = 0; i < n; ++i) x[i] = x[i] > T(30) ? x[i] : std::log1p(std::exp(x[i]));
      break;
    case ActKind::Affine:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) x[i] = a * x[i] + b;
      break;
  }
}

template <typename T>
inline void clip_to(T* x, int64_t n, T limit) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) x[i] = std::min(std::max(x[i], -limit), limit);
}

// --- GEMM -----------------------------------------------------------------------------------

// C[m, n] = A[m, k] · W^T (+ bias[n]) with W as ONNX stores it: row-major [n, k]. float runs on
// oneDNN with W packed once into its blocked layout and memory objects made once, so a call
// inside the time loop allocates nothing; double runs on a loop over a transposed copy of W.
class Projection {
 public:
  void init(DType dtype, int64_t m, int64_t k, int64_t n, bool bias);
  // Packs W (row-major [n, k]); needed when packed() is false and whenever W's values change.
  void pack(const void* w);
  // False after an init whose weight layout differs from the one packed before.
  bool packed() const { return packed_ok_; }
  void run(const void* a, void* c, const void* bias);

 private:
  DType dtype_ = DType::Undefined;
  int64_t m_ = 0, k_ = 0, n_ = 0;
  bool bias_ = false;
  bool packed_ok_ = false;
  dnnl::matmul prim_;  // where the machine has no panel layout for packed_gemm
  dnnl::memory a_mem_, c_mem_, bias_mem_, packed_;
  std::unordered_map<int, dnnl::memory> args_;
  std::optional<PackedPanels> panels_;  // W^T in packed_gemm's panels, over packed_
  std::vector<double> wt_;  // double: W^T, [k, n]
};

// A grow-only aligned scratch buffer owned by a kernel.
class Scratch {
 public:
  void reserve(size_t bytes) {
    if (bytes > bytes_) {
      buf_ = aligned_buffer(bytes);
      bytes_ = bytes;
    }
  }
  template <typename T>
  T* get() const { return static_cast<T*>(buf_.get()); }

 private:
  std::shared_ptr<void> buf_;
  size_t bytes_ = 0;
};

// The recurrent product of a small batch, h · R^T, restricted to a range of hidden units. R is
// repacked so that for each k the gates of 16 consecutive units sit side by side: a thread that
// owns a range of units computes all their gates (and so can update their state with no one
// else's results) while streaming only its own slice of R, which stays in its core's cache from
// step to step. oneDNN's matmul runs this one-row product at a fraction of its GEMM speed.
class GateGemv {
 public:
  static constexpr int64_t kUnits = 16;  // hidden units per block (one AVX-512 register)
  // R: row-major [gates * hidden, hidden], ONNX's layout for one direction.
  void pack(const float* r, int gates, int64_t hidden);
  int64_t blocks() const { return (hidden_ + kUnits - 1) / kUnits; }
  // out[b, g * hidden + j] = sum_q h[b, q] · R[g * hidden + j, q] for the units j of blocks
  // [blk0, blk1); h is [batch, hidden], out [batch, gates * hidden].
  void run(const float* h, int64_t batch, float* out, int64_t blk0, int64_t blk1) const;

 private:
  int gates_ = 0;
  int64_t hidden_ = 0;
  Scratch w_;  // [block][q][gate][16], zero past the last unit
};

// --- the kernel base ------------------------------------------------------------------------

// Inputs: X W R B sequence_lens initial_h [initial_c P]; outputs: Y Y_h [Y_c].
class RnnBase : public Kernel {
 public:
  // gates: 4 (LSTM, iofc), 3 (GRU, zrh), 1 (RNN). `splits` cut R's gate rows into the
  // recurrent GEMMs of one step, as (first gate, gate count): one split for all gates, except
  // GRU without linear_before_reset, whose h gate multiplies (r ⊙ H) by its own block of R.
  RnnBase(const KernelInit& init, int gates, bool has_cell, const std::vector<std::string>& default_acts,
          std::vector<std::pair<int, int>> splits);
  void prepare(OpContext& ctx) override;

 protected:
  // One direction's run over T = float or double.
  template <typename T>
  struct Pass {
    int d = 0;
    bool reverse = false;
    const T* xw = nullptr;  // [rows, G*H]: X·W^T + bias, rows in X's order
    T* h = nullptr;         // [batch, H] hidden state, updated in place
    T* c = nullptr;         // [batch, H] cell state (LSTM)
    T* y = nullptr;         // Y, or null when not requested
    int64_t max_len = 0;
  };

  // Reads sequence_lens and packs weights that are not initializers. Call first in compute;
  // false when there is nothing to compute (no batch rows or hidden units: empty outputs).
  template <typename T>
  bool begin_run(OpContext& ctx);
  // Projects X for direction d and loads the initial states.
  template <typename T>
  Pass<T> start_direction(OpContext& ctx, int d);
  // Writes Y_h (and Y_c) and zeroes Y past each sequence's length.
  template <typename T>
  void finish_direction(OpContext& ctx, const Pass<T>& p);

  // The time loop of one direction for ops with one recurrent product per step: per step, the
  // gates' recurrent part for every row goes to gh(0) ([batch, gates*H]), then
  // cell(b, t, j0, j1, h_prev, h_new) updates hidden units [j0, j1) of each running row b (time
  // index t) from it; h_prev and h_new are the row's state before and after the step (the same
  // row when updated in place). Small float batches run on GateGemv with the units split over
  // the team, one barrier per step; the rest on a oneDNN GEMM per step.
  template <typename T, typename Cell>
  void time_loop(Pass<T>& p, Cell&& cell);

  // gh[split] = h · R_split^T for direction d.
  template <typename T>
  void recurrent(int d, int split, const T* h, T* gh) { rec_[size_t(d)][size_t(split)].run(h, gh, nullptr); }
  template <typename T>
  T* gh(int split) const { return gh_[size_t(split)].get<T>(); }

  // Calls fn(b, t) for each batch row still running at step s, t being its time index; in
  // parallel over rows when the step has enough work.
  template <typename Fn>
  void for_rows(int64_t s, bool reverse, Fn&& fn) const {
    parallel_for(batch_, row_grain_, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t len = lens_[size_t(b)];
        if (s >= len) continue;
        fn(b, reverse ? len - 1 - s : s);
      }
    });
  }
  int64_t xw_row(int64_t t, int64_t b) const { return layout_ ? b * seq_ + t : t * batch_ + b; }
  // Offset of (t, direction d, batch b) in Y.
  int64_t y_off(int64_t t, int d, int64_t b) const {
    return (layout_ ? (b * seq_ + t) * num_dir_ + d : (t * num_dir_ + d) * batch_ + b) * hidden_;
  }
  // Offset of (direction d, batch b) in Y_h, Y_c, initial_h and initial_c.
  int64_t state_off(int d, int64_t b) const { return (layout_ ? b * num_dir_ + d : d * batch_ + b) * hidden_; }
  const Activation& act(int d, int i) const { return acts_[size_t(d * acts_per_dir_ + i)]; }

  std::string op_;
  int gates_;
  bool has_cell_;
  int num_dir_ = 1;
  bool reverse_only_ = false;
  int64_t layout_ = 0;
  int64_t hidden_attr_ = -1;
  bool has_clip_ = false;
  float clip_ = 0;
  int acts_per_dir_ = 0;
  std::vector<Activation> acts_;
  std::vector<std::pair<int, int>> splits_;
  int rb_apart_gate_ = -1;
  bool w_const_ = false, r_const_ = false;

  // Per shape.
  DType dtype_ = DType::Undefined;
  int64_t seq_ = 0, batch_ = 0, input_ = 0, hidden_ = 0, row_grain_ = 1;
  bool has_bias_ = false;
  std::vector<int64_t> lens_;
  std::vector<Projection> xw_proj_;               // per direction
  std::vector<std::vector<Projection>> rec_;      // per direction, per split
  Scratch xw_, h_, c_, bias_;
  std::vector<Scratch> gh_;                       // per split: [batch, gates*H]
  bool use_gemv_ = false;                         // time_loop runs on gemv_, not rec_
  bool gemv_packed_ = false;                      // gemv_ holds initializer R
  std::vector<GateGemv> gemv_;                    // per direction
};

// Batches up to this size take GateGemv, larger ones oneDNN's GEMM. With passes of up to 6 rows
// over R, GateGemv is as fast as or faster than the GEMM up to 24 rows (hidden 256, the zoo's
// LSTM: 8 rows 3.95 -> 3.74 ms at 1 thread, 2.81 -> 2.28 at 2; 24 rows level at 1, 7% at 2).
constexpr int64_t kGemvMaxBatch = 24;

template <typename T, typename Cell>
void RnnBase::time_loop(Pass<T>& p, Cell&& cell) {
  const int64_t H = hidden_;
  if constexpr (std::is_same_v<T, float>) {
    if (use_gemv_) {
      const GateGemv& gv = gemv_[size_t(p.d)];
      T* hbuf[2] = {p.h, p.h + batch_ * H};
      T* gates = gh<T>(0);
      const int64_t nblk = gv.blocks();
      // A thread per 64K multiply-adds of a step at least: less does not pay for the barrier.
      const int64_t macs = batch_ * gates_ * H * H;
      const int nt = omp_in_parallel() ? 1 : int(std::min<int64_t>({num_threads(), nblk, std::max<int64_t>(1, macs >> 16)}));
      // With two rows a thread or more, the threads split the rows instead of the units: each
      // reads all of R (from its own L2) for rows of its own, whose steps need nothing from the
      // other threads, so no barrier per step and no h crossing cores. The zoo's LSTM (hidden
      // 256), 2 threads: 4 rows 1.22-1.28 -> 1.12-1.17 ms, 8 rows 2.32-2.43 -> 1.92-2.15, 16
      // rows 4.39-4.63 -> 3.92-4.05. One row a thread reads R twice as often: units stay split.
      const bool by_rows = nt > 1 && batch_ >= 2 * nt;
#pragma omp parallel num_threads(nt) if (nt > 1)
      {
        const int64_t ti = omp_get_thread_num(), tn = omp_get_num_threads();
        // This thread's rows [r0, r1) and unit blocks [b0, b1) (units [j0, j1)).
        const int64_t r0 = by_rows ? batch_ * ti / tn : 0, r1 = by_rows ? batch_ * (ti + 1) / tn : batch_;
        const int64_t b0 = by_rows ? 0 : nblk * ti / tn, b1 = by_rows ? nblk : nblk * (ti + 1) / tn;
        const int64_t j0 = std::min(H, b0 * GateGemv::kUnits), j1 = std::min(H, b1 * GateGemv::kUnits);
        for (int64_t s = 0; s < p.max_len; ++s) {
          const T* hin = hbuf[s & 1];
          T* hout = hbuf[(s + 1) & 1];
          gv.run(hin + r0 * H, r1 - r0, gates + r0 * gates_ * H, b0, b1);
          for (int64_t b = r0; b < r1; ++b) {
            const int64_t len = lens_[size_t(b)];
            if (s < len) cell(b, p.reverse ? len - 1 - s : s, j0, j1, hin + b * H, hout + b * H);
            else std::copy(hin + b * H + j0, hin + b * H + j1, hout + b * H + j0);
          }
          if (!by_rows) {  // the next step reads every unit of hout and overwrites hin
#pragma omp barrier
          }
        }
      }
      p.h = hbuf[p.max_len & 1];
      return;
    }
  }
  T* gates = gh<T>(0);
  for (int64_t s = 0; s < p.max_len; ++s) {
    recurrent<T>(p.d, 0, p.h, gates);
    for_rows(s, p.reverse, [&](int64_t b, int64_t t) { cell(b, t, int64_t(0), H, p.h + b * H, p.h + b * H); });
  }
}

template <typename T>
bool RnnBase::begin_run(OpContext& ctx) {
  if (batch_ == 0 || hidden_ == 0) return false;
  if (ctx.has_input(4)) {
    const int32_t* l = ctx.input(4).data<int32_t>();
    for (int64_t b = 0; b < batch_; ++b) {
      if (l[b] < 0 || l[b] > seq_)
        fail(ErrorCode::InvalidArgument, "sequence_lens[", b, "] = ", l[b], " is outside [0, ", seq_, "]");
      lens_[size_t(b)] = l[b];
    }
  } else {
    std::fill(lens_.begin(), lens_.end(), seq_);
  }
  const int64_t gh = gates_ * hidden_;
  for (int d = 0; d < num_dir_; ++d) {
    if (!w_const_) xw_proj_[size_t(d)].pack(ctx.input(1).data<T>() + d * gh * input_);
    if (r_const_) continue;
    if constexpr (std::is_same_v<T, float>) {
      if (use_gemv_) {
        gemv_[size_t(d)].pack(ctx.input(2).data<float>() + d * gh * hidden_, gates_, hidden_);
        continue;
      }
    }
    for (size_t s = 0; s < splits_.size(); ++s)
      rec_[size_t(d)][s].pack(ctx.input(2).data<T>() + (d * gh + splits_[s].first * hidden_) * hidden_);
  }
  return true;
}

template <typename T>
RnnBase::Pass<T> RnnBase::start_direction(OpContext& ctx, int d) {
  Pass<T> p;
  p.d = d;
  p.reverse = reverse_only_ || d == 1;
  const int64_t gh = gates_ * hidden_, hs = hidden_;
  const T* bias = nullptr;
  if (has_bias_) {
    // Wb + Rb ride on the input GEMM, except the Rb of `rb_apart_gate_` (GRU's h gate with
    // linear_before_reset, where r scales it), which the gate loop adds itself.
    const T* b = ctx.input(3).data<T>() + d * 2 * gh;
    T* fused = bias_.get<T>();
#pragma omp simd
    for (int64_t j = 0; j < gh; ++j) fused[j] = b[j] + b[gh + j];
    if (rb_apart_gate_ >= 0)
      std::memcpy(fused + rb_apart_gate_ * hs, b + rb_apart_gate_ * hs, size_t(hs) * sizeof(T));
    bias = fused;
  }
  p.xw = xw_.get<T>();
  xw_proj_[size_t(d)].run(ctx.input(0).data<T>(), xw_.get<T>(), bias);
  p.h = h_.get<T>();
  p.c = has_cell_ ? c_.get<T>() : nullptr;
  const T* h0 = ctx.has_input(5) ? ctx.input(5).data<T>() : nullptr;
  const T* c0 = has_cell_ && ctx.has_input(6) ? ctx.input(6).data<T>() : nullptr;
  for (int64_t b = 0; b < batch_; ++b) {
    if (h0) std::memcpy(p.h + b * hs, h0 + state_off(d, b), size_t(hs) * sizeof(T));
    else std::fill_n(p.h + b * hs, hs, T(0));
    if (p.c) {
      if (c0) std::memcpy(p.c + b * hs, c0 + state_off(d, b), size_t(hs) * sizeof(T));
      else std::fill_n(p.c + b * hs, hs, T(0));
    }
  }
  p.y = ctx.has_output(0) ? ctx.output(0).data<T>() : nullptr;
  p.max_len = *std::max_element(lens_.begin(), lens_.end());
  return p;
}

template <typename T>
void RnnBase::finish_direction(OpContext& ctx, const Pass<T>& p) {
  const int64_t hs = hidden_;
  // A sequence of length 0 reports zero states, as ONNX Runtime does.
  auto final_state = [&](int out, const T* state) {
    if (!ctx.has_output(out)) return;
    T* dst = ctx.output(out).data<T>();
    for (int64_t b = 0; b < batch_; ++b) {
      if (lens_[size_t(b)] == 0) std::fill_n(dst + state_off(p.d, b), hs, T(0));
      else std::memcpy(dst + state_off(p.d, b), state + b * hs, size_t(hs) * sizeof(T));
    }
  };
  final_state(1, p.h);
  if (has_cell_) final_state(2, p.c);
  if (p.y)
    for (int64_t b = 0; b < batch_; ++b)
      for (int64_t t = lens_[size_t(b)]; t < seq_; ++t) std::fill_n(p.y + y_off(t, p.d, b), hs, T(0));
}

}  // namespace kiln::rnn
