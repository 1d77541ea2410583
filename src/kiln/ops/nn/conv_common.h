// Convolution on oneDNN, shared by Conv and Kiln's FusedConv (and later fused variants): the
// primitive is created in prepare() with layouts left to oneDNN (`any`), constant weights are
// reordered once into its layout, and activations and residual adds ride along as post-ops.
//
//   Y = act(conv(X, W) + B + Z)      Z (FusedConv's 4th input) is the `sum` post-op
//
// FusedConv's 5th input S [N or 1, C or 1, 1, 1] (a squeeze-excite scale folded in by
// fold_squeeze_excite) multiplies X's channels first; its optional second output is Y's
// GlobalAveragePool (the squeeze), which the depthwise kernel sums as it stores Y.
#pragma once

#include <algorithm>
#include <cmath>
#include <optional>
#include <unordered_map>
#include <vector>

#include "kiln/exec/kernel.h"
#include "kiln/ops/common/dnnl.h"
#include "kiln/ops/math/packed_gemm.h"
#include "kiln/ops/nn/conv_depthwise.h"
#include "kiln/ops/nn/conv_pointwise.h"
#include "kiln/ops/nn/conv_reference.h"
#include "kiln/ops/nn/conv_stem.h"
#include "kiln/ops/nn/conv_winograd.h"

namespace kiln::nn {

// An activation applied after the convolution, as ONNX Runtime's FusedConv names them.
struct Activation {
  enum class Kind { None, Relu, LeakyRelu, Clip, Sigmoid, HardSigmoid, Tanh, HardSwish, Silu };  // Silu: x * sigmoid(x)
  Kind kind = Kind::None;
  float alpha = 0, beta = 0;  // LeakyRelu: alpha; Clip: min, max; HardSigmoid: alpha, beta

  // From the `activation` string and `activation_params` floats (each name after `prefix`);
  // None when absent.
  static Activation from_node(const ir::Node& node, const std::string& prefix = "");
  void append_to(dnnl::post_ops& ops) const;
  // The same as Kiln's own kernels apply it in registers (depthwise, stem), if they can.
  std::optional<ConvAct> in_registers() const;
  // The same function on plain data, for the reference path.
  template <typename T>
  void apply(T* data, int64_t n) const;
};

// For the optimizer's passes: the geometry (spatial sizes left out) of a 2-D convolution node
// with the constant W `w` (float [M, C/group, kh, kw]) whose activation Kiln's own kernels
// apply in registers; none for anything else, malformed attributes included (the node's kernel
// names those).
std::optional<ConvGeometry> own_kernel_geometry(const ir::Node& n, const Tensor* w);

// What runs after conv + bias, in this order: add the destination's prior content (a residual
// Z copied there first), then the activation.
struct PostOps {
  bool sum = false;
  Activation act;
};

dnnl::primitive_attr make_attr(const PostOps& post);

// A tensor a primitive wants in its own layout: a buffer in that layout and the reorders to
// and from the plain one; nothing when the primitive takes the plain layout. The buffers are
// per-thread scratch (`slot` tells apart the ones a primitive uses at once): a run stays on one
// thread and its kernels run one after another, so they need not hold activation-sized memory.
// The plain side is one memory object pointed at each run's data (a kernel serves one run at a
// time): making one per run cost 0.2 us and three allocations a tensor.
class Relayout {
 public:
  // `to`/`from`: which directions will be used (data comes in, results go out).
  void init(const dnnl::memory::desc& plain, const dnnl::memory::desc& wanted, int slot, bool to, bool from);
  bool active() const { return bool(buffer_); }
  // Memory holding the data of `p` in the primitive's layout (reordered into the buffer).
  dnnl::memory in(const void* p);
  // Memory the primitive writes; finish(p) then moves it to `p` in the plain layout.
  dnnl::memory target(void* p);
  void finish(void* p);

 private:
  dnnl::memory& bind();
  dnnl::memory& plain(const void* p);

  dnnl::memory plain_;
  dnnl::memory buffer_;
  int slot_ = 0;
  dnnl::reorder to_, from_;
};

// What a oneDNN convolution primitive is made from: plain values, so a primitive can be made
// on another thread than the kernel's (ConvKernel::ahead).
struct ConvPrimitiveSpec {
  Shape x, w, y;  // W as oneDNN takes it: [G, M/G, C/G, k...] when grouped
  Window window;
  bool has_bias = false, x_nhwc = false, y_nhwc = false, bf16 = false;
  PostOps post;  // what runs inside the primitive
  dnnl::convolution_forward::primitive_desc primitive_desc() const;
  // primitive_threads() of its work: the thread count the primitive is made and run with.
  int threads() const;
  // The number of slices of this spec's batch that `want` is, when it differs in the batch
  // alone and by at most kMaxSlices times; else 0.
  int64_t slices_of(const ConvPrimitiveSpec& want) const;
  static constexpr int64_t kMaxSlices = 2;
};

// Conv (opsets 1, 11) and FusedConv. Inputs: X, W, optional B, and for FusedConv optional Z
// and S.
class ConvKernel : public Kernel {
 public:
  ConvKernel(const KernelInit& init, PostOps post);
  void prepare(OpContext& ctx) override;
  void compute(OpContext& ctx) override;
  // The residual Z's buffer becomes Y's when Z dies here: the sum post-op adds in place, with
  // no copy of Z first.
  int inplace_input() const override { return post_.sum ? 3 : -1; }
  std::function<void()> ahead(int64_t num, int64_t den) const override;
  // A batch run in slices gets a primitive of its own.
  std::function<void()> settle() override;

