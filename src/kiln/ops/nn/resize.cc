// Resize (opsets 10, 11, 13, 18, 19) and its predecessor Upsample (opsets 7, 9).
//
// Semantics follow ONNX's reference implementation (onnx/reference/ops/op_resize.py): every
// axis maps output coordinate j to an input coordinate x by the coordinate transformation, and
// the output is a separable weighted sum of input samples near x. Per axis, the neighbours are
// base + i for a window of offsets i, where base = floor(x) and ratio = x - base lies in (0, 1]
// (an integral x counts as ratio 1 from base x - 1, as the reference does); indices outside the
// input clamp to its edge (the reference's edge padding). The weights come from the mode:
// nearest picks one neighbour by nearest_mode, linear and cubic (Keys, cubic_coeff_a) weigh two
// and four, and antialias widens the linear/cubic filter by 1/scale when downscaling.
// exclude_outside drops weights of out-of-range neighbours and renormalizes; with
// tf_crop_and_resize an x outside the input yields extrapolation_value. Opsets 11 and 12 also
// have tf_half_pixel_for_nn: x = (j + 0.5) / scale.
//
// Resize-10 and Upsample use asymmetric coordinates and, for nearest, ONNX Runtime's rounding:
// floor when upscaling, ceil when downscaling.
//
// Execution: nearest is one gather through per-axis offset tables (output rows that repeat the
// previous row are copied). linear/cubic run one 1-D pass per resized axis, downscaling axes
// first; passes along outer axes combine whole contiguous rows (vectorized). Integer inputs
// interpolate in double and truncate at the end, like the reference's astype.
#include <algorithm>

#include "kiln/ops/reduce/reduce.h"

namespace kiln {
namespace {

enum class Coord {
  HalfPixel,
  HalfPixelSymmetric,
  PytorchHalfPixel,
  AlignCorners,
  Asymmetric,
  TfCropAndResize,
  TfHalfPixelForNn,
};
enum class Mode { Nearest, Linear, Cubic };
enum class Round { PreferFloor, PreferCeil, Floor, Ceil, Legacy };

// tf_half_pixel_for_nn existed in opsets 11 and 12 only.
Coord parse_coord(const std::string& s, int opset) {
  if (s == "half_pixel") return Coord::HalfPixel;
  if (s == "tf_half_pixel_for_nn" && opset < 13) return Coord::TfHalfPixelForNn;
  if (s == "half_pixel_symmetric") return Coord::HalfPixelSymmetric;
  if (s == "pytorch_half_pixel") return Coord::PytorchHalfPixel;
  if (s == "align_corners") return Coord::AlignCorners;
  if (s == "asymmetric") return Coord::Asymmetric;
  if (s == "tf_crop_and_resize") return Coord::TfCropAndResize;
  fail(ErrorCode::InvalidGraph, "coordinate_transformation_mode '", s,
       "' is not one of half_pixel, half_pixel_symmetric, pytorch_half_pixel, align_corners, asymmetric, "
       "tf_crop_and_resize");
}

Round parse_round(const std::string& s) {
  if (s == "round_prefer_floor") return Round::PreferFloor;
  if (s == "round_prefer_ceil") return Round::PreferCeil;
  if (s == "floor") return Round::Floor;
  if (s == "ceil") return Round::Ceil;
  fail(ErrorCode::InvalidGraph, "nearest_mode '", s, "' is not one of round_prefer_floor, round_prefer_ceil, floor, ceil");
}

// One axis: for each output coordinate, `taps` (clamped index, weight) pairs, or `outside`.
struct AxisTable {
  int64_t taps = 1;
  std::vector<int64_t> idx;
  std::vector<double> w;
  std::vector<uint8_t> outside;
  bool any_outside = false;
  bool identity = false;  // output j is input j for every j
};

template <typename T, typename W>
T from_work(W v) {
  if constexpr (std::is_floating_point_v<T>) return T(v);
  else return saturate_cast<T>(double(v));
}

class Resize : public Kernel {
 public:
  explicit Resize(const ir::Node& node) {
    const bool upsample = node.op_type == "Upsample";
    legacy_ = upsample || node.opset < 11;
    scales_attr_ = upsample && node.opset < 9;
    if (scales_attr_) {
      if (!node.has_attr("scales")) fail(ErrorCode::InvalidGraph, "the scales attribute is required before opset 9");
      for (float f : node.attr_floats("scales")) scale_attr_values_.push_back(f);
    }
    require_upscale_ = upsample;
    const std::string mode = node.attr_string("mode", "nearest");
    if (mode == "nearest") mode_ = Mode::Nearest;
    else if (mode == "linear" || (upsample && mode == "bilinear")) mode_ = Mode::Linear;
    else if (mode == "cubic" && !upsample) mode_ = Mode::Cubic;
    else fail(ErrorCode::InvalidGraph, "mode '", mode, "' is not supported (expected nearest, linear", upsample ? "" : " or cubic", ")");
    if (legacy_) {
      coord_ = Coord::Asymmetric;
      round_ = Round::Legacy;
    } else {
      coord_ = parse_coord(node.attr_string("coordinate_transformation_mode", "half_pixel"), node.opset);
      round_ = parse_round(node.attr_string("nearest_mode", "round_prefer_floor"));
      cubic_a_ = node.attr_float("cubic_coeff_a", -0.75f);
      exclude_outside_ = node.attr_int("exclude_outside", 0) != 0;
      extrapolation_ = node.attr_float("extrapolation_value", 0.0f);
      antialias_ = node.attr_int("antialias", 0) != 0 && mode_ != Mode::Nearest;
      axes_attr_ = node.attr_ints("axes");
      has_axes_ = node.has_attr("axes");
      const std::string policy = node.attr_string("keep_aspect_ratio_policy", "stretch");
      if (policy == "stretch") policy_ = 0;
      else if (policy == "not_larger") policy_ = 1;
      else if (policy == "not_smaller") policy_ = 2;
      else fail(ErrorCode::InvalidGraph, "keep_aspect_ratio_policy '", policy, "' is not one of stretch, not_larger, not_smaller");
    }
    scales_input_ = scales_attr_ ? -1 : (legacy_ ? 1 : 2);
  }

