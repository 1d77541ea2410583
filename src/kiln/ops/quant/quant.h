// Shared pieces of the quantization ops: rounding to an 8-bit type, per-axis parameters,
// integer matmul with numpy broadcasting, and integer convolution through the nn reference
// loops on zero-point-shifted int32 copies.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kiln/exec/kernel.h"
#include "kiln/ops/common/broadcast.h"
#include "kiln/ops/common/dnnl.h"
#include "kiln/ops/nn/conv_reference.h"

namespace kiln::quant {

using QuantTypes = TypeList<uint8_t, int8_t>;

// saturate(round_half_even(v) + zp) in Q, ONNX's quantization step. Vectorizable: adding and
// removing 1.5 * 2^52 leaves the nearest integer, ties to even, under the default rounding
// mode (|v| is first capped far inside that range); NaN goes to Q's lowest value.
template <typename Q>
inline Q quantize_value(double v, double zp) {
  constexpr double kMagic = 6755399441055744.0, kCap = 1e15;
  constexpr double lo = double(std::numeric_limits<Q>::min()), hi = double(std::numeric_limits<Q>::max());
  v = std::min(kCap, std::max(-kCap, v));
  return Q(std::min(hi, std::max(lo, (v + kMagic) - kMagic + zp)));
}

// A tensor of quantization parameters read as a per-position list: one value (per tensor),
// or one per index along `axis` of the quantized tensor.
struct PerAxis {
  int64_t outer = 1, channels = 1, inner = 1;  // the data viewed as [outer, channels, inner]
  bool per_channel = false;
};

// Checks that `param` is a scalar / one-element tensor, or 1-D with x's dim at `axis`.
inline PerAxis per_axis(const Shape& x, const Tensor& param, int64_t axis, const char* what) {
  PerAxis p;
  if (param.size() == 1 && param.rank() <= 1) {
    p.inner = shape_size(x);
    return p;
  }
  if (param.rank() != 1)
    fail(ErrorCode::InvalidArgument, what, " must be a scalar or 1-D, got ", shape_str(param.shape()));
  const int64_t r = int64_t(x.size());
  if (axis < -r || axis >= r) fail(ErrorCode::InvalidArgument, "axis ", axis, " is out of range for rank ", r);
  if (axis < 0) axis += r;
  if (param.dim(0) != x[size_t(axis)])
    fail(ErrorCode::InvalidArgument, what, " has ", param.dim(0), " values but the input has ", x[size_t(axis)],
         " along axis ", axis);
  p.per_channel = true;
  p.channels = x[size_t(axis)];
  for (int64_t d = 0; d < axis; ++d) p.outer *= x[size_t(d)];
  for (int64_t d = axis + 1; d < r; ++d) p.inner *= x[size_t(d)];
  return p;
}

// Calls fn(begin, end, channel) over element ranges that share one channel's parameters, in
// parallel: ranges of the whole tensor when per tensor, rows of `inner` elements otherwise.
template <typename Fn>
void for_each_channel_run(const PerAxis& p, Fn&& fn) {
  if (!p.per_channel) {
    parallel_for(p.inner, 32768, [&](int64_t s, int64_t e) { fn(s, e, size_t(0)); });
    return;
  }
  parallel_for(p.outer * p.channels, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, p.inner)),
               [&](int64_t s, int64_t e) {
                 for (int64_t r = s; r < e; ++r) fn(r * p.inner, (r + 1) * p.inner, size_t(r % p.channels));
               });
}

// A zero point as int32 values (all zero when the input is absent); checks its element type.
inline std::vector<int32_t> zero_points(OpContext& ctx, int i, DType expect, const char* what) {
  if (!ctx.has_input(i)) return {0};
  const Tensor& z = ctx.input(i);
  if (z.dtype() != expect)
    fail(ErrorCode::InvalidArgument, what, " is ", dtype_name(z.dtype()), " but must be ", dtype_name(expect));
  std::vector<int32_t> out(static_cast<size_t>(z.size()));
  dispatch(TypeList<uint8_t, int8_t, int32_t>{}, z.dtype(), what, [&]<typename T>() {
    const T* p = z.data<T>();
    for (size_t k = 0; k < out.size(); ++k) out[k] = int32_t(p[k]);
  });
  return out;
}

