#include "kiln/ops/rnn/rnn_common.h"

#include <algorithm>
#include <cctype>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include "kiln/ops/math/fast_math.h"

// GCC 12 flags the undefined pass-through operand of the unmasked AVX-512 max as maybe-uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace kiln::rnn {

namespace {

struct ActInfo {
  const char* name;
  ActKind kind;
  bool uses_alpha, uses_beta;
  float alpha, beta;  // defaults, as the standalone ONNX operators have them
};

constexpr ActInfo kActs[] = {
    {"sigmoid", ActKind::Sigmoid, false, false, 0, 0},
    {"tanh", ActKind::Tanh, false, false, 0, 0},
    {"relu", ActKind::Relu, false, false, 0, 0},
    {"leakyrelu", ActKind::LeakyRelu, true, false, 0.01f, 0},
    {"thresholdedrelu", ActKind::ThresholdedRelu, true, false, 1.0f, 0},
    {"scaledtanh", ActKind::ScaledTanh, true, true, 1.0f, 1.0f},
    {"hardsigmoid", ActKind::HardSigmoid, true, true, 0.2f, 0.5f},
    {"elu", ActKind::Elu, true, false, 1.0f, 0},
    {"softsign", ActKind::Softsign, false, false, 0, 0},
    {"softplus", ActKind::Softplus, false, false, 0, 0},
    {"affine", ActKind::Affine, true, true, 1.0f, 0},
};

}  // namespace

// The gates' sigmoid and tanh without a division per value (sigmoid with a 14-bit reciprocal
// and a Newton step, tanh with a polynomial near 0): the zoo's LSTM at 1 thread 1.52-1.60 ->
// 1.49-1.51 ms. The floor of -86 keeps a saturated sigmoid normal, as vexp's does (a subnormal
// gate costs ~100 cycles in every multiply that reads it).
bool activate_vectors(const Activation& act, float* x, int64_t n) {
#if defined(__AVX512F__)
  if (act.kind == ActKind::Sigmoid) {
    for (int64_t i = 0; i < n; i += 16) {
      const __mmask16 m = fastmath::avx512::tail_mask(n - i);
      const __m512 v = _mm512_max_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_set1_ps(-86.0f));
      _mm512_mask_storeu_ps(x + i, m, fastmath::avx512::sigmoid(v));
    }
    return true;
  }
#elif defined(__AVX2__) && defined(__FMA__)
  if (act.kind == ActKind::Sigmoid) {
    for (int64_t i = 0; i < n; ++i) x[i] = std::max(x[i], -86.0f);  // NaN stays NaN
    fastmath::sigmoid(x, x, n);
    return true;
  }
#endif
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
  if (act.kind == ActKind::Tanh) {
    fastmath::tanh(x, x, n);
    return true;
  }
#endif
  return false;
}

std::vector<Activation> parse_activations(const ir::Node& node, int per_dir, int num_dir,
                                          const std::vector<std::string>& defaults) {
  std::vector<std::string> names = node.attr_strings("activations");
  const int n = int(names.size());
  if (n == 0) {
    for (int d = 0; d < num_dir; ++d) names.insert(names.end(), defaults.begin(), defaults.end());
  } else if (n == per_dir && num_dir == 2) {
    const std::vector<std::string> one = names;  // one list serves both directions
    names.insert(names.end(), one.begin(), one.end());
  } else if (per_dir == 1 && n == 2 && num_dir == 1) {
    names.resize(1);  // RNN's early default listed Tanh for two directions
  } else if (n != per_dir * num_dir) {
    fail(ErrorCode::InvalidGraph, "expected ", per_dir * num_dir, " activations (", per_dir, " per direction), got ", n);
  }
  const std::vector<float> alphas = node.attr_floats("activation_alpha");
  const std::vector<float> betas = node.attr_floats("activation_beta");
  size_t ai = 0, bi = 0;
  std::vector<Activation> acts;
  for (const std::string& name : names) {
    std::string lower = name;
    for (char& ch : lower) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    const ActInfo* info = nullptr;
    for (const ActInfo& a : kActs)
      if (lower == a.name) info = &a;
    if (!info)
      fail(ErrorCode::InvalidGraph, "activation '", name,
           "' is not one of Sigmoid, Tanh, Relu, LeakyRelu, ThresholdedRelu, ScaledTanh, HardSigmoid, Elu, "
           "Softsign, Softplus, Affine");
    Activation a{info->kind, info->alpha, info->beta};
    if (info->uses_alpha && ai < alphas.size()) a.alpha = alphas[ai++];
    if (info->uses_beta && bi < betas.size()) a.beta = betas[bi++];
    acts.push_back(a);
  }
  return acts;
}

