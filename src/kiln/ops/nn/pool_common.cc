#include "kiln/ops/nn/pool_common.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kiln/core/parallel.h"
#include "kiln/ops/math/fast_math.h"

namespace kiln::nn {

namespace {

// Calls visit(out_offset, lo, hi, start) for every output position of one plane, where per
// spatial dimension [lo, hi) are the kernel taps that land inside the input and `start` is the
// window's first input coordinate (negative inside the begin padding).
template <typename Visit>
void for_each_window(const Window& w, const Shape& in, const Shape& out, Visit&& visit) {
  const size_t r = w.rank();
  std::vector<int64_t> o(r, 0), lo(r), hi(r), start(r);
  const int64_t total = shape_size(out);
  for (int64_t oi = 0; oi < total; ++oi) {
    for (size_t d = 0; d < r; ++d) {
      const int64_t s = o[d] * w.strides[d] - w.pads_begin[d], dil = w.dilations[d];
      start[d] = s;
      lo[d] = std::min(w.kernel[d], std::max<int64_t>(0, ceil_div(-s, dil)));
      hi[d] = in[d] - 1 - s < 0 ? 0 : std::min(w.kernel[d], (in[d] - 1 - s) / dil + 1);
      hi[d] = std::max(hi[d], lo[d]);
    }
    visit(oi, lo, hi, start);
    for (size_t d = r; d-- > 0;) {
      if (++o[d] < out[d]) break;
      o[d] = 0;
    }
  }
}

// Calls tap(row_major_offset, column_major_offset) for every tap in [lo, hi) of a window.
template <typename Tap>
void for_each_tap(const Window& w, const Shape& in, const std::vector<int64_t>& lo, const std::vector<int64_t>& hi,
                  const std::vector<int64_t>& start, std::vector<int64_t>& k, Tap&& tap) {
  const size_t r = w.rank();
  for (size_t d = 0; d < r; ++d)
    if (lo[d] >= hi[d]) return;
  k = lo;
  while (true) {
    int64_t row = 0, col = 0, col_stride = 1;
    for (size_t d = 0; d < r; ++d) {
      const int64_t i = start[d] + k[d] * w.dilations[d];
      row = row * in[d] + i;
      col += i * col_stride;
      col_stride *= in[d];
    }
    tap(row, col);
    size_t d = r;
    while (d-- > 0) {
      if (++k[d] < hi[d]) break;
      k[d] = lo[d];
    }
    if (d == size_t(-1)) return;
  }
}

// The thread_scratch slot of max_nhwc's row maxima: Relayout's first, which is free while a
// pool runs (kernels on one thread run one after another).
constexpr int kPoolScratchSlot = 0;

}  // namespace

PoolKernel::PoolKernel(const ir::Node& node, PoolKind kind)
    : kind_(kind),
      kernel_(read_kernel_shape(node, -1)),
      ceil_mode_(node.attr_int("ceil_mode", 0) != 0),
      count_include_pad_(node.attr_int("count_include_pad", 0) != 0),
      column_major_(node.attr_int("storage_order", 0) != 0),
      nhwc_(node.attr_int("kiln_nhwc", 0) != 0),
      p_(2) {
  if (kernel_.empty()) fail(ErrorCode::InvalidGraph, "kernel_shape is required");
  if (const ir::Attribute* p = node.attr("p"))  // a float before opset 2, an int after
    p_ = p->kind == ir::Attribute::Kind::Float ? double(p->f) : double(p->i);
  if (kind_ == PoolKind::Lp && !(p_ > 0)) fail(ErrorCode::InvalidGraph, "p must be positive, got ", p_);
  win_ = read_window(node, kernel_);
}

bool PoolKernel::dnnl_applies(DType t, bool indices) const {
  if (t != DType::Float32 || indices || kind_ == PoolKind::Lp || win_.rank() > 3 || planes_ == 0 ||
      shape_size(out_) == 0 || shape_size(in_) == 0)
    return false;
  for (size_t d = 0; d < win_.rank(); ++d) {
    // oneDNN divides by the whole window when counting padding; ONNX counts only the declared
    // pads, not the room a ceil_mode window runs past them, and nothing beyond a dilated tap.
    const bool past_end = (out_[d] - 1) * win_.strides[d] + win_.extent(d) > in_[d] + win_.pads_begin[d] + win_.pads_end[d];
    if (kind_ == PoolKind::Average && (win_.dilations[d] != 1 || (count_include_pad_ && past_end))) return false;
  }
  return true;
}

void PoolKernel::prepare(OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  if (x.rank() != int64_t(kernel_.size()) + 2)
    fail(ErrorCode::InvalidArgument, "X ", shape_str(x.shape()), " must be [N, C] plus ", kernel_.size(),
         " spatial dimensions to match kernel_shape ", dims_str(kernel_));
  const DType t = x.dtype();
  const bool max_type = t == DType::Int8 || t == DType::UInt8;
  if (t != DType::Float32 && t != DType::Float64 && !(kind_ == PoolKind::Max && max_type))
    fail(ErrorCode::NotImplemented, "element type ", dtype_name(t), " is not supported (float, double",
         kind_ == PoolKind::Max ? ", int8 and uint8 are)" : " are)");
  in_.assign(x.shape().begin() + 2, x.shape().end());
  Window win = read_window(ctx.node(), kernel_);
  out_ = window_output(in_, win, ceil_mode_);
  win_ = win;
  planes_ = x.dim(0) * x.dim(1);
  Shape y_shape{x.dim(0), x.dim(1)};
  y_shape.insert(y_shape.end(), out_.begin(), out_.end());
  ctx.set_output(0, t, y_shape);
  const bool indices = ctx.has_output(1);
  if (indices) ctx.set_output(1, DType::Int64, y_shape);
  max_nhwc_ = nhwc_ && kind_ == PoolKind::Max && t == DType::Float32 && win_.rank() == 2 && !indices;
  use_dnnl_ = !max_nhwc_ && dnnl_applies(t, indices);
  if (use_dnnl_) prepare_dnnl(x.shape(), y_shape, t);
  if (nhwc_ && !use_dnnl_ && !max_nhwc_ && shape_size(y_shape) > 0)
    fail(ErrorCode::NotImplemented, "channels-last storage (kiln_nhwc) needs oneDNN's pooling, which does not take X ",
         shape_str(x.shape()), ": run with graph_optimization_level below ORT_ENABLE_ALL");
}

void PoolKernel::prepare_dnnl(const Shape& x_shape, const Shape& y_shape, DType t) {
  const size_t r = win_.rank();
  dnnl::memory::dims dil(r), pad_r(r);
  for (size_t d = 0; d < r; ++d) {
    dil[d] = win_.dilations[d] - 1;
    // A ceil_mode window that runs past the end pads: more end padding for oneDNN.
    const int64_t reach = (out_[d] - 1) * win_.strides[d] + win_.extent(d) - win_.pads_begin[d];
    pad_r[d] = std::max(win_.pads_end[d], reach - in_[d]);
  }
  auto stored = [&](const Shape& s) {
    return nhwc_ ? dnnl::memory::desc(dnnl_dims(s), dnnl::memory::data_type::f32, dnnl::memory::format_tag::nhwc)
                 : plain_desc(s, t);
  };
  src_md_ = stored(x_shape);
  dst_md_ = stored(y_shape);
  const auto alg = kind_ == PoolKind::Max           ? dnnl::algorithm::pooling_max
                   : count_include_pad_ ? dnnl::algorithm::pooling_avg_include_padding
                                        : dnnl::algorithm::pooling_avg_exclude_padding;
  try {
    dnnl::pooling_v2_forward::desc d(dnnl::prop_kind::forward_inference, alg, src_md_, dst_md_, win_.strides, win_.kernel,
                                     dil, win_.pads_begin, pad_r);
    prim_ = dnnl::pooling_v2_forward(dnnl::pooling_v2_forward::primitive_desc(d, dnnl_engine()));
  } catch (const dnnl::error&) {
    use_dnnl_ = false;  // geometry oneDNN refuses (pads as large as the kernel): the loop takes it
  }
}

// Max pooling of channels-last float data, separably: per output row, the maximum of its
// window's input rows (whole rows at once, so contiguous vector work), then per output pixel
// the maximum of that row's window columns, read from L1. Faster than oneDNN 2.6's nhwc pooling
// (SqueezeNet's 3x3/2 pool of 64 channels at 111x111: 0.35 ms there) and than a loop over
// each pixel's taps (0.32 ms); taking all of a window's rows in one pass, 0.21-0.22 ms against
// 0.24-0.30 for a pass per row.
void PoolKernel::max_nhwc(const float* x, float* y, int64_t images, int64_t channels) const {
  const int64_t ih = in_[0], iw = in_[1], oh = out_[0], ow = out_[1];
  const int64_t kh = win_.kernel[0], kw = win_.kernel[1], dh = win_.dilations[0], dw = win_.dilations[1];
  const int64_t sh = win_.strides[0], sw = win_.strides[1], ph = win_.pads_begin[0], pw = win_.pads_begin[1];
  const int64_t row_len = iw * channels;
  // out = the maximum of in[0..taps) elementwise, in one pass (one store per element, where a
  // tap at a time stored each partial maximum). A NaN wins, as in PyTorch's max pooling,
  // wherever in the window it is.
  auto max_of = [](float* out, const float* const* in, int64_t taps, int64_t n) {
    if (taps == 0) {
      std::fill(out, out + n, -std::numeric_limits<float>::infinity());  // a window wholly in the padding
      return;
    }
    int64_t k = 0;
#if defined(__AVX512F__)
    for (; k < n; k += 16) {
      const __mmask16 m = fastmath::avx512::tail_mask(n - k);
      __m512 v = _mm512_maskz_loadu_ps(m, in[0] + k);
      for (int64_t t = 1; t < taps; ++t) {
        const __m512 x = _mm512_maskz_loadu_ps(m, in[t] + k);
        const __mmask16 wins = _mm512_cmp_ps_mask(x, v, _CMP_GT_OQ) | _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
        v = _mm512_mask_mov_ps(v, wins, x);
      }
      _mm512_mask_storeu_ps(out + k, m, v);
    }
#elif defined(__AVX2__)
    for (; k + 8 <= n; k += 8) {
      __m256 v = _mm256_loadu_ps(in[0] + k);
      for (int64_t t = 1; t < taps; ++t) {
        const __m256 x = _mm256_loadu_ps(in[t] + k);
        const __m256 wins = _mm256_or_ps(_mm256_cmp_ps(x, v, _CMP_GT_OQ), _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
        v = _mm256_blendv_ps(v, x, wins);
      }
      _mm256_storeu_ps(out + k, v);
    }
#endif
    for (; k < n; ++k) {
      float v = in[0][k];
      for (int64_t t = 1; t < taps; ++t) v = in[t][k] > v || in[t][k] != in[t][k] ? in[t][k] : v;
      out[k] = v;
    }
  };
  parallel_for(images * oh, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, ow * channels)), [&](int64_t b, int64_t e) {
    float* rows = static_cast<float*>(thread_scratch(kPoolScratchSlot, sizeof(float) * size_t(row_len)));
    std::vector<const float*> taps(size_t(std::max(kh, kw)));
    for (int64_t row = b; row < e; ++row) {
      const int64_t n = row / oh, r = row % oh;
      int64_t t = 0;
      for (int64_t i = 0; i < kh; ++i) {
        const int64_t h = r * sh - ph + i * dh;
        if (h >= 0 && h < ih) taps[size_t(t++)] = x + (n * ih + h) * row_len;
      }
      max_of(rows, taps.data(), t, row_len);
      float* out = y + row * ow * channels;
      for (int64_t c0 = 0; c0 < ow; ++c0, out += channels) {
        t = 0;
        for (int64_t j = 0; j < kw; ++j) {
          const int64_t w = c0 * sw - pw + j * dw;
          if (w >= 0 && w < iw) taps[size_t(t++)] = rows + w * channels;
        }
        max_of(out, taps.data(), t, channels);
      }
    }
  });
}

