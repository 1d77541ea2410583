// GridSample (opset 16): samples X [N, C, H, W] at the normalized (x, y) locations of
// grid [N, Ho, Wo, 2] (-1 and 1 are the edges: pixel centres with align_corners=1, outer pixel
// borders otherwise), giving [N, C, Ho, Wo]. Modes bilinear, nearest (half to even) and bicubic
// (A = -0.75, as PyTorch); locations outside read zeros, the border, or the reflected image.
// The coordinate rules follow PyTorch's grid_sampler, which ONNX's definition comes from.
#include <cmath>

#include "kiln/core/parallel.h"
#include "kiln/exec/kernel.h"

namespace kiln {
namespace {

enum class Mode { Bilinear, Nearest, Bicubic };
enum class Padding { Zeros, Border, Reflection };

double reflect(double v, double twice_low, double twice_high) {
  if (twice_low == twice_high) return 0;
  const double lo = twice_low / 2, span = (twice_high - twice_low) / 2;
  v = std::fabs(v - lo);
  const double extra = std::fmod(v, span);
  const int64_t flips = int64_t(std::floor(v / span));
  return flips % 2 == 0 ? extra + lo : span - extra + lo;
}

class GridSample : public Kernel {
 public:
  explicit GridSample(const ir::Node& node) : align_(node.attr_int("align_corners", 0) != 0) {
    const std::string mode = node.attr_string("mode", "bilinear");
    if (mode == "bilinear") mode_ = Mode::Bilinear;
    else if (mode == "nearest") mode_ = Mode::Nearest;
    else if (mode == "bicubic") mode_ = Mode::Bicubic;
    else fail(ErrorCode::InvalidGraph, "mode must be bilinear, nearest or bicubic, got '", mode, "'");
    const std::string pad = node.attr_string("padding_mode", "zeros");
    if (pad == "zeros") pad_ = Padding::Zeros;
    else if (pad == "border") pad_ = Padding::Border;
    else if (pad == "reflection") pad_ = Padding::Reflection;
    else fail(ErrorCode::InvalidGraph, "padding_mode must be zeros, border or reflection, got '", pad, "'");
  }

  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& grid = ctx.input(1);
    if (x.rank() != 4) fail(ErrorCode::InvalidArgument, "X must be [N, C, H, W], got ", shape_str(x.shape()));
    if (grid.rank() != 4 || grid.dim(0) != x.dim(0) || grid.dim(3) != 2)
      fail(ErrorCode::InvalidArgument, "grid must be [", x.dim(0), ", H_out, W_out, 2], got ", shape_str(grid.shape()));
    if (x.dtype() != grid.dtype() || (x.dtype() != DType::Float32 && x.dtype() != DType::Float64))
      fail(ErrorCode::InvalidArgument, "X and grid must both be float or both double, got ", dtype_name(x.dtype()),
           " and ", dtype_name(grid.dtype()));
    ctx.set_output(0, x.dtype(), {x.dim(0), x.dim(1), grid.dim(1), grid.dim(2)});
  }

  void compute(OpContext& ctx) override {
    dispatch(TypeList<float, double>{}, ctx.input(0).dtype(), "GridSample", [&]<typename T>() { run<T>(ctx); });
  }

 private:
  double unnormalize(double v, int64_t size) const {
    return align_ ? (v + 1) / 2 * double(size - 1) : ((v + 1) * double(size) - 1) / 2;
  }

  // Border clamps, reflection mirrors and then clamps; zeros leaves the coordinate alone.
  double pad_coordinate(double v, int64_t size) const {
    if (pad_ == Padding::Border) {
      v = std::clamp(v, 0.0, double(size - 1));
    } else if (pad_ == Padding::Reflection) {
      v = align_ ? reflect(v, 0, 2.0 * double(size - 1)) : reflect(v, -1, 2.0 * double(size) - 1);
      v = std::clamp(v, 0.0, double(size - 1));
    }
    return v;
  }