// --- Projection -----------------------------------------------------------------------------

void Projection::init(DType dtype, int64_t m, int64_t k, int64_t n, bool bias) {
  dtype_ = dtype, m_ = m, k_ = k, n_ = n, bias_ = bias;
  if (dtype != DType::Float32) {
    if (wt_.size() != size_t(k * n)) packed_ok_ = false;
    wt_.resize(size_t(k * n));
    return;
  }
  prim_ = dnnl::matmul();
  if (m == 0 || k == 0 || n == 0) return;
  auto& eng = dnnl_engine();
  // packed_gemm takes any row count with nothing made per shape: a new batch or sequence
  // length made oneDNN's matmul build a primitive (LSTM's first run at a doubled batch, 2
  // threads: 1.9x its warm time).
  const dnnl::memory::desc layout = panel_layout(k, n);
  if (PackedPanels::from(layout, nullptr)) {
    if (!packed_ || packed_.get_desc() != layout) {
      packed_ = dnnl::memory(layout, eng);
      panels_ = PackedPanels::from(layout, packed_.get_data_handle());
      packed_ok_ = false;
    }
    return;
  }
  using dt = dnnl::memory::data_type;
  auto a_md = plain_desc({m, k}, dtype);
  auto c_md = plain_desc({m, n}, dtype);
  auto w_any = dnnl::memory::desc({k, n}, dt::f32, dnnl::memory::format_tag::any);
  dnnl::matmul::primitive_desc pd;
  if (bias) {
    auto b_md = plain_desc({1, n}, dtype);
    pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, w_any, b_md, c_md), eng);
    bias_mem_ = dnnl::memory(b_md, eng, DNNL_MEMORY_NONE);
  } else {
    pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, w_any, c_md), eng);
  }
  prim_ = dnnl::matmul(pd);
  a_mem_ = dnnl::memory(a_md, eng, DNNL_MEMORY_NONE);
  c_mem_ = dnnl::memory(c_md, eng, DNNL_MEMORY_NONE);
  if (!packed_ || packed_.get_desc() != pd.weights_desc()) {
    packed_ = dnnl::memory(pd.weights_desc(), eng);
    panels_.reset();
    packed_ok_ = false;
  }
  args_ = {{DNNL_ARG_SRC, a_mem_}, {DNNL_ARG_WEIGHTS, packed_}, {DNNL_ARG_DST, c_mem_}};
  if (bias) args_[DNNL_ARG_BIAS] = bias_mem_;
}

void Projection::pack(const void* w) {
  if (dtype_ != DType::Float32) {
    const double* src = static_cast<const double*>(w);
    for (int64_t j = 0; j < n_; ++j)
      for (int64_t q = 0; q < k_; ++q) wt_[size_t(q * n_ + j)] = src[j * k_ + q];
    packed_ok_ = true;
    return;
  }
  if (!packed_ || m_ == 0 || k_ == 0 || n_ == 0) return;
  // W [n, k] row-major is W^T [k, n] with strides (1, k).
  reorder_into(dnnl::memory::desc({k_, n_}, dnnl::memory::data_type::f32, dnnl::memory::dims{1, k_}), w, packed_);
  packed_ok_ = true;
}

