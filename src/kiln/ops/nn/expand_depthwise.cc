// kiln::ExpandDepthwise (made by the optimizer from an inverted residual block's first two
// layers): Y = act(depthwise(act_e(X We + Be), Wd) + Bd), on channels-last X and Y, where the
// expansion is a 1x1 convolution of few input channels (PointwiseConv) and the second layer a
// depthwise one (DepthwiseConv).
//
// Inputs X [N, C, H, W], We [E, C, 1, 1], Be [E] or "", Wd [E, 1, kh, kw], Bd [E] or "";
// attributes expand_activation(_params) and activation(_params) as FusedConv's, and the
// depthwise layer's strides, pads and dilations. Output 0 is Y; an optional output 1 holds Y's
// mean per image and channel (a squeeze-excite block's pool, folded in before this fusion).
//
// Apart, the expansion writes E / C times its input (EfficientNet-B0's 16 -> 96 at 112x112:
// 4.8 MB, past L2) and the depthwise layer reads it back from memory. Here each thread expands
// a band of rows at a time into a buffer that stays in L2 and runs the depthwise rows that
// band completes; the rows the next band shares are moved to the buffer's front, not redone.
#include <algorithm>
#include <cstring>

#include "kiln/core/parallel.h"
#include "kiln/exec/kernel.h"
#include "kiln/ops/nn/conv_common.h"
#include "kiln/ops/nn/global_pool.h"
#include "kiln/ops/nn/window.h"

namespace kiln::nn {
namespace {

constexpr int kBandSlot = 4;  // thread_scratch slot of a thread's expanded rows
constexpr int64_t kBandBytes = int64_t(512) << 10;  // expanded rows a band aims at (a quarter of L2)

class ExpandDepthwise : public Kernel {
 public:
  explicit ExpandDepthwise(const KernelInit& init) {
    const ir::Node& node = init.node;
    const Tensor* we = init.constant(1);
    const Tensor* wd = init.constant(3);
    if (!we || !wd || we->dtype() != DType::Float32 || wd->dtype() != DType::Float32 || we->rank() != 4 ||
        wd->rank() != 4 || we->dim(2) != 1 || we->dim(3) != 1 || wd->dim(0) != we->dim(0) || wd->dim(1) != 1)
      fail(ErrorCode::InvalidGraph, "ExpandDepthwise '", node.name,
           "' needs constant float We [E, C, 1, 1] and Wd [E, 1, kh, kw]");
    expand_act_ = Activation::from_node(node, "expand_");
    act_ = Activation::from_node(node);
    if (!expand_act_.in_registers() || !act_.in_registers())
      fail(ErrorCode::InvalidGraph, "ExpandDepthwise '", node.name, "': activations must be ones Kiln's kernels apply "
           "in registers (None, Relu, Clip, HardSwish, Silu)");
    for (int i : {2, 4}) {
      const Tensor* b = init.constant(i);
      if (node.has_input(size_t(i)) && (!b || b->dtype() != DType::Float32 || b->size() != we->dim(0)))
        fail(ErrorCode::InvalidGraph, "ExpandDepthwise '", node.name, "': input ", i, " must be a constant float [",
             we->dim(0), "]");
      (i == 2 ? expand_bias_ : bias_) = node.has_input(size_t(i)) ? b->data<float>() : nullptr;
    }
    e_ = we->dim(0);
    c_ = we->dim(1);
    kernel_ = {wd->dim(2), wd->dim(3)};
    window_ = read_window(node, kernel_);
    expand_.init(*we);
    depthwise_.init(*wd);
  }

  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.dtype() != DType::Float32 || x.rank() != 4 || x.dim(1) != c_)
      fail(ErrorCode::InvalidArgument, "X must be float [N, ", c_, ", H, W], got ", dtype_name(x.dtype()), " ",
           shape_str(x.shape()));
    Window win = window_;
    const Shape in{x.dim(2), x.dim(3)};
    const Shape out = window_output(in, win);
    geo_ = ConvGeometry{x.dim(0), e_, e_, e_, in, out, win};
    if (!DepthwiseConv::suits(geo_) || !PointwiseConv::suits(expand_geometry(1)))
      fail(ErrorCode::NotImplemented, "ExpandDepthwise runs on AVX-512 with a depthwise kernel 3, 5 or 7 wide, "
           "strides 1 or 2 and no dilation; got kernel ", dims_str(kernel_), ", strides ", dims_str(win.strides));
    ctx.set_output(0, DType::Float32, {x.dim(0), e_, out[0], out[1]});
    if (ctx.has_output(1)) ctx.set_output(1, DType::Float32, {x.dim(0), e_, 1, 1});
  }