 private:
  // `slice`: an existing primitive may serve this batch in slices.
  void prepare_dnnl(const Shape& x, const Shape& w, const Shape& y_shape, bool slice);
  // How many slices of its batch prim_ runs `want` in, or 0 (made anew).
  int64_t slices_for(const ConvPrimitiveSpec& want) const;
  template <typename T>
  void reference(OpContext& ctx, const T* x);
  // Y (output 0); true when it also wrote the means (output 1).
  bool compute_y(OpContext& ctx);
  // Output 1: Y's mean per image and channel, read back from Y.
  template <typename T>
  void write_means(OpContext& ctx) const;
  // X * S in thread scratch, in X's layout.
  template <typename T>
  const T* scaled_input(OpContext& ctx) const;

  void add_broadcast_residual(OpContext& ctx) const;

  const Tensor* weight_;
  PostOps post_;
  std::vector<int64_t> kernel_attr_;
  int64_t group_;
  ConvGeometry geo_;
  bool has_bias_ = false;
  bool use_dnnl_ = false;
  // Z broadcasts to Y instead of matching it (a residual the optimizer could not prove equal
  // in shape): the convolution runs plain, then Y = act(Y + Z).
  bool z_broadcast_ = false;
  bool has_scale_ = false;  // FusedConv's S
  bool has_means_ = false;  // FusedConv's second output: Y's global average pool
  // Set by the optimizer's layout pass (attributes kiln_x_nhwc, kiln_y_nhwc): X, and Y and Z,
  // are stored channels-last between convolutions, so no reorder runs at either end.
  bool x_nhwc_ = false, y_nhwc_ = false;
  int threads_ = 0;  // primitive_threads() of the convolution's work
  bool bf16_ = false;  // kiln_bf16 (fast-math): X and W as bfloat16, fp32 accumulation
  bool own_silu_ = false;  // a Silu activation applied by Kiln after the primitive
  bool use_winograd_ = false;  // this shape runs on winograd_ instead of the primitive
  WinogradConv winograd_;
  std::optional<ConvAct> own_act_;  // post_.act.in_registers()
  bool use_depthwise_ = false;  // this shape runs on depthwise_ instead of the primitive
  DepthwiseConv depthwise_;
  bool use_stem_ = false;  // this shape runs on stem_ instead of the primitive
  StemConv stem_;
  bool use_pointwise_ = false;  // this shape runs on pointwise_ instead of the primitive
  PointwiseConv pointwise_;
  // A max pool of Y folded in (attributes kiln_pool_*): its window, and the pooled Y's spatial
  // sizes, which this node outputs.
  Window pool_;
  bool pool_ceil_ = false;
  Shape pooled_;
  bool pooled() const { return !pool_.kernel.empty(); }
  bool use_gemm_ = false;  // a pointwise convolution (every s-th pixel if strided) as one packed_gemm product
  bool patches_ = false;   // the windows tile NCHW X: on use_gemm_, the product runs over its patches
  bool windows_ = false;   // on use_gemm_, the product runs over channels-last X's windows, gathered
  PackedWeights gemm_pack_;
  std::shared_ptr<const dnnl::memory> windows_pack_;  // W as [kh*kw*C, K] panels for windows_
  std::optional<PackedPanels> panels_;  // W as [C*kh*kw, K] panels in gemm_pack_, or windows_pack_'s
  bool use_gemv_ = false;  // one image of one pixel (a squeeze-excite layer): W as stored, one dot per filter
  // This shape runs on one of Kiln's kernels above, not on a oneDNN primitive.
  bool on_own_kernel() const {
    return use_winograd_ || use_gemm_ || use_depthwise_ || use_stem_ || use_pointwise_ || use_gemv_;
  }
  dnnl::convolution_forward prim_;
  ConvPrimitiveSpec spec_;  // prim_'s
  int64_t slices_ = 1;      // prim_ runs on this many slices of the batch, one after another
  Relayout src_, dst_, wei_;
  dnnl::memory bias_;     // pointed at each run's B
  std::unordered_map<int, dnnl::memory> args_;  // prim_'s, kept between runs
  PackedWeights packed_;  // constant weights in the primitive's layout
  dnnl::memory::desc w_plain_;
};

template <typename T>
void Activation::apply(T* y, int64_t n) const {
  const T a = T(alpha), b = T(beta);
  switch (kind) {
    case Kind::None: return;
    case Kind::Relu:
      for (int64_t i = 0; i < n; ++i) y[i] = std::max(y[i], T(0));
      return;
    case Kind::LeakyRelu:
      for (int64_t i = 0; i < n; ++i) y[i] = y[i] < T(0) ? a * y[i] : y[i];
      return;
    case Kind::Clip:
      for (int64_t i = 0; i < n; ++i) y[i] = std::min(std::max(y[i], a), b);
      return;
    case Kind::Sigmoid:
      for (int64_t i = 0; i < n; ++i) y[i] = T(1) / (T(1) + std::exp(-y[i]));
      return;
    case Kind::HardSigmoid:
      for (int64_t i = 0; i < n; ++i) y[i] = std::min(std::max(a * y[i] + b, T(0)), T(1));
      return;
    case Kind::Tanh:
      for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(y[i]);
      return;
    case Kind::HardSwish:
      for (int64_t i = 0; i < n; ++i) y[i] = y[i] * std::min(std::max(y[i] / T(6) + T(0.5), T(0)), T(1));
      return;
    case Kind::Silu:
      for (int64_t i = 0; i < n; ++i) y[i] = y[i] / (T(1) + std::exp(-y[i]));
      return;
  }
}

}  // namespace kiln::nn