void Projection::run(const void* a, void* c, const void* bias) {
  if (m_ == 0 || n_ == 0) return;
  if (dtype_ == DType::Float32 && k_ > 0 && panels_) {
    GemmEpilogue ep;
    ep.bias = bias_ ? static_cast<const float*>(bias) : nullptr;
    packed_gemm(static_cast<const float*>(a), m_, *panels_, ep, static_cast<float*>(c));
    return;
  }
  if (dtype_ == DType::Float32 && k_ > 0) {
    a_mem_.set_data_handle(const_cast<void*>(a));
    c_mem_.set_data_handle(c);
    if (bias_) bias_mem_.set_data_handle(const_cast<void*>(bias));
    prim_.execute(dnnl_stream(), args_);
    dnnl_stream().wait();
    return;
  }
  auto plain = [&]<typename T>() {
    const T* pa = static_cast<const T*>(a);
    const T* pb = static_cast<const T*>(bias);
    T* pc = static_cast<T*>(c);
    const T* wt = nullptr;
    if constexpr (std::is_same_v<T, double>) wt = wt_.data();
    parallel_for(m_, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, k_ * n_)), [&](int64_t r0, int64_t r1) {
      for (int64_t i = r0; i < r1; ++i) {
        T* row = pc + i * n_;
        if (pb) std::memcpy(row, pb, size_t(n_) * sizeof(T));
        else std::fill_n(row, n_, T(0));
        for (int64_t q = 0; q < k_; ++q) {
          const T av = pa[i * k_ + q];
          const T* w = wt + q * n_;
#pragma omp simd
          for (int64_t j = 0; j < n_; ++j) row[j] += av * w[j];
        }
      }
    });
  };
  if (dtype_ == DType::Float32) plain.operator()<float>();  // k == 0: the bias alone
  else plain.operator()<double>();
}

// --- GateGemv -------------------------------------------------------------------------------

void GateGemv::pack(const float* r, int gates, int64_t hidden) {
  gates_ = gates, hidden_ = hidden;
  w_.reserve(size_t(blocks() * hidden * gates * kUnits) * sizeof(float));
  float* w = w_.get<float>();
  for (int64_t blk = 0; blk < blocks(); ++blk)
    for (int64_t q = 0; q < hidden; ++q)
      for (int g = 0; g < gates; ++g, w += kUnits)
        for (int64_t l = 0; l < kUnits; ++l) {
          const int64_t j = blk * kUnits + l;
          w[l] = j < hidden ? r[(g * hidden + j) * hidden + q] : 0.0f;
        }
}