inline std::vector<float> float_values(const Tensor& t, const char* what) {
  if (t.dtype() != DType::Float32) fail(ErrorCode::InvalidArgument, what, " must be float, got ", dtype_name(t.dtype()));
  return {t.data<float>(), t.data<float>() + t.size()};
}

// The geometry of numpy matmul on [.., M, K] x [.., K, N] with broadcast batch dimensions.
struct MatMulGeometry {
  int64_t m = 0, k = 0, n = 0;
  Shape out;
  std::vector<int64_t> a_batch, b_batch;  // per output batch: the batch index into A and B
};

inline MatMulGeometry matmul_geometry(const Shape& a_shape, const Shape& b_shape) {
  if (a_shape.empty() || b_shape.empty()) fail(ErrorCode::InvalidArgument, "matmul inputs must not be scalars");
  Shape sa = a_shape, sb = b_shape;
  const bool a_vec = sa.size() == 1, b_vec = sb.size() == 1;
  if (a_vec) sa.insert(sa.begin(), 1);
  if (b_vec) sb.push_back(1);
  MatMulGeometry g;
  g.m = sa[sa.size() - 2], g.k = sa.back(), g.n = sb.back();
  if (sb[sb.size() - 2] != g.k)
    fail(ErrorCode::InvalidArgument, "A ", shape_str(a_shape), " and B ", shape_str(b_shape),
         " do not match: A has K=", g.k, ", B has K=", sb[sb.size() - 2]);
  const Shape ba(sa.begin(), sa.end() - 2), bb(sb.begin(), sb.end() - 2);
  const Shape batch = broadcast_shapes({ba, bb});
  const int64_t nb = shape_size(batch);
  g.a_batch.resize(size_t(nb));
  g.b_batch.resize(size_t(nb));
  for (int64_t i = 0; i < nb; ++i) {
    int64_t rem = i, ia = 0, ib = 0, sa_stride = 1, sb_stride = 1;
    for (size_t d = batch.size(); d-- > 0;) {
      const int64_t idx = rem % batch[d];
      rem /= batch[d];
      const size_t da = d + ba.size() - batch.size(), db = d + bb.size() - batch.size();
      if (d + ba.size() >= batch.size()) {
        if (ba[da] != 1) ia += idx * sa_stride;
        sa_stride *= ba[da];
      }
      if (d + bb.size() >= batch.size()) {
        if (bb[db] != 1) ib += idx * sb_stride;
        sb_stride *= bb[db];
      }
    }
    g.a_batch[size_t(i)] = ia;
    g.b_batch[size_t(i)] = ib;
  }
  g.out = batch;
  if (!a_vec) g.out.push_back(g.m);
  if (!b_vec) g.out.push_back(g.n);
  return g;
}

// Copies an 8-bit matrix stack to int32 minus its zero point: one value, or one per row
// (`per_row`, A) or per column (B) of each [rows, cols] matrix.
template <typename Q>
std::vector<int32_t> shifted(const Q* x, int64_t count, int64_t rows, int64_t cols, const std::vector<int32_t>& zp,
                             bool per_row) {
  std::vector<int32_t> out(static_cast<size_t>(count));
  const int64_t mat = rows * cols;
  parallel_for(count, 65536, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) {
      const int64_t within = mat ? i % mat : 0;
      const int32_t z = zp.size() == 1 ? zp[0] : zp[size_t(per_row ? within / cols : within % cols)];
      out[size_t(i)] = int32_t(x[i]) - z;
    }
  });
  return out;
}