  std::vector<int> value_inputs() const override {
    if (scales_attr_) return {};
    if (legacy_) return {1};
    return {2, 3};
  }

  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const int64_t r = x.rank();
    axes_.clear();
    if (has_axes_) {
      axes_mask(axes_attr_, r);  // range and repetition checks
      for (int64_t a : axes_attr_) axes_.push_back(normalize_axis(a, r));
    } else {
      for (int64_t d = 0; d < r; ++d) axes_.push_back(d);
    }
    const size_t na = axes_.size();
    std::vector<double> scales;
    std::vector<int64_t> sizes;
    if (scales_attr_) {
      scales = scale_attr_values_;
    } else {
      const bool has_scales = ctx.has_input(scales_input_) && ctx.input(scales_input_).size() > 0;
      const bool has_sizes = !legacy_ && ctx.has_input(3) && ctx.input(3).size() > 0;
      if (has_scales && has_sizes) fail(ErrorCode::InvalidArgument, "only one of scales and sizes may be given, got both");
      if (!has_scales && !has_sizes) fail(ErrorCode::InvalidArgument, "one of scales and sizes must be given");
      if (has_scales) {
        const Tensor& s = ctx.input(scales_input_);
        if (s.dtype() != DType::Float32) fail(ErrorCode::InvalidArgument, "scales must be tensor(float), got ", dtype_name(s.dtype()));
        for (float f : s.values<float>()) scales.push_back(f);
      } else {
        const Tensor& s = ctx.input(3);
        if (s.dtype() != DType::Int64) fail(ErrorCode::InvalidArgument, "sizes must be tensor(int64), got ", dtype_name(s.dtype()));
        sizes = s.to_int64s();
      }
    }
    const size_t given = scales.empty() ? sizes.size() : scales.size();
    if (given != na)
      fail(ErrorCode::InvalidArgument, scales.empty() ? "sizes" : "scales", " has ", given, " entries but ",
           has_axes_ ? "axes lists " : "the input has rank ", na, has_axes_ ? " axes" : "");
    for (double s : scales)
      if (!(s > 0) || (require_upscale_ && s < 1))
        fail(ErrorCode::InvalidArgument, "scales must be ", require_upscale_ ? "at least 1" : "positive", ", got ", s);
    for (int64_t s : sizes)
      if (s < 0) fail(ErrorCode::InvalidArgument, "sizes must not be negative, got ", s);

