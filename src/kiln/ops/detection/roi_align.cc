// RoiAlign (opsets 10, 16): for each region [x1, y1, x2, y2] (times spatial_scale) of image
// batch_indices[r] of X [N, C, H, W], an output_height x output_width grid of bins, each the
// average (or maximum) of sampling_ratio^2 bilinear samples (adaptive ceil(size / bins) when
// sampling_ratio is 0). coordinate_transformation_mode half_pixel (opset 16's default) shifts
// the region by -0.5 pixel; output_half_pixel (opset 10's only behaviour) does not, and makes
// regions at least 1 pixel wide. Max mode takes the largest weighted corner of each sample, as
// ONNX Runtime does. Output [num_rois, C, output_height, output_width].
#include <algorithm>
#include <cmath>

#include "kiln/core/parallel.h"
#include "kiln/exec/kernel.h"

namespace kiln {
namespace {

struct Sample {
  int64_t o1, o2, o3, o4;  // offsets of the four corners in an H x W plane
  double w1, w2, w3, w4;
};

class RoiAlign : public Kernel {
 public:
  explicit RoiAlign(const ir::Node& node)
      : out_h_(node.attr_int("output_height", 1)), out_w_(node.attr_int("output_width", 1)),
        sampling_(node.attr_int("sampling_ratio", 0)), scale_(node.attr_float("spatial_scale", 1.0f)) {
    const std::string mode = node.attr_string("mode", "avg");
    if (mode != "avg" && mode != "max") fail(ErrorCode::InvalidGraph, "mode must be avg or max, got '", mode, "'");
    max_ = mode == "max";
    const std::string ctm =
        node.attr_string("coordinate_transformation_mode", node.opset >= 16 ? "half_pixel" : "output_half_pixel");
    if (ctm != "half_pixel" && ctm != "output_half_pixel")
      fail(ErrorCode::InvalidGraph, "coordinate_transformation_mode must be half_pixel or output_half_pixel, got '",
           ctm, "'");
    half_pixel_ = ctm == "half_pixel";
    if (out_h_ <= 0 || out_w_ <= 0 || sampling_ < 0)
      fail(ErrorCode::InvalidGraph, "output_height and output_width must be positive and sampling_ratio >= 0, got ",
           out_h_, ", ", out_w_, ", ", sampling_);
  }

  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& rois = ctx.input(1);
    const Tensor& idx = ctx.input(2);
    if (x.rank() != 4) fail(ErrorCode::InvalidArgument, "X must be [N, C, H, W], got ", shape_str(x.shape()));
    if (x.dtype() != DType::Float32 && x.dtype() != DType::Float64)
      fail(ErrorCode::InvalidArgument, "X must be float or double, got ", dtype_name(x.dtype()));
    if (rois.dtype() != x.dtype() || rois.rank() != 2 || rois.dim(1) != 4)
      fail(ErrorCode::InvalidArgument, "rois must be ", dtype_name(x.dtype()), " [num_rois, 4], got ",
           dtype_name(rois.dtype()), " ", shape_str(rois.shape()));
    if (idx.rank() != 1 || idx.dim(0) != rois.dim(0) || idx.dtype() != DType::Int64)
      fail(ErrorCode::InvalidArgument, "batch_indices must be int64 [", rois.dim(0), "], got ", dtype_name(idx.dtype()),
           " ", shape_str(idx.shape()));
    ctx.set_output(0, x.dtype(), {rois.dim(0), x.dim(1), out_h_, out_w_});
  }

  void compute(OpContext& ctx) override {
    dispatch(TypeList<float, double>{}, ctx.input(0).dtype(), "RoiAlign", [&]<typename T>() { run<T>(ctx); });
  }