// Int32 products C[b] = A[a_batch[b]] * B[b_batch[b]] of [M, K] x [K, N] matrices; the inner
// loop runs over N contiguously.
inline void int_matmul(const MatMulGeometry& g, const int32_t* a, const int32_t* b, int32_t* c) {
  const int64_t m = g.m, k = g.k, n = g.n, nb = int64_t(g.a_batch.size());
  parallel_for(nb * m, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, k * n)), [&](int64_t s, int64_t e) {
    for (int64_t r = s; r < e; ++r) {
      const int64_t bi = r / m, i = r % m;
      const int32_t* ar = a + (g.a_batch[size_t(bi)] * m + i) * k;
      const int32_t* bm = b + g.b_batch[size_t(bi)] * k * n;
      int32_t* cr = c + r * n;
      std::fill(cr, cr + n, 0);
      for (int64_t p = 0; p < k; ++p) {
        const int32_t av = ar[p];
        const int32_t* br = bm + p * n;
#pragma omp simd
        for (int64_t j = 0; j < n; ++j) cr[j] += av * br[j];
      }
    }
  });
}

// C = (A - za)(B - zb) on oneDNN's int8 matmul (VNNI where the CPU has it) for the common
// layout: A [rows, K] of uint8 or int8 (a stack of matrices folded into rows) and a 2-D B, with
// one zero point each. A uint8 B is shifted to int8 (B - 128, zb - 128), the weights type
// oneDNN takes. init() returns false where oneDNN has no implementation: the caller loops.
class DnnlIntMatMul {
 public:
  bool init(int64_t rows, int64_t k, int64_t n, DType a_type) {
    k_ = k, n_ = n;
    if (!dnnl_int8_exact()) return false;
    try {
      dnnl::primitive_attr attr;
      attr.set_zero_points(DNNL_ARG_SRC, 0, {DNNL_RUNTIME_S32_VAL});
      attr.set_zero_points(DNNL_ARG_WEIGHTS, 0, {DNNL_RUNTIME_S32_VAL});
      a_md_ = plain_desc({rows, k}, a_type), b_md_ = plain_desc({k, n}, DType::Int8);
      c_md_ = plain_desc({rows, n}, DType::Int32);
      prim_ = dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md_, b_md_, c_md_), attr, dnnl_engine()));
      return true;
    } catch (const dnnl::error&) {
      return false;
    }
  }

  // `b_constant`: B is an initializer, so its int8 copy is made once.
  template <typename QB>
  void run(const void* a, const QB* b, int32_t za, int32_t zb, int32_t* c, bool b_constant) {
    const int8_t* wb = reinterpret_cast<const int8_t*>(b);
    if constexpr (std::is_same_v<QB, uint8_t>) {
      if (!b_constant || shifted_from_ != b) {
        shifted_.resize(static_cast<size_t>(k_ * n_));
        int8_t* dst = shifted_.data();
#pragma omp simd
        for (int64_t i = 0; i < k_ * n_; ++i) dst[i] = int8_t(b[i] ^ 0x80);  // b - 128 as int8
        shifted_from_ = b;
      }
      wb = shifted_.data();
      zb -= 128;
    }
    using dt = dnnl::memory::data_type;
    using tag = dnnl::memory::format_tag;
    dnnl::memory zpa({{1}, dt::s32, tag::x}, dnnl_engine(), &za), zpb({{1}, dt::s32, tag::x}, dnnl_engine(), &zb);
    prim_.execute(dnnl_stream(), {{DNNL_ARG_SRC, wrap(a_md_, a)},
                                  {DNNL_ARG_WEIGHTS, wrap(b_md_, wb)},
                                  {DNNL_ARG_DST, wrap(c_md_, c)},
                                  {DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC, zpa},
                                  {DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_WEIGHTS, zpb}});
    dnnl_stream().wait();
  }

 private:
  int64_t k_ = 0, n_ = 0;
  dnnl::memory::desc a_md_, b_md_, c_md_;
  dnnl::matmul prim_;
  std::vector<int8_t> shifted_;
  const void* shifted_from_ = nullptr;
};