namespace {

// RB batch rows times NB unit blocks of all G gates, accumulated over the K = hidden inputs;
// enough independent accumulators to keep both FMA ports busy. w points at the first block.
template <int G, int RB, int NB>
void gemv_tile(const float* w, const float* h, int64_t K, float* out, int64_t H, int64_t j) {
  constexpr int64_t U = GateGemv::kUnits;
  const int64_t block = K * G * U;
#if defined(__AVX512F__)
  __m512 acc[RB][NB][G];
  for (auto& a : acc)
    for (auto& b : a)
      for (auto& c : b) c = _mm512_setzero_ps();
  for (int64_t q = 0; q < K; ++q) {
    __m512 wv[NB][G];
    for (int nb = 0; nb < NB; ++nb)
      for (int g = 0; g < G; ++g) {
        wv[nb][g] = _mm512_load_ps(w + nb * block + (q * G + g) * U);
        // Held in a register: folded into each row's FMA, the load would repeat per row.
        __asm__("" : "+v"(wv[nb][g]));
      }
    for (int r = 0; r < RB; ++r) {
      const __m512 hv = _mm512_set1_ps(h[r * K + q]);
      for (int nb = 0; nb < NB; ++nb)
        for (int g = 0; g < G; ++g) acc[r][nb][g] = _mm512_fmadd_ps(hv, wv[nb][g], acc[r][nb][g]);
    }
  }
  for (int nb = 0; nb < NB; ++nb) {
    const int64_t unit = j + nb * U;
    const __mmask16 mask = fastmath::avx512::tail_mask(H - unit);
    for (int r = 0; r < RB; ++r)
      for (int g = 0; g < G; ++g) _mm512_mask_storeu_ps(out + r * G * H + g * H + unit, mask, acc[r][nb][g]);
  }
#elif defined(__AVX2__) && defined(__FMA__)
  // Two registers a block of 16 units.
  __m256 acc[RB][NB][G][2];
  for (auto& a : acc)
    for (auto& b : a)
      for (auto& c : b)
        for (auto& d : c) d = _mm256_setzero_ps();
  for (int64_t q = 0; q < K; ++q)
    for (int r = 0; r < RB; ++r) {
      const __m256 hv = _mm256_set1_ps(h[r * K + q]);
      for (int nb = 0; nb < NB; ++nb)
        for (int g = 0; g < G; ++g)
          for (int half = 0; half < 2; ++half)
            acc[r][nb][g][half] =
                _mm256_fmadd_ps(hv, _mm256_load_ps(w + nb * block + (q * G + g) * U + 8 * half), acc[r][nb][g][half]);
    }
  for (int nb = 0; nb < NB; ++nb) {
    const int64_t unit = j + nb * U, n = std::min(U, H - unit);
    for (int r = 0; r < RB; ++r)
      for (int g = 0; g < G; ++g)
        for (int half = 0; half < 2 && 8 * half < n; ++half) {
          float* dst = out + r * G * H + g * H + unit + 8 * half;
          if (n - 8 * half >= 8) _mm256_storeu_ps(dst, acc[r][nb][g][half]);
          else _mm256_maskstore_ps(dst, fastmath::avx2::tail_mask(n - 8 * half), acc[r][nb][g][half]);
        }
  }
#else
  float acc[RB][NB][G][U] = {};
  for (int64_t q = 0; q < K; ++q)
    for (int r = 0; r < RB; ++r)
      for (int nb = 0; nb < NB; ++nb)
        for (int g = 0; g < G; ++g) {
          const float hv = h[r * K + q];
          const float* wq = w + nb * block + (q * G + g) * U;
#pragma omp simd
          for (int64_t l = 0; l < U; ++l) acc[r][nb][g][l] += hv * wq[l];
        }
  for (int nb = 0; nb < NB; ++nb) {
    const int64_t unit = j + nb * U, n = std::min(U, H - unit);
    for (int r = 0; r < RB; ++r)
      for (int g = 0; g < G; ++g) std::copy_n(acc[r][nb][g], n, out + r * G * H + g * H + unit);
  }
#endif
}

template <int G>
void gemv_rows(const float* w, const float* h, int64_t batch, int64_t K, float* out, int64_t H, int64_t blk0,
               int64_t blk1) {
  using Tile = void (*)(const float*, const float*, int64_t, float*, int64_t, int64_t);
  // 2 and 3 rows take two unit blocks at a time, 1 and 4 to 6 rows one: at most 24 sums.
  static constexpr Tile tiles[6][2] = {{gemv_tile<G, 1, 1>, nullptr},
                                       {gemv_tile<G, 2, 1>, gemv_tile<G, 2, 2>},
                                       {gemv_tile<G, 3, 1>, gemv_tile<G, 3, 2>},
                                       {gemv_tile<G, 4, 1>, nullptr},
                                       {gemv_tile<G, 5, 1>, nullptr},
                                       {gemv_tile<G, 6, 1>, nullptr}};
  constexpr int64_t U = GateGemv::kUnits;
#if !defined(__AVX512F__) && defined(__AVX2__) && defined(__FMA__)
  // With AVX2 a row's 4 gates of one block take 8 of the 16 registers; 3 rows a pass spill some
  // sums but read R a third as often (the zoo LSTM at 8 sequences, 1 thread: 1.26-1.49x faster
  // than a row a pass, 2 rows 1.24-1.52x, 6 rows 1.10x), one block at a time.
  constexpr int64_t kRows = 3, kWideRows = 0;
#else
  constexpr int64_t kRows = 6, kWideRows = 3;
#endif
  // R comes from L2 once per pass, and the pass, not the arithmetic, sets the time: rows in as
  // few passes as 6-row tiles allow, spread evenly (8 rows: 4 + 4, not 6 + 2). A single row
  // reads R as one stream, a block at a time, rather than two blocks' streams side by side:
  // hidden 256, the product alone 6.9 -> 6.5 us, the zoo LSTM (batch 1) 3% faster at 1
  // thread and 5% at 2; two rows stay faster on two blocks (8.2 against 8.8 us).
  const int64_t passes = (batch + kRows - 1) / kRows;
  for (int64_t i = 0, r0 = 0; i < passes; ++i) {
    const int64_t rb = (batch - r0) / (passes - i), widest = rb >= 2 && rb <= kWideRows ? 2 : 1;
    for (int64_t blk = blk0; blk < blk1;) {
      const int64_t nb = std::min(widest, blk1 - blk);
      tiles[rb - 1][nb - 1](w + blk * K * G * U, h + r0 * K, K, out + r0 * G * H, H, blk * U);
      blk += nb;
    }
    r0 += rb;
  }
}

}  // namespace