 private:
  template <typename T>
  void run(OpContext& ctx) {
    const Tensor& x = ctx.input(0);
    const T* px = x.data<T>();
    const T* rois = ctx.input(1).data<T>();
    const int64_t* bidx = ctx.input(2).data<int64_t>();
    T* py = ctx.output(0).data<T>();
    const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3), num = ctx.input(1).dim(0);
    for (int64_t r = 0; r < num; ++r)
      if (bidx[r] < 0 || bidx[r] >= n)
        fail(ErrorCode::InvalidArgument, "batch_indices[", r, "] = ", bidx[r], " is outside [0, ", n, ")");
    if (h == 0 || w == 0) {  // nothing to sample: every bin is empty
      std::fill(py, py + ctx.output(0).size(), T(0));
      return;
    }
    parallel_for(num, 1, [&](int64_t s, int64_t e) {
      std::vector<Sample> samples;
      for (int64_t r = s; r < e; ++r) {
        const T* roi = rois + r * 4;
        const double off = half_pixel_ ? 0.5 : 0.0;
        const double x1 = double(roi[0]) * scale_ - off, y1 = double(roi[1]) * scale_ - off;
        double rw = double(roi[2]) * scale_ - off - x1, rh = double(roi[3]) * scale_ - off - y1;
        if (!half_pixel_) rw = std::max(rw, 1.0), rh = std::max(rh, 1.0);
        const double bin_h = rh / double(out_h_), bin_w = rw / double(out_w_);
        // Clamped so that a huge or NaN region cannot ask for an unbounded sample grid.
        auto grid = [&](double extent, int64_t bins) {
          if (sampling_ > 0) return sampling_;
          const double g = std::ceil(extent / double(bins));
          return g >= 1 ? int64_t(std::min(g, 1024.0)) : int64_t(0);
        };
        const int64_t gh = grid(rh, out_h_), gw = grid(rw, out_w_);
        const double count = double(std::max<int64_t>(gh * gw, 1));
        const T* img0 = px + bidx[r] * c * h * w;
        T* out0 = py + r * c * out_h_ * out_w_;
        for (int64_t ph = 0; ph < out_h_; ++ph) {
          for (int64_t pw = 0; pw < out_w_; ++pw) {
            samples.clear();
            for (int64_t iy = 0; iy < gh; ++iy) {
              const double yy = y1 + double(ph) * bin_h + (double(iy) + 0.5) * bin_h / double(gh);
              for (int64_t ix = 0; ix < gw; ++ix) {
                const double xx = x1 + double(pw) * bin_w + (double(ix) + 0.5) * bin_w / double(gw);
                samples.push_back(sample(yy, xx, h, w));
              }
            }
            for (int64_t ch = 0; ch < c; ++ch) {
              const T* img = img0 + ch * h * w;
              double acc = 0;
              bool first = true;
              for (const Sample& sm : samples) {
                const double v1 = sm.w1 * double(img[sm.o1]), v2 = sm.w2 * double(img[sm.o2]);
                const double v3 = sm.w3 * double(img[sm.o3]), v4 = sm.w4 * double(img[sm.o4]);
                if (max_) {
                  const double m = std::max(std::max(v1, v2), std::max(v3, v4));
                  acc = first ? m : std::max(acc, m);
                  first = false;
                } else {
                  acc += v1 + v2 + v3 + v4;
                }
              }
              out0[(ch * out_h_ + ph) * out_w_ + pw] = T(max_ ? acc : acc / count);
            }
          }
        }
      }
    });
  }

  // Bilinear weights of the point (y, x); points more than a pixel outside weigh nothing.
  static Sample sample(double y, double x, int64_t h, int64_t w) {
    Sample s{0, 0, 0, 0, 0, 0, 0, 0};
    if (!(y >= -1.0 && y <= double(h) && x >= -1.0 && x <= double(w))) return s;
    y = std::max(y, 0.0), x = std::max(x, 0.0);
    int64_t y0 = int64_t(y), x0 = int64_t(x), y1, x1;
    if (y0 >= h - 1) y0 = y1 = h - 1, y = double(y0);
    else y1 = y0 + 1;
    if (x0 >= w - 1) x0 = x1 = w - 1, x = double(x0);
    else x1 = x0 + 1;
    const double ly = y - double(y0), lx = x - double(x0), hy = 1 - ly, hx = 1 - lx;
    return {y0 * w + x0, y0 * w + x1, y1 * w + x0, y1 * w + x1, hy * hx, hy * lx, ly * hx, ly * lx};
  }

  int64_t out_h_, out_w_, sampling_;
  double scale_;
  bool max_ = false, half_pixel_ = true;
};

const OpRegistration kRoiAlign{"", "RoiAlign", 10, make_kernel<RoiAlign>};

}  // namespace
}  // namespace kiln