  template <typename T>
  void run(OpContext& ctx) {
    const Tensor& x = ctx.input(0);
    const Tensor& grid = ctx.input(1);
    const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
    const int64_t ho = grid.dim(1), wo = grid.dim(2), plane = ho * wo;
    const T* px = x.data<T>();
    const T* pg = grid.data<T>();
    T* py = ctx.output(0).data<T>();
    // Out-of-range reads are 0 (zeros padding; border and reflection never leave the image
    // except for bicubic taps, which pad_coordinate brings back).
    auto at = [&](const T* img, int64_t yy, int64_t xx) -> double {
      return (yy < 0 || yy >= h || xx < 0 || xx >= w) ? 0.0 : double(img[yy * w + xx]);
    };
    parallel_for(n * plane, std::max<int64_t>(1, 2048 / std::max<int64_t>(1, c)), [&](int64_t s, int64_t e) {
      for (int64_t p = s; p < e; ++p) {
        const int64_t b = p / plane, o = p % plane;
        const double gx = double(pg[p * 2]), gy = double(pg[p * 2 + 1]);
        const T* img0 = px + b * c * h * w;
        T* out0 = py + b * c * plane + o;
        if (!std::isfinite(gx) || !std::isfinite(gy)) {  // reads nothing: such an index is undefined
          for (int64_t ch = 0; ch < c; ++ch) out0[ch * plane] = T(0);
          continue;
        }
        if (mode_ == Mode::Bicubic) {
          const double ix = unnormalize(gx, w), iy = unnormalize(gy, h);
          const double fx = std::floor(ix), fy = std::floor(iy);
          double cx[4], cy[4];
          cubic_coeffs(ix - fx, cx);
          cubic_coeffs(iy - fy, cy);
          int64_t tx[4], ty[4];
          for (int k = 0; k < 4; ++k) {
            tx[k] = tap(fx - 1 + k, w);
            ty[k] = tap(fy - 1 + k, h);
          }
          for (int64_t ch = 0; ch < c; ++ch) {
            const T* img = img0 + ch * h * w;
            double acc = 0;
            for (int j = 0; j < 4; ++j) {
              double row = 0;
              for (int i = 0; i < 4; ++i) row += cx[i] * at(img, ty[j], tx[i]);
              acc += cy[j] * row;
            }
            out0[ch * plane] = T(acc);
          }
          continue;
        }
        // Far-away locations are brought within two pixels of the image: they read the same
        // zeros, and the indices stay representable.
        const double ix = std::clamp(pad_coordinate(unnormalize(gx, w), w), -2.0, double(w) + 1);
        const double iy = std::clamp(pad_coordinate(unnormalize(gy, h), h), -2.0, double(h) + 1);
        if (mode_ == Mode::Nearest) {
          const int64_t xn = int64_t(std::nearbyint(ix)), yn = int64_t(std::nearbyint(iy));
          for (int64_t ch = 0; ch < c; ++ch) out0[ch * plane] = T(at(img0 + ch * h * w, yn, xn));
          continue;
        }
        const double fx = std::floor(ix), fy = std::floor(iy);
        const int64_t x0 = int64_t(fx), y0 = int64_t(fy);
        const double ax = ix - fx, ay = iy - fy;
        for (int64_t ch = 0; ch < c; ++ch) {
          const T* img = img0 + ch * h * w;
          out0[ch * plane] = T((1 - ay) * ((1 - ax) * at(img, y0, x0) + ax * at(img, y0, x0 + 1)) +
                               ay * ((1 - ax) * at(img, y0 + 1, x0) + ax * at(img, y0 + 1, x0 + 1)));
        }
      }
    });
  }

  // A bicubic tap's index after padding: in range, or out of range (reads 0) for zeros.
  int64_t tap(double i, int64_t size) const {
    if (pad_ == Padding::Zeros) return int64_t(std::clamp(i, -4.0, double(size) + 3));
    return int64_t(pad_coordinate(i, size));
  }

  static void cubic_coeffs(double t, double* out) {
    constexpr double A = -0.75;
    auto near = [](double d) { return ((A + 2) * d - (A + 3)) * d * d + 1; };
    auto far = [](double d) { return ((A * d - 5 * A) * d + 8 * A) * d - 4 * A; };
    out[0] = far(t + 1), out[1] = near(t), out[2] = near(1 - t), out[3] = far(2 - t);
  }

  bool align_;
  Mode mode_ = Mode::Bilinear;
  Padding pad_ = Padding::Zeros;
};

const OpRegistration kGridSample{"", "GridSample", 16, make_kernel<GridSample>};

}  // namespace
}  // namespace kiln