// Integer convolution (ConvInteger, QLinearConv): X [N, C, D...] and W [M, C/group, k...] of
// 8-bit types; zero points of X (one) and W (one, or one per output channel) are subtracted
// first, so padding contributes 0 as ONNX specifies. Runs on oneDNN's int8 convolution when the
// weights are int8 with zero point 0 or uint8 with zero point 128 (shifted to int8), the usual
// quantizer outputs; other zero points take exact int32 loops.
class IntConv {
 public:
  explicit IntConv(const ir::Node& node) : group_(node.attr_int("group", 1)) {
    if (group_ <= 0) fail(ErrorCode::InvalidGraph, "group must be positive, got ", group_);
    if (node.has_attr("kernel_shape")) kernel_attr_ = nn::read_kernel_shape(node, -1);
  }

  // Checks the shapes, sets up oneDNN for them and returns Y's shape.
  Shape prepare(const ir::Node& node, const Tensor& x, const Tensor& w) {
    const std::vector<int64_t> kernel = nn::conv_kernel(x.shape(), w.shape(), kernel_attr_);
    const int64_t n = x.dim(0), c = x.dim(1), m = w.dim(0);
    if (c != w.dim(1) * group_ || m % group_ != 0)
      fail(ErrorCode::InvalidArgument, "X ", shape_str(x.shape()), " and W ", shape_str(w.shape()),
           " do not match for group ", group_);
    nn::Window win = nn::read_window(node, kernel);
    Shape in(x.shape().begin() + 2, x.shape().end());
    Shape out = nn::window_output(in, win);
    geo_ = nn::ConvGeometry{n, c, m, group_, in, out, win};
    Shape y{n, m};
    y.insert(y.end(), out.begin(), out.end());
    use_dnnl_ = dnnl_int8_exact() && in.size() <= 3 && shape_size(y) > 0 && x.size() > 0 && prepare_dnnl(x, w.shape(), y);
    return y;
  }

  int64_t out_channels() const { return geo_.out_channels; }
  int64_t out_plane() const { return shape_size(geo_.out); }

  // Fills acc (Y's element count) with the int32 sums. `w_constant`: W is an initializer, so
  // its oneDNN copy is made once.
  void run(const Tensor& x, const Tensor& w, const std::vector<int32_t>& x_zp, const std::vector<int32_t>& w_zp,
           int32_t* acc, bool w_constant) {
    if (x_zp.size() != 1) fail(ErrorCode::InvalidArgument, "the zero point of X must be a scalar");
    const int64_t m = geo_.out_channels;
    if (w_zp.size() != 1 && int64_t(w_zp.size()) != m)
      fail(ErrorCode::InvalidArgument, "the zero point of W must be a scalar or have ", m, " values, got ", w_zp.size());
    const int32_t natural = w.dtype() == DType::UInt8 ? 128 : 0;
    if (use_dnnl_ && std::all_of(w_zp.begin(), w_zp.end(), [&](int32_t z) { return z == natural; })) {
      run_dnnl(x, w, x_zp[0], acc, w_constant);
      return;
    }
    std::vector<int32_t> xs, ws;
    dispatch(QuantTypes{}, x.dtype(), "X", [&]<typename Q>() {
      xs = shifted(x.data<Q>(), x.size(), 1, x.size(), x_zp, false);
    });
    dispatch(QuantTypes{}, w.dtype(), "W", [&]<typename Q>() {
      // One matrix row per output channel, so a per-channel zero point is per row.
      ws = shifted(w.data<Q>(), w.size(), m, m ? w.size() / m : 0, w_zp, true);
    });
    nn::conv_reference<int32_t>(geo_, xs.data(), ws.data(), acc);
  }