    // Full-rank scale and output size per dim, as the reference computes them.
    scale_.assign(size_t(r), 1.0);
    out_shape_ = x.shape();
    if (!scales.empty()) {
      for (size_t i = 0; i < na; ++i) {
        const int64_t d = axes_[i];
        scale_[size_t(d)] = scales[i];
        out_shape_[size_t(d)] = int64_t(std::floor(scales[i] * double(x.dim(d))));
      }
    } else {
      for (size_t i = 0; i < na; ++i) {
        const int64_t d = axes_[i];
        if (x.dim(d) == 0) fail(ErrorCode::InvalidArgument, "cannot resize the empty dim ", d, " to ", sizes[i]);
        scale_[size_t(d)] = double(sizes[i]) / double(x.dim(d));
        out_shape_[size_t(d)] = sizes[i];
      }
      if (policy_ != 0 && na > 0) {
        double s = scale_[size_t(axes_[0])];
        for (int64_t d : axes_) s = policy_ == 1 ? std::min(s, scale_[size_t(d)]) : std::max(s, scale_[size_t(d)]);
        for (int64_t d : axes_) {
          scale_[size_t(d)] = s;
          out_shape_[size_t(d)] = int64_t(s * double(x.dim(d)) + 0.5);
        }
      }
    }
    for (int64_t d = 0; d < r; ++d)
      if (x.dim(d) == 0 && out_shape_[size_t(d)] != 0)
        fail(ErrorCode::InvalidArgument, "cannot resize the empty dim ", d, " of ", shape_str(x.shape()), " to ",
             out_shape_[size_t(d)]);
    ctx.set_output(0, x.dtype(), out_shape_);
  }

  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0);
    if (y.size() == 0) return;
    build_tables(ctx);
    if (mode_ == Mode::Nearest) {
      dispatch(NumericTypes{}, x.dtype(), "Resize", [&]<typename T>() { nearest(x.data<T>(), y.data<T>(), x.shape()); });
      return;
    }
    dispatch(TypeList<float, double, uint8_t, int8_t, int32_t, int64_t>{}, x.dtype(), "Resize", [&]<typename T>() {
      using W = std::conditional_t<std::is_same_v<T, float>, float, double>;
      interpolate<T, W>(x.data<T>(), y.data<T>(), x.shape());
    });
  }

 private:
  // The input coordinate of output j along dim d (reference formulas, in double).
  double coordinate(int64_t d, int64_t j, double roi_start, double roi_end) const {
    const double in = double(in_shape_[size_t(d)]), scale = scale_[size_t(d)];
    const double out_w = scale * in;
    switch (coord_) {
      case Coord::AlignCorners: return out_w == 1 ? 0.0 : double(j) * (in - 1) / (out_w - 1);
      case Coord::Asymmetric: return double(j) / scale;
      case Coord::TfCropAndResize:
        return (out_w == 1 ? (roi_end - roi_start) * (in - 1) / 2 : double(j) * (roi_end - roi_start) * (in - 1) / (out_w - 1)) +
               roi_start * (in - 1);
      case Coord::PytorchHalfPixel: return out_w == 1 ? -0.5 : (double(j) + 0.5) / scale - 0.5;
      case Coord::HalfPixel: return (double(j) + 0.5) / scale - 0.5;
      case Coord::TfHalfPixelForNn: return (double(j) + 0.5) / scale;
      case Coord::HalfPixelSymmetric: {
        const double adjustment = double(out_shape_[size_t(d)]) / out_w;
        return in / 2 * (1 - adjustment) + (double(j) + 0.5) / scale - 0.5;
      }
    }
    return 0;
  }

  // Weights of the neighbours base + start + t for a coordinate with this ratio (in (0, 1]).
  int64_t coefficients(double ratio, double scale, std::vector<double>& c) const {
    c.clear();
    const double a = cubic_a_;
    if (mode_ == Mode::Linear && antialias_ && scale < 1) {
      const int64_t start = int64_t(std::floor(-1 / scale) + 1);
      double sum = 0;
      for (int64_t i = start; i < 2 - start; ++i) {
        c.push_back(std::clamp(1 - std::fabs((double(i) - ratio) * scale), 0.0, 1.0));
        sum += c.back();
      }
      for (double& v : c) v /= sum;
      return start;
    }
    if (mode_ == Mode::Cubic && antialias_ && scale < 1) {
      const int64_t start = int64_t(std::floor(-2 / scale) + 1);
      double sum = 0;
      for (int64_t i = start; i < 2 - start; ++i) {
        const double x = std::fabs(scale * (double(i) - ratio)), x2 = x * x, x3 = x * x2;
        c.push_back(x <= 1 ? (a + 2) * x3 - (a + 3) * x2 + 1 : x < 2 ? a * x3 - 5 * a * x2 + 8 * a * x - 4 * a : 0.0);
        sum += c.back();
      }
      for (double& v : c) v /= sum;
      return start;
    }
    if (mode_ == Mode::Linear) {
      c = {1 - ratio, ratio};
      return 0;
    }
    const double r = ratio;
    c = {((a * (r + 1) - 5 * a) * (r + 1) + 8 * a) * (r + 1) - 4 * a, ((a + 2) * r - (a + 3)) * r * r + 1,
         ((a + 2) * (1 - r) - (a + 3)) * (1 - r) * (1 - r) + 1,
         ((a * ((1 - r) + 1) - 5 * a) * ((1 - r) + 1) + 8 * a) * ((1 - r) + 1) - 4 * a};
    return -1;
  }

  void build_tables(OpContext& ctx) {
    const Tensor& x = ctx.input(0);
    const int64_t r = x.rank();
    in_shape_ = x.shape();
    std::vector<double> roi;
    if (coord_ == Coord::TfCropAndResize) {
      if (!ctx.has_input(1)) fail(ErrorCode::InvalidArgument, "tf_crop_and_resize needs the roi input");
      const Tensor& rt = ctx.input(1);
      if (rt.size() != int64_t(2 * axes_.size()))
        fail(ErrorCode::InvalidArgument, "roi must have ", 2 * axes_.size(), " entries (starts then ends), got ", rt.size());
      dispatch(FloatTypes{}, rt.dtype(), "roi", [&]<typename R>() {
        for (R v : rt.values<R>()) roi.push_back(double(v));
      });
    }
    tables_.resize(size_t(r));
    std::vector<double> c;
    for (int64_t d = 0; d < r; ++d) {
      AxisTable& t = tables_[size_t(d)];
      const int64_t in = in_shape_[size_t(d)], out = out_shape_[size_t(d)];
      const double scale = scale_[size_t(d)];
      double rs = 0, re = 1;
      const auto at = std::find(axes_.begin(), axes_.end(), d);
      if (!roi.empty() && at != axes_.end()) {
        rs = roi[size_t(at - axes_.begin())];
        re = roi[size_t(at - axes_.begin()) + axes_.size()];
      }
      t.idx.clear(), t.w.clear();
      t.outside.assign(size_t(out), 0);
      t.any_outside = false;
      t.taps = 1;
      for (int64_t j = 0; j < out; ++j) {
        const double xo = coordinate(d, j, rs, re);
        if (coord_ == Coord::TfCropAndResize && (xo < 0 || xo > double(in - 1))) {
          t.outside[size_t(j)] = 1;
          t.any_outside = true;
        }
        if (mode_ == Mode::Nearest) {
          int64_t i;
          if (round_ == Round::Legacy) {
            i = int64_t(scale < 1 ? std::ceil(xo) : std::floor(xo));
          } else {
            const double fl = std::floor(xo), frac = xo - fl;
            bool up;
            switch (round_) {
              case Round::PreferFloor: up = frac > 0.5; break;
              case Round::PreferCeil: up = frac >= 0.5; break;
              case Round::Floor: up = false; break;
              default: up = frac > 0; break;
            }
            i = int64_t(fl) + (up ? 1 : 0);
          }
          t.idx.push_back(std::clamp<int64_t>(i, 0, in - 1));
          t.w.push_back(1.0);
          continue;
        }
        double base = std::floor(xo), ratio = xo - base;
        if (ratio == 0) base -= 1, ratio = 1;
        const int64_t start = coefficients(ratio, scale, c);
        t.taps = int64_t(c.size());
        if (exclude_outside_) {
          double sum = 0;
          for (size_t k = 0; k < c.size(); ++k) {
            const int64_t i = int64_t(base) + start + int64_t(k);
            if (i < 0 || i >= in) c[k] = 0;
            sum += c[k];
          }
          for (double& v : c) v /= sum;
        }
        for (size_t k = 0; k < c.size(); ++k) {
          t.idx.push_back(std::clamp<int64_t>(int64_t(base) + start + int64_t(k), 0, in - 1));
          t.w.push_back(c[k]);
        }
      }
      // An axis is left alone when every output sample is exactly its own input sample.
      t.identity = in == out && !t.any_outside;
      for (int64_t j = 0; t.identity && j < out; ++j) {
        double at_j = 0;
        for (int64_t k = 0; k < t.taps; ++k) {
          const double w = t.w[size_t(j * t.taps + k)];
          if (t.idx[size_t(j * t.taps + k)] == j) at_j += w;
          else if (w != 0) t.identity = false;
        }
        t.identity = t.identity && at_j == 1;
      }
    }
  }

  template <typename T>
  void nearest(const T* x, T* y, const Shape& in) const {
    const int64_t r = int64_t(in.size());
    const Shape st = row_major_strides(in);
    // Per dim: input offset of each output coordinate, -1 where it falls outside (extrapolate).
    std::vector<std::vector<int64_t>> off(static_cast<size_t>(r));
    for (int64_t d = 0; d < r; ++d) {
      const AxisTable& t = tables_[size_t(d)];
      for (size_t j = 0; j < t.idx.size(); ++j) off[size_t(d)].push_back(t.outside[j] ? -1 : t.idx[j] * st[size_t(d)]);
    }
    const int64_t inner = r ? out_shape_[size_t(r - 1)] : 1;
    const int64_t rows = shape_size(out_shape_) / inner;
    const T extrap = from_work<T>(double(extrapolation_));
    const std::vector<int64_t> last = r ? off[size_t(r - 1)] : std::vector<int64_t>{0};
    parallel_for(rows, std::max<int64_t>(1, 16384 / inner), [&](int64_t s, int64_t e) {
      int64_t prev_base = -2;
      for (int64_t row = s; row < e; ++row) {
        int64_t rem = row, base = 0;
        for (int64_t d = r - 2; d >= 0; --d) {
          const int64_t o = off[size_t(d)][size_t(rem % out_shape_[size_t(d)])];
          rem /= out_shape_[size_t(d)];
          base = (o < 0 || base < 0) ? -1 : base + o;
        }
        T* yr = y + row * inner;
        if (base < 0) {
          std::fill(yr, yr + inner, extrap);
        } else if (base == prev_base) {  // same source row as the row before: copy it
          std::copy(yr - inner, yr, yr);
        } else {
          const T* xr = x + base;
          for (int64_t j = 0; j < inner; ++j) yr[j] = last[size_t(j)] < 0 ? extrap : xr[last[size_t(j)]];
        }
        prev_base = base;
      }
    });
  }

  // y[j] = sum_k w[j, k] x[idx[j, k]] along the innermost axis; kTaps > 0 fixes the tap count.
  template <int64_t kTaps, typename Tin, typename Tout, typename W>
  static void gather_row(const Tin* __restrict x, Tout* __restrict y, const int32_t* __restrict idx,
                         const W* __restrict w, int64_t n, int64_t taps) {
    const int64_t nt = kTaps > 0 ? kTaps : taps;
    if constexpr (std::is_floating_point_v<Tout>) {
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) {
        W acc = 0;
        for (int64_t k = 0; k < nt; ++k) acc += w[j * nt + k] * W(x[idx[j * nt + k]]);
        y[j] = Tout(acc);
      }
    } else {
      for (int64_t j = 0; j < n; ++j) {
        W acc = 0;
        for (int64_t k = 0; k < nt; ++k) acc += w[j * nt + k] * W(x[idx[j * nt + k]]);
        y[j] = from_work<Tout>(acc);
      }
    }
  }

  // One 1-D resampling pass along a dim viewed as [outer, n_in, inner] -> [outer, n_out, inner].
  template <typename Tin, typename Tout, typename W>
  void pass(const Tin* x, Tout* y, int64_t outer, int64_t n_in, int64_t inner, const AxisTable& t) const {
    const int64_t n_out = int64_t(t.outside.size()), taps = t.taps;
    const std::vector<W> w(t.w.begin(), t.w.end());
    const Tout extrap = from_work<Tout>(W(extrapolation_));
    if (inner == 1) {
      const std::vector<int32_t> idx(t.idx.begin(), t.idx.end());
      parallel_for(outer, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, n_out * taps)), [&](int64_t s, int64_t e) {
        for (int64_t o = s; o < e; ++o) {
          const Tin* xr = x + o * n_in;
          Tout* yr = y + o * n_out;
          switch (taps) {  // the usual tap counts unroll, and the row vectorizes with gathers
            case 1: gather_row<1>(xr, yr, idx.data(), w.data(), n_out, taps); break;
            case 2: gather_row<2>(xr, yr, idx.data(), w.data(), n_out, taps); break;
            case 4: gather_row<4>(xr, yr, idx.data(), w.data(), n_out, taps); break;
            default: gather_row<0>(xr, yr, idx.data(), w.data(), n_out, taps); break;
          }
          if (t.any_outside)
            for (int64_t j = 0; j < n_out; ++j)
              if (t.outside[size_t(j)]) yr[j] = extrap;
        }
      });
      return;
    }
    parallel_for(outer * n_out, std::max<int64_t>(1, 16384 / (inner * taps)), [&](int64_t s, int64_t e) {
      std::vector<W> acc(std::is_same_v<Tout, W> ? 0 : size_t(inner));
      for (int64_t wk = s; wk < e; ++wk) {
        const int64_t o = wk / n_out, j = wk % n_out;
        Tout* yr = y + wk * inner;
        if (t.outside[size_t(j)]) {
          std::fill(yr, yr + inner, extrap);
          continue;
        }
        W* a;
        if constexpr (std::is_same_v<Tout, W>) a = yr;
        else a = acc.data();
        const Tin* xb = x + o * n_in * inner;
        const int64_t* ix = &t.idx[size_t(j * taps)];
        const W* wj = &w[size_t(j * taps)];
        {
          const Tin* xr = xb + ix[0] * inner;
          const W w0 = wj[0];
#pragma omp simd
          for (int64_t i = 0; i < inner; ++i) a[i] = w0 * W(xr[i]);
        }
        for (int64_t k = 1; k < taps; ++k) {
          const W wk2 = wj[k];
          if (wk2 == 0) continue;
          const Tin* xr = xb + ix[k] * inner;
#pragma omp simd
          for (int64_t i = 0; i < inner; ++i) a[i] += wk2 * W(xr[i]);
        }
        if constexpr (!std::is_same_v<Tout, W>)
          for (int64_t i = 0; i < inner; ++i) yr[i] = from_work<Tout>(a[i]);
      }
    });
  }

  template <typename T, typename W>
  void interpolate(const T* x, T* y, const Shape& in) {
    const int64_t r = int64_t(in.size());
    std::vector<int64_t> dims;
    for (int64_t d = 0; d < r; ++d)
      if (!tables_[size_t(d)].identity) dims.push_back(d);
    if (dims.empty()) {
      std::copy(x, x + shape_size(in), y);
      return;
    }
    // The pass order with the least estimated work: a pass costs its output size times its
    // taps, three times that along the innermost axis (gathers rather than whole-row vectors).
    auto cost = [&](const std::vector<int64_t>& order) {
      Shape c = in;
      double total = 0;
      for (int64_t d : order) {
        c[size_t(d)] = out_shape_[size_t(d)];
        int64_t inner = 1;
        for (int64_t i = d + 1; i < r; ++i) inner *= c[size_t(i)];
        total += double(shape_size(c)) * double(tables_[size_t(d)].taps) * (inner == 1 ? 3.0 : 1.0);
      }
      return total;
    };
    std::vector<int64_t> best = dims;
    if (dims.size() <= 5) {
      std::vector<int64_t> order = dims;
      while (std::next_permutation(order.begin(), order.end()))
        if (cost(order) < cost(best)) best = order;
    }
    dims = best;
    Shape cur = in;
    int64_t biggest = 0;
    for (int64_t d : dims) {
      cur[size_t(d)] = out_shape_[size_t(d)];
      biggest = std::max(biggest, shape_size(cur));
    }
    if (dims.size() > 1) {
      work_a_.resize(size_t(biggest) * sizeof(W));
      if (dims.size() > 2) work_b_.resize(size_t(biggest) * sizeof(W));
    }
    W* bufs[2] = {reinterpret_cast<W*>(work_a_.data()), reinterpret_cast<W*>(work_b_.data())};
    cur = in;
    const W* src_w = nullptr;
    for (size_t p = 0; p < dims.size(); ++p) {
      const int64_t d = dims[p];
      int64_t outer = 1, inner = 1;
      for (int64_t i = 0; i < d; ++i) outer *= cur[size_t(i)];
      for (int64_t i = d + 1; i < r; ++i) inner *= cur[size_t(i)];
      const AxisTable& t = tables_[size_t(d)];
      const bool first = p == 0, last = p + 1 == dims.size();
      W* dst_w = bufs[p % 2];
      if (first && last) pass<T, T, W>(x, y, outer, cur[size_t(d)], inner, t);
      else if (first) pass<T, W, W>(x, dst_w, outer, cur[size_t(d)], inner, t);
      else if (last) pass<W, T, W>(src_w, y, outer, cur[size_t(d)], inner, t);
      else pass<W, W, W>(src_w, dst_w, outer, cur[size_t(d)], inner, t);
      src_w = dst_w;
      cur[size_t(d)] = out_shape_[size_t(d)];
    }
  }

  bool legacy_ = false, scales_attr_ = false, require_upscale_ = false;
  std::vector<double> scale_attr_values_;
  int scales_input_ = 2;
  Mode mode_ = Mode::Nearest;
  Coord coord_ = Coord::HalfPixel;
  Round round_ = Round::PreferFloor;
  float cubic_a_ = -0.75f;
  bool exclude_outside_ = false;
  float extrapolation_ = 0;
  bool antialias_ = false;
  bool has_axes_ = false;
  std::vector<int64_t> axes_attr_;
  int policy_ = 0;  // 0 stretch, 1 not_larger, 2 not_smaller

  std::vector<int64_t> axes_;
  std::vector<double> scale_;
  Shape out_shape_, in_shape_;
  std::vector<AxisTable> tables_;
  std::vector<std::byte> work_a_, work_b_;
};

const OpRegistration kResize{"Resize", make_kernel<Resize>};
const OpRegistration kUpsample{"Upsample", make_kernel<Resize>};

}  // namespace
}  // namespace kiln