  void compute(OpContext& ctx) override {
    const float* x = ctx.input(0).data<float>();
    float* y = ctx.output(0).data<float>();
    float* means = ctx.has_output(1) ? ctx.output(1).data<float>() : nullptr;
    const int64_t n = geo_.batch, oh = geo_.out[0], ow = geo_.out[1];
    if (n * oh * ow == 0) return;
    if (means) std::fill(means, means + n * e_, 0.f);
    // Rows split over the team in runs; each run's first band also expands the rows it shares
    // with the run before (kh - stride rows, once per thread).
    const int threads = int(std::min<int64_t>(num_threads(), n * oh));
    std::vector<float> sums(means ? size_t(threads * n * e_) : 0, 0.f);
#pragma omp parallel num_threads(threads)
    {
      const int t = omp_get_thread_num(), nt = omp_get_num_threads();
      const int64_t begin = n * oh * t / nt, end = n * oh * (t + 1) / nt;
      for (int64_t r = begin; r < end;) {  // within one image at a time
        const int64_t img = r / oh, last = std::min(end, (img + 1) * oh);
        run_rows(x + img * geo_.in[0] * geo_.in[1] * c_, img, r % oh, last - img * oh, y,
                 means ? sums.data() + (t * n + img) * e_ : nullptr);
        r = last;
      }
    }
    if (means) {
      for (int k = 0; k < threads; ++k)  // in row order: the same means whatever the timing
        for (int64_t i = 0; i < n * e_; ++i) means[i] += sums[size_t(k * n * e_ + i)];
      PlaneMean{}.finish(means, oh * ow, n * e_, means);
    }
  }

 private:
  // The expansion over `rows` input rows as one image.
  ConvGeometry expand_geometry(int64_t rows) const {
    Window unit;
    unit.kernel = unit.strides = unit.dilations = {1, 1};
    unit.pads_begin = unit.pads_end = {0, 0};
    return ConvGeometry{1, c_, e_, 1, {rows, geo_.in[1]}, {rows, geo_.in[1]}, unit};
  }

  // Output rows [r0, r1) of image `img` (X at x); `sums` (or null) gathers Y's sums per channel.
  void run_rows(const float* x, int64_t img, int64_t r0, int64_t r1, float* y, float* sums) const {
    const int64_t h = geo_.in[0], w = geo_.in[1], ow = geo_.out[1], oh = geo_.out[0];
    const int64_t s = geo_.window.strides[0], pt = geo_.window.pads_begin[0], kh = kernel_[0];
    const int64_t row_floats = w * e_;
    const int64_t band = std::max<int64_t>(1, kBandBytes / int64_t(sizeof(float)) / row_floats / s);  // output rows
    const int64_t rows_max = (band - 1) * s + kh;
    float* buf = static_cast<float*>(thread_scratch(kBandSlot, sizeof(float) * size_t(rows_max * row_floats)));
    const float lo = expand_act_.alpha, hi = expand_act_.beta;
    int64_t have_lo = 0, have_hi = 0;  // input rows held, buf row 0 = have_lo
    for (int64_t b0 = r0; b0 < r1; b0 += band) {
      const int64_t b1 = std::min(r1, b0 + band);
      const int64_t first = b0 * s - pt;  // input row of the band's first window row
      const int64_t need_lo = std::clamp<int64_t>(first, 0, h), need_hi = std::clamp<int64_t>((b1 - 1) * s - pt + kh, 0, h);
      // Keep the rows this band shares with the last one; expand the rest.
      const int64_t keep_lo = std::max(need_lo, have_lo), keep_hi = std::min(need_hi, have_hi);
      if (keep_lo < keep_hi && keep_lo > have_lo)
        std::memmove(buf, buf + (keep_lo - have_lo) * row_floats, sizeof(float) * size_t((keep_hi - keep_lo) * row_floats));
      const int64_t from = keep_lo < keep_hi ? keep_hi : need_lo;
      if (from < need_hi)
        expand_.run(expand_geometry(need_hi - from), x + from * w * c_, expand_bias_, *expand_act_.in_registers(), lo,
                    hi, buf + (from - need_lo) * row_floats);
      have_lo = need_lo, have_hi = need_hi;
      // The band as an image of its own: its first window row starts need_lo - first rows up.
      ConvGeometry g = geo_;
      g.batch = 1;
      g.in = {need_hi - need_lo, w};
      g.out = {b1 - b0, ow};
      g.window.pads_begin[0] = need_lo - first;
      depthwise_.run(g, buf, bias_, *act_.in_registers(), act_.alpha, act_.beta, y + ((img * oh + b0) * ow) * e_,
                     sums);
    }
  }

  int64_t e_ = 0, c_ = 0;
  std::vector<int64_t> kernel_;
  Window window_;
  Activation expand_act_, act_;
  const float* expand_bias_ = nullptr;
  const float* bias_ = nullptr;
  PointwiseConv expand_;
  DepthwiseConv depthwise_;
  ConvGeometry geo_;
};

const OpRegistration kExpandDepthwise{"kiln", "ExpandDepthwise", 1, make_kernel<ExpandDepthwise>};

}  // namespace
}  // namespace kiln::nn