void GateGemv::run(const float* h, int64_t batch, float* out, int64_t blk0, int64_t blk1) const {
  const float* w = w_.get<float>();
  switch (gates_) {
    case 1: gemv_rows<1>(w, h, batch, hidden_, out, hidden_, blk0, blk1); break;
    case 3: gemv_rows<3>(w, h, batch, hidden_, out, hidden_, blk0, blk1); break;
    case 4: gemv_rows<4>(w, h, batch, hidden_, out, hidden_, blk0, blk1); break;
    default: fail(ErrorCode::Fail, "GateGemv: ", gates_, " gates");
  }
}

// --- RnnBase --------------------------------------------------------------------------------

RnnBase::RnnBase(const KernelInit& init, int gates, bool has_cell, const std::vector<std::string>& default_acts,
                 std::vector<std::pair<int, int>> splits)
    : op_(init.node.op_type),
      gates_(gates),
      has_cell_(has_cell),
      acts_per_dir_(int(default_acts.size())),
      splits_(std::move(splits)) {
  const ir::Node& node = init.node;
  const std::string dir = node.attr_string("direction", "forward");
  if (dir == "bidirectional") num_dir_ = 2;
  else if (dir == "reverse") reverse_only_ = true;
  else if (dir != "forward")
    fail(ErrorCode::InvalidGraph, "direction must be forward, reverse or bidirectional, got '", dir, "'");
  layout_ = node.attr_int("layout", 0);
  if (layout_ != 0 && layout_ != 1) fail(ErrorCode::InvalidGraph, "layout must be 0 or 1, got ", layout_);
  if (node.has_attr("hidden_size")) {
    hidden_attr_ = node.attr_int("hidden_size", 0);
    if (hidden_attr_ <= 0) fail(ErrorCode::InvalidGraph, "hidden_size must be positive, got ", hidden_attr_);
  }
  if (node.has_attr("clip")) {
    has_clip_ = true;
    clip_ = node.attr_float("clip", 0);
    if (!(clip_ > 0)) fail(ErrorCode::InvalidGraph, "clip must be positive, got ", clip_);
  }
  acts_ = parse_activations(node, acts_per_dir_, num_dir_, default_acts);
  w_const_ = init.constant(1) != nullptr;
  r_const_ = init.constant(2) != nullptr;
}