void PoolKernel::compute(OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  if (y.size() == 0) return;
  if (max_nhwc_) return max_nhwc(x.data<float>(), y.data<float>(), x.dim(0), x.dim(1));
  if (use_dnnl_) {
    auto& stream = dnnl_stream();
    prim_.execute(stream, {{DNNL_ARG_SRC, wrap(src_md_, x.raw())}, {DNNL_ARG_DST, wrap(dst_md_, y.raw())}});
    stream.wait();
    return;
  }
  const char* what = ctx.node().op_type.c_str();
  switch (kind_) {
    case PoolKind::Max: {
      int64_t* indices = ctx.has_output(1) ? ctx.output(1).data<int64_t>() : nullptr;
      dispatch(TypeList<float, double, int8_t, uint8_t>{}, x.dtype(), what,
               [&]<typename T>() { max_reference<T>(x.data<T>(), y.data<T>(), indices); });
      break;
    }
    case PoolKind::Average:
      dispatch(FloatTypes{}, x.dtype(), what, [&]<typename T>() { average_reference<T>(x.data<T>(), y.data<T>()); });
      break;
    case PoolKind::Lp:
      dispatch(FloatTypes{}, x.dtype(), what, [&]<typename T>() { lp_reference<T>(x.data<T>(), y.data<T>()); });
      break;
  }
}