 private:
  bool prepare_dnnl(const Tensor& x, const Shape& w_shape, const Shape& y_shape) {
    const nn::Window& win = geo_.window;
    Shape wdims = w_shape;
    if (group_ > 1) {  // oneDNN's grouped weights [G, M/G, C/G, k...]: the same bytes as ONNX's W
      wdims[0] /= group_;
      wdims.insert(wdims.begin(), group_);
    }
    using dt = dnnl::memory::data_type;
    auto any = [](const Shape& s, dt t) { return dnnl::memory::desc(dnnl_dims(s), t, dnnl::memory::format_tag::any); };
    dnnl::memory::dims dil(win.rank());
    for (size_t d = 0; d < win.rank(); ++d) dil[d] = win.dilations[d] - 1;
    try {
      dnnl::primitive_attr attr;
      attr.set_zero_points(DNNL_ARG_SRC, 0, {DNNL_RUNTIME_S32_VAL});
      using fwd = dnnl::convolution_forward;
      fwd::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                  any(x.shape(), dnnl_type(x.dtype())), any(wdims, dt::s8), any(y_shape, dt::s32), win.strides, dil,
                  win.pads_begin, win.pads_end);
      fwd::primitive_desc pd(d, attr, dnnl_engine());
      prim_ = fwd(pd);
      x_plain_ = plain_desc(x.shape(), x.dtype());
      y_plain_ = plain_desc(y_shape, DType::Int32);
      w_plain_ = plain_desc(wdims, DType::Int8);
      x_md_ = pd.src_desc(), y_md_ = pd.dst_desc(), w_md_ = pd.weights_desc();
      x_buf_ = x_md_ != x_plain_ ? dnnl::memory(x_md_, dnnl_engine()) : dnnl::memory();
      y_buf_ = y_md_ != y_plain_ ? dnnl::memory(y_md_, dnnl_engine()) : dnnl::memory();
      w_buf_ = dnnl::memory(w_md_, dnnl_engine());
      w_from_ = nullptr;
      return true;
    } catch (const dnnl::error&) {
      return false;
    }
  }

  void run_dnnl(const Tensor& x, const Tensor& w, int32_t x_zp, int32_t* acc, bool w_constant) {
    dnnl::stream& st = dnnl_stream();
    if (!w_constant || w_from_ != w.raw()) {
      const void* wp = w.raw();
      if (w.dtype() == DType::UInt8) {  // uint8 with zero point 128 is int8 with zero point 0
        w_shifted_.resize(static_cast<size_t>(w.size()));
        const uint8_t* src = w.data<uint8_t>();
        int8_t* dst = w_shifted_.data();
#pragma omp simd
        for (int64_t i = 0; i < w.size(); ++i) dst[i] = int8_t(src[i] ^ 0x80);
        wp = w_shifted_.data();
      }
      dnnl::memory plain = wrap(w_plain_, wp);
      dnnl::reorder(plain, w_buf_).execute(st, plain, w_buf_);
      w_from_ = w.raw();
    }
    dnnl::memory src = wrap(x_plain_, x.raw());
    if (x_buf_) {
      dnnl::reorder(src, x_buf_).execute(st, src, x_buf_);
      src = x_buf_;
    }
    dnnl::memory dst = y_buf_ ? y_buf_ : wrap(y_plain_, acc);
    dnnl::memory zp({{1}, dnnl::memory::data_type::s32, dnnl::memory::format_tag::x}, dnnl_engine(), &x_zp);
    prim_.execute(st, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, w_buf_}, {DNNL_ARG_DST, dst},
                       {DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC, zp}});
    if (y_buf_) {
      dnnl::memory out = wrap(y_plain_, acc);
      dnnl::reorder(y_buf_, out).execute(st, y_buf_, out);
    }
    st.wait();
  }

  int64_t group_;
  std::vector<int64_t> kernel_attr_;
  nn::ConvGeometry geo_;
  bool use_dnnl_ = false;
  dnnl::convolution_forward prim_;
  dnnl::memory::desc x_plain_, y_plain_, w_plain_, x_md_, y_md_, w_md_;
  dnnl::memory x_buf_, y_buf_, w_buf_;  // the primitive's layouts, when not the plain ones
  std::vector<int8_t> w_shifted_;
  const void* w_from_ = nullptr;  // the W whose copy w_buf_ holds
};

}  // namespace kiln::quant