void RnnBase::prepare(OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  const Tensor& r = ctx.input(2);
  dtype_ = x.dtype();
  if (dtype_ != DType::Float32 && dtype_ != DType::Float64)
    fail(ErrorCode::NotImplemented, op_, ": element type ", dtype_name(dtype_), " is not supported (float, double)");
  const char* names[] = {"X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"};
  for (int i = 1; i < std::min(ctx.num_inputs(), 8); ++i)
    if (i != 4 && ctx.has_input(i) && ctx.input(i).dtype() != dtype_)
      fail(ErrorCode::InvalidArgument, names[i], " is ", dtype_name(ctx.input(i).dtype()), " but X is ",
           dtype_name(dtype_));
  if (x.rank() != 3)
    fail(ErrorCode::InvalidArgument, "X must have rank 3 (", layout_ ? "[batch, seq, input]" : "[seq, batch, input]",
         "), got ", shape_str(x.shape()));
  if (r.rank() != 3) fail(ErrorCode::InvalidArgument, "R must have rank 3, got ", shape_str(r.shape()));
  seq_ = x.dim(layout_ ? 1 : 0);
  batch_ = x.dim(layout_ ? 0 : 1);
  input_ = x.dim(2);
  hidden_ = hidden_attr_ >= 0 ? hidden_attr_ : r.dim(2);
  const int64_t gh = gates_ * hidden_, nd = num_dir_;
  auto expect = [&](int i, const Shape& want, const char* meaning) {
    if (ctx.input(i).shape() != want)
      fail(ErrorCode::InvalidArgument, names[i], " must have shape ", shape_str(want), " (", meaning, "), got ",
           shape_str(ctx.input(i).shape()));
  };
  const std::string g = std::to_string(gates_) + "*hidden_size";
  expect(1, {nd, gh, input_}, ("[num_directions, " + g + ", input_size]").c_str());
  expect(2, {nd, gh, hidden_}, ("[num_directions, " + g + ", hidden_size]").c_str());
  has_bias_ = ctx.has_input(3);
  if (has_bias_) expect(3, {nd, 2 * gh}, ("[num_directions, 2*" + g + "]").c_str());
  if (ctx.has_input(4)) {
    if (ctx.input(4).dtype() != DType::Int32)
      fail(ErrorCode::InvalidArgument, "sequence_lens must be int32, got ", dtype_name(ctx.input(4).dtype()));
    expect(4, {batch_}, "[batch_size]");
  }
  const Shape state = layout_ ? Shape{batch_, nd, hidden_} : Shape{nd, batch_, hidden_};
  const char* state_meaning = layout_ ? "[batch_size, num_directions, hidden_size]" : "[num_directions, batch_size, hidden_size]";
  if (ctx.has_input(5)) expect(5, state, state_meaning);
  if (has_cell_ && ctx.has_input(6)) expect(6, state, state_meaning);
  if (has_cell_ && ctx.has_input(7)) expect(7, {nd, 3 * hidden_}, "[num_directions, 3*hidden_size]");

  if (ctx.has_output(0))
    ctx.set_output(0, dtype_, layout_ ? Shape{batch_, seq_, nd, hidden_} : Shape{seq_, nd, batch_, hidden_});
  if (ctx.has_output(1)) ctx.set_output(1, dtype_, state);
  if (has_cell_ && ctx.has_output(2)) ctx.set_output(2, dtype_, state);

  const size_t es = dtype_size(dtype_);
  lens_.assign(size_t(batch_), seq_);
  xw_.reserve(size_t(seq_ * batch_ * gh) * es);
  h_.reserve(size_t(batch_ * hidden_) * es);
  c_.reserve(size_t(batch_ * hidden_) * es);
  bias_.reserve(size_t(gh) * es);
  gh_.resize(splits_.size());
  for (size_t s = 0; s < splits_.size(); ++s) gh_[s].reserve(size_t(batch_ * splits_[s].second * hidden_) * es);
  // Enough rows per thread that a step's gate work outweighs waking the team.
  row_grain_ = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, gh));

  use_gemv_ = dtype_ == DType::Float32 && splits_.size() == 1 && batch_ <= kGemvMaxBatch;
  if (use_gemv_) h_.reserve(size_t(2 * batch_ * hidden_) * es);  // time_loop's double buffer
  xw_proj_.resize(size_t(nd));
  rec_.resize(size_t(nd));
  gemv_.resize(size_t(nd));
  for (int d = 0; d < num_dir_; ++d) {
    xw_proj_[size_t(d)].init(dtype_, seq_ * batch_, input_, gh, has_bias_);
    if (w_const_ && !xw_proj_[size_t(d)].packed())
      xw_proj_[size_t(d)].pack(static_cast<const char*>(w.raw()) + size_t(d * gh * input_) * es);
    if (use_gemv_) {
      if (r_const_ && !gemv_packed_) gemv_[size_t(d)].pack(r.data<float>() + d * gh * hidden_, gates_, hidden_);
      continue;
    }
    rec_[size_t(d)].resize(splits_.size());
    for (size_t s = 0; s < splits_.size(); ++s)
      rec_[size_t(d)][s].init(dtype_, batch_, hidden_, splits_[s].second * hidden_, false);
    // Initializer weights are packed here (again only if a new shape changes oneDNN's layout
    // for them); other weights on every run.
    if (r_const_)
      for (size_t s = 0; s < splits_.size(); ++s)
        if (!rec_[size_t(d)][s].packed())
          rec_[size_t(d)][s].pack(static_cast<const char*>(r.raw()) +
                                size_t((d * gh + splits_[s].first * hidden_) * hidden_) * es);
  }
  if (use_gemv_ && r_const_) gemv_packed_ = true;
}

}  // namespace kiln::rnn