template <typename T>
void PoolKernel::max_reference(const T* x, T* y, int64_t* indices) const {
  const int64_t in_plane = shape_size(in_), out_plane = shape_size(out_);
  parallel_for(planes_, 1, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> k;
    for (int64_t p = begin; p < end; ++p) {
      const T* xp = x + p * in_plane;
      for_each_window(win_, in_, out_, [&](int64_t oi, const auto& lo, const auto& hi, const auto& start) {
        T best = std::numeric_limits<T>::lowest();
        int64_t at = -1, at_col = -1;
        for_each_tap(win_, in_, lo, hi, start, k, [&](int64_t row, int64_t col) {
          if (at < 0 || xp[row] > best) best = xp[row], at = row, at_col = col;
        });
        y[p * out_plane + oi] = best;
        // Indices count over the whole tensor: the plane's offset plus the spatial offset in
        // row-major order, or column-major with storage_order=1.
        if (indices) indices[p * out_plane + oi] = at < 0 ? -1 : p * in_plane + (column_major_ ? at_col : at);
      });
    }
  });
}

template <typename T>
void PoolKernel::average_reference(const T* x, T* y) const {
  const int64_t in_plane = shape_size(in_), out_plane = shape_size(out_);
  const size_t r = win_.rank();
  parallel_for(planes_, 1, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> k;
    for (int64_t p = begin; p < end; ++p) {
      const T* xp = x + p * in_plane;
      for_each_window(win_, in_, out_, [&](int64_t oi, const auto& lo, const auto& hi, const auto& start) {
        T sum = T(0);
        for_each_tap(win_, in_, lo, hi, start, k, [&](int64_t row, int64_t) { sum += xp[row]; });
        int64_t count = 1;
        for (size_t d = 0; d < r; ++d) {
          if (count_include_pad_) {  // taps inside the declared pads count, taps beyond them do not
            const int64_t limit = in_[d] + win_.pads_end[d] - 1 - start[d];
            count *= limit < 0 ? 0 : std::min(win_.kernel[d], limit / win_.dilations[d] + 1);
          } else {
            count *= hi[d] - lo[d];
          }
        }
        y[p * out_plane + oi] = count > 0 ? T(sum / T(count)) : T(0);
      });
    }
  });
}

template <typename T>
void PoolKernel::lp_reference(const T* x, T* y) const {
  const int64_t in_plane = shape_size(in_), out_plane = shape_size(out_);
  const T p = T(p_);
  parallel_for(planes_, 1, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> k;
    for (int64_t q = begin; q < end; ++q) {
      const T* xp = x + q * in_plane;
      for_each_window(win_, in_, out_, [&](int64_t oi, const auto& lo, const auto& hi, const auto& start) {
        T sum = T(0);
        if (p_ == 2) {
          for_each_tap(win_, in_, lo, hi, start, k, [&](int64_t row, int64_t) { sum += xp[row] * xp[row]; });
          y[q * out_plane + oi] = std::sqrt(sum);
        } else if (p_ == 1) {
          for_each_tap(win_, in_, lo, hi, start, k, [&](int64_t row, int64_t) { sum += std::abs(xp[row]); });
          y[q * out_plane + oi] = sum;
        } else {
          for_each_tap(win_, in_, lo, hi, start, k, [&](int64_t row, int64_t) { sum += std::pow(std::abs(xp[row]), p); });
          y[q * out_plane + oi] = std::pow(sum, T(1) / p);
        }
      });
    }
  });
}

}  // namespace kiln::nn
