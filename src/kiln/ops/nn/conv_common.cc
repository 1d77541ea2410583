#include "kiln/ops/nn/conv_common.h"

#include "kiln/core/parallel.h"

#include <cfloat>
#include <cstring>

#include "kiln/ops/common/elementwise.h"
#include "kiln/ops/math/fast_math.h"
#include "kiln/ops/nn/global_pool.h"

namespace kiln::nn {

Activation Activation::from_node(const ir::Node& node, const std::string& prefix) {
  Activation a;
  const std::string name = node.attr_string(prefix + "activation", "");
  const std::vector<float> p = node.attr_floats(prefix + "activation_params");
  auto params = [&](size_t n, std::vector<float> fallback) {
    if (p.empty()) return fallback;
    if (p.size() != n)
      fail(ErrorCode::InvalidGraph, "activation ", name, " takes ", n, " activation_params, got ", p.size());
    return p;
  };
  if (name.empty()) return a;
  if (name == "Relu") {
    a.kind = Kind::Relu;
  } else if (name == "LeakyRelu") {
    a.kind = Kind::LeakyRelu;
    a.alpha = params(1, {0.01f})[0];
  } else if (name == "Clip") {
    a.kind = Kind::Clip;
    auto v = params(2, {-FLT_MAX, FLT_MAX});
    a.alpha = v[0], a.beta = v[1];
  } else if (name == "Sigmoid") {
    a.kind = Kind::Sigmoid;
  } else if (name == "HardSigmoid") {
    a.kind = Kind::HardSigmoid;
    auto v = params(2, {0.2f, 0.5f});
    a.alpha = v[0], a.beta = v[1];
  } else if (name == "Tanh") {
    a.kind = Kind::Tanh;
  } else if (name == "HardSwish") {
    a.kind = Kind::HardSwish;
  } else if (name == "Silu") {
    a.kind = Kind::Silu;
  } else {
    fail(ErrorCode::InvalidGraph, "activation '", name,
         "' is not one of Relu, LeakyRelu, Clip, Sigmoid, HardSigmoid, Tanh, HardSwish, Silu");
  }
  return a;
}

void Activation::append_to(dnnl::post_ops& ops) const {
  using alg = dnnl::algorithm;
  switch (kind) {
    case Kind::None: return;
    case Kind::Relu: return ops.append_eltwise(1.f, alg::eltwise_relu, 0.f, 0.f);
    case Kind::LeakyRelu: return ops.append_eltwise(1.f, alg::eltwise_relu, alpha, 0.f);
    case Kind::Clip: return ops.append_eltwise(1.f, alg::eltwise_clip_v2, alpha, beta);
    case Kind::Sigmoid: return ops.append_eltwise(1.f, alg::eltwise_logistic, 0.f, 0.f);
    case Kind::HardSigmoid:  // oneDNN 2.6 has no hardsigmoid: alpha*x + beta, then clip to [0, 1]
      ops.append_eltwise(1.f, alg::eltwise_linear, alpha, beta);
      return ops.append_eltwise(1.f, alg::eltwise_clip_v2, 0.f, 1.f);
    case Kind::Tanh: return ops.append_eltwise(1.f, alg::eltwise_tanh, 0.f, 0.f);
    case Kind::HardSwish: return ops.append_eltwise(1.f, alg::eltwise_hardswish, 0.f, 0.f);
    case Kind::Silu: return ops.append_eltwise(1.f, alg::eltwise_swish, 1.f, 0.f);
  }
}

std::optional<ConvAct> Activation::in_registers() const {
  switch (kind) {
    case Kind::None: return ConvAct::None;
    case Kind::Relu: return ConvAct::Relu;
    case Kind::Clip: return ConvAct::Clip;
    case Kind::HardSwish: return ConvAct::HardSwish;
    case Kind::Silu: return ConvAct::Silu;
    default: return std::nullopt;
  }
}

std::optional<ConvGeometry> own_kernel_geometry(const ir::Node& n, const Tensor* w) {
  if (!ir::is_conv(n) || !w || w->dtype() != DType::Float32 || w->rank() != 4) return std::nullopt;
  try {
    if (!Activation::from_node(n).in_registers()) return std::nullopt;
  } catch (const Error&) {
    return std::nullopt;
  }
  ConvGeometry geo;
  geo.group = n.attr_int("group", 1);
  geo.in_channels = w->dim(1) * geo.group;
  geo.out_channels = w->dim(0);
  geo.window.kernel = {w->dim(2), w->dim(3)};
  geo.window.strides = n.attr_ints("strides", {1, 1});
  geo.window.dilations = n.attr_ints("dilations", {1, 1});
  const std::vector<int64_t> pads = n.attr_ints("pads", {0, 0, 0, 0});
  if (geo.window.strides.size() != 2 || geo.window.dilations.size() != 2 || pads.size() != 4) return std::nullopt;
  geo.window.pads_begin = {pads[0], pads[1]};
  geo.window.pads_end = {pads[2], pads[3]};
  return geo;
}

dnnl::primitive_attr make_attr(const PostOps& post) {
  dnnl::post_ops ops;
  if (post.sum) ops.append_sum(1.f);
  post.act.append_to(ops);
  dnnl::primitive_attr attr;
  attr.set_post_ops(ops);
  return attr;
}

namespace {
#if defined(__AVX512F__)
constexpr bool kAvx512 = true;
#else
constexpr bool kAvx512 = false;
#endif
// The thread_scratch slot of the rows packed_gemm's convolutions gather (windows, a strided
// pointwise convolution's pixels, a patch embedding's patches): Relayout's first, which the
// packed_gemm path does not use.
constexpr int kGatherSlot = 0;
// The slot of the product before it is transposed into NCHW Y: Relayout's second.
constexpr int kProductSlot = 1;
// X scaled by S where X lives on (Relayout's slots are 0-2, Winograd's 3).
constexpr int kScaledSlot = 4;
// The most output pixels a convolution over gathered windows takes: past them the weight is
// read often enough per run that oneDNN's primitive keeps up (and the gathered rows outgrow L2).
constexpr int64_t kMaxWindowRows = 128;
// The most output pixels a pointwise convolution streams its weight on packed_gemm for.
constexpr int64_t kMaxStreamRows = 512;
// A pointwise convolution of at most kMaxColdRows pixels with a weight of kColdWeight floats and
// more fetches it ahead on packed_gemm though under a megabyte.
constexpr int64_t kMaxColdRows = 64, kColdWeight = int64_t(1) << 15;

// The activations packed_gemm applies itself.
std::optional<GemmEpilogue::Act> gemm_act(Activation::Kind kind) {
  switch (kind) {
    case Activation::Kind::None: return GemmEpilogue::Act::None;
    case Activation::Kind::Relu: return GemmEpilogue::Act::Relu;
    case Activation::Kind::HardSwish: return GemmEpilogue::Act::HardSwish;
    case Activation::Kind::Silu: return GemmEpilogue::Act::Silu;
    default: return std::nullopt;
  }
}

// X or Y as Kiln stores it: plain, or channels-last.
dnnl::memory::desc conv_stored(const Shape& s, bool nhwc) {
  if (!nhwc) return plain_desc(s, DType::Float32);
  using tag = dnnl::memory::format_tag;
  const tag t = s.size() == 3 ? tag::nwc : s.size() == 4 ? tag::nhwc : tag::ndhwc;
  return dnnl::memory::desc(dnnl_dims(s), dnnl::memory::data_type::f32, t);
}

// W [K, C, kh, kw] as the weight of the product over channels-last windows: [kh*kw*C, K] in
// packed_gemm's panels, row (i * kw + j) * C + c. None where that is no panel layout.
std::shared_ptr<const dnnl::memory> pack_windows(const Tensor& w) {
  const int64_t k = w.dim(0), c = w.dim(1), kh = w.dim(2), kw = w.dim(3), depth = c * kh * kw;
  const dnnl::memory::desc layout = panel_layout(depth, k);
  const std::optional<PanelLayout> pl = PanelLayout::of(layout);
  if (!pl || pl->stride != pl->padded_k * pl->width) return nullptr;
  // W read in the rows' order: [K, kh, kw, C].
  const dnnl::memory::desc from({k, kh, kw, c}, dnnl::memory::data_type::f32, dnnl::memory::dims{depth, kw, 1, kh * kw});
  return derive_weight(w, from, layout, [&](dnnl::memory& m) {
    std::vector<float> ohwi(size_t(k * depth));
    const float* g = w.data<float>();
    parallel_for(k, 1, [&](int64_t begin, int64_t end) {  // a filter at a time, written in order
      for (int64_t o = begin; o < end; ++o)
        for (int64_t q = 0; q < kh * kw; ++q)
          for (int64_t ch = 0; ch < c; ++ch) ohwi[size_t(o * depth + q * c + ch)] = g[(o * c + ch) * kh * kw + q];
    });
    pack_panels(ohwi.data(), 1, depth, *pl, static_cast<float*>(m.get_data_handle()));
  });
}

// Whether `from` broadcasts to `to` without changing it (numpy rules, one direction).
bool broadcasts_to(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  for (size_t i = 1; i <= from.size(); ++i) {
    const int64_t f = from[from.size() - i];
    if (f != 1 && f != to[to.size() - i]) return false;
  }
  return true;
}
}  // namespace

void Relayout::init(const dnnl::memory::desc& plain, const dnnl::memory::desc& wanted, int slot, bool to, bool from) {
  plain_ = dnnl::memory(plain, dnnl_engine(), DNNL_MEMORY_NONE);
  slot_ = slot;
  if (wanted == plain) {
    buffer_ = dnnl::memory();
    return;
  }
  buffer_ = dnnl::memory(wanted, dnnl_engine(), DNNL_MEMORY_NONE);
  auto& eng = dnnl_engine();
  to_ = to ? dnnl::reorder(dnnl::reorder::primitive_desc(eng, plain, eng, wanted)) : dnnl::reorder();
  from_ = from ? dnnl::reorder(dnnl::reorder::primitive_desc(eng, wanted, eng, plain)) : dnnl::reorder();
}

dnnl::memory& Relayout::bind() {
  buffer_.set_data_handle(thread_scratch(slot_, buffer_.get_desc().get_size()));
  return buffer_;
}

dnnl::memory& Relayout::plain(const void* p) {
  plain_.set_data_handle(const_cast<void*>(p));
  return plain_;
}

dnnl::memory Relayout::in(const void* p) {
  if (!buffer_) return plain(p);
  to_.execute(dnnl_stream(), plain(p), bind());
  return buffer_;
}

dnnl::memory Relayout::target(void* p) { return buffer_ ? bind() : plain(p); }

void Relayout::finish(void* p) {
  if (!buffer_) return;
  from_.execute(dnnl_stream(), buffer_, plain(p));
}

ConvKernel::ConvKernel(const KernelInit& init, PostOps post)
    : weight_(init.constant(1)), post_(post), group_(init.node.attr_int("group", 1)) {
  if (group_ <= 0) fail(ErrorCode::InvalidGraph, "group must be positive, got ", group_);
  x_nhwc_ = init.node.attr_int("kiln_x_nhwc", 0) != 0;
  y_nhwc_ = init.node.attr_int("kiln_y_nhwc", 0) != 0;
  bf16_ = init.node.attr_int("kiln_bf16", 0) != 0;
  has_scale_ = init.node.domain == "kiln" && init.node.has_input(4);
  has_means_ = init.node.domain == "kiln" && init.node.outputs.size() > 1 && !init.node.outputs[1].empty();
  if (init.node.has_attr("kernel_shape")) kernel_attr_ = read_kernel_shape(init.node, -1);
  if (init.node.has_attr("kiln_pool_kernel")) {  // a MaxPool of Y folded in by fuse_stem_pool
    pool_.kernel = init.node.attr_ints("kiln_pool_kernel");
    pool_.strides = init.node.attr_ints("kiln_pool_strides");
    const std::vector<int64_t> pads = init.node.attr_ints("kiln_pool_pads");
    pool_ceil_ = init.node.attr_int("kiln_pool_ceil", 0) != 0;
    if (pool_.kernel.size() != 2 || pool_.strides.size() != 2 || pads.size() != 4)
      fail(ErrorCode::InvalidGraph, "kiln_pool_kernel and kiln_pool_strides take 2 values and kiln_pool_pads 4, got ",
           dims_str(pool_.kernel), ", ", dims_str(pool_.strides), ", ", dims_str(pads));
    for (size_t d = 0; d < 2; ++d)
      if (pool_.kernel[d] < 1 || pool_.strides[d] < 1 || pads[d] < 0 || pads[d + 2] < 0)
        fail(ErrorCode::InvalidGraph, "the folded pool's kernel and strides must be positive and its pads not negative");
    pool_.dilations = {1, 1};
    pool_.pads_begin = {pads[0], pads[1]};
    pool_.pads_end = {pads[2], pads[3]};
  }
}

void ConvKernel::prepare(OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  if (x.dtype() != w.dtype())
    fail(ErrorCode::InvalidArgument, "X is ", dtype_name(x.dtype()), " but W is ", dtype_name(w.dtype()));
  if (x.dtype() != DType::Float32 && x.dtype() != DType::Float64)
    fail(ErrorCode::NotImplemented, "element type ", dtype_name(x.dtype()), " is not supported (float and double are)");
  const std::vector<int64_t> kernel = conv_kernel(x.shape(), w.shape(), kernel_attr_);
  const int64_t n = x.dim(0), c = x.dim(1), m = w.dim(0);
  if (c != w.dim(1) * group_)
    fail(ErrorCode::InvalidArgument, "X ", shape_str(x.shape()), " has ", c, " channels but W ", shape_str(w.shape()),
         " expects ", w.dim(1), " x group ", group_, " = ", w.dim(1) * group_);
  if (m % group_ != 0)
    fail(ErrorCode::InvalidArgument, "W ", shape_str(w.shape()), " has ", m, " output channels, not a multiple of group ",
         group_);
  Window win = read_window(ctx.node(), kernel);
  Shape in(x.shape().begin() + 2, x.shape().end());
  Shape out = window_output(in, win);
  Shape y_shape{n, m};
  y_shape.insert(y_shape.end(), out.begin(), out.end());
  has_bias_ = ctx.has_input(2);
  if (has_bias_) {
    const Tensor& b = ctx.input(2);
    if (b.dtype() != x.dtype() || b.rank() != 1 || b.dim(0) != m)
      fail(ErrorCode::InvalidArgument, "B must be ", dtype_name(x.dtype()), " [", m, "] (one per output channel), got ",
           dtype_name(b.dtype()), " ", shape_str(b.shape()));
  }
  z_broadcast_ = false;
  if (post_.sum) {
    const Tensor& z = ctx.input(3);
    if (z.dtype() != x.dtype() || !broadcasts_to(z.shape(), y_shape))
      fail(ErrorCode::InvalidArgument, "Z must be ", dtype_name(x.dtype()), " ", shape_str(y_shape),
           " (the output's shape) or broadcast to it, got ", dtype_name(z.dtype()), " ", shape_str(z.shape()));
    z_broadcast_ = z.shape() != y_shape;
  }
  if (has_scale_) {
    const Tensor& s = ctx.input(4);
    if (s.dtype() != x.dtype() || s.rank() != 4 || (s.dim(0) != 1 && s.dim(0) != n) ||
        (s.dim(1) != 1 && s.dim(1) != c) || s.dim(2) != 1 || s.dim(3) != 1)
      fail(ErrorCode::InvalidArgument, "S (the scale of X's channels) must be ", dtype_name(x.dtype()), " [",
           n == 1 ? std::string("1") : std::to_string(n) + " or 1", ", ", c, " or 1, 1, 1], got ",
           dtype_name(s.dtype()), " ", shape_str(s.shape()));
  }
  Shape stored = y_shape;  // Y as this node outputs it: pooled when a pool was folded in
  if (pooled()) {
    if (in.size() != 2)
      fail(ErrorCode::InvalidArgument, "a folded pool needs 2-D images, got X ", shape_str(x.shape()));
    Window pool = pool_;
    pooled_ = window_output(out, pool, pool_ceil_);
    pool_ = pool;
    stored = {n, m, pooled_[0], pooled_[1]};
  }
  ctx.set_output(0, x.dtype(), stored);
  if (has_means_) {  // [N, M, 1, ...]: Y's global average pool
    Shape means(stored.size(), 1);
    means[0] = stored[0], means[1] = stored[1];
    ctx.set_output(1, x.dtype(), means);
  }
  geo_ = ConvGeometry{n, c, m, group_, in, out, win};
  use_dnnl_ = x.dtype() == DType::Float32 && shape_size(y_shape) > 0 && x.size() > 0 && in.size() <= 3;
  const Activation::Kind act = post_.act.kind;
  use_winograd_ = use_dnnl_ && x_nhwc_ && y_nhwc_ && !bf16_ && weight_ && !z_broadcast_ &&
                  (act == Activation::Kind::None || act == Activation::Kind::Relu) && WinogradConv::suits(geo_);
  if (use_winograd_ && !winograd_) winograd_.init(*weight_);
  own_act_ = post_.act.in_registers();
  const bool own = use_dnnl_ && !bf16_ && weight_ && !post_.sum && own_act_;
  use_depthwise_ = own && x_nhwc_ && y_nhwc_ && DepthwiseConv::suits(geo_);
  if (use_depthwise_ && !depthwise_) depthwise_.init(*weight_);
  // A network's first convolution reads the image as fed, with no reorder to channels-last
  // first: per node in the models, 1 thread, oneDNN's reorder and brgconv against this kernel,
  // SqueezeNet's 3 -> 64 3x3 405 -> 307-341 us, MobileNetV3's 3 -> 16 199 -> 134-147,
  // EfficientNet-B0's 3 -> 32 with SiLU 378 -> 276-279, ResNet-50's 7x7 1.57 -> 1.40-1.48 ms.
  use_stem_ = own && !x_nhwc_ && y_nhwc_ && StemConv::suits(geo_);
  if (use_stem_ && !stem_) stem_.init(*weight_);
  // A 1x1 convolution of few input channels stores its sums activated (SiLU no longer a second
  // pass over an output larger than L2). Per node, 1 thread, against oneDNN: EfficientNet-B0's
  // 16 -> 96 at 112x112 with SiLU 0.67 -> 0.51 ms, 24 -> 144 at 56x56 0.26 -> 0.23; MobileNetV3's
  // 40 -> 240 with HardSwish 0.12 -> 0.08; SqueezeNet's 16 -> 64 and 32 -> 128 with ReLU 10%
  // faster. From 64 channels on it loses (ResNet-50's 64 -> 256 at 56x56: 0.66 -> 0.75 ms).
  use_pointwise_ = own && x_nhwc_ && y_nhwc_ && PointwiseConv::suits(geo_);
  if (use_pointwise_ && !pointwise_) pointwise_.init(*weight_);
  if (pooled() && !use_stem_ && shape_size(stored) > 0)
    fail(ErrorCode::NotImplemented, "a folded pool runs on the stem kernel only (a constant float W of at most 4 "
         "input and 16-64 output channels, channels-last Y, no Z), got X ", shape_str(x.shape()), " and W ",
         shape_str(w.shape()));
  // A 1x1 stride-1 convolution on channels-last data is the product [N*H*W, C] x [C, K]. With a
  // weight of a megabyte and more, which each run reads from memory, packed_gemm (fetching the
  // next panel while it computes) beats the primitive: ResNet-50's 1x1 convolutions of stages
  // 3-4 at 0.85-0.93 of the time, 1 thread. Not past kMaxStreamRows pixels, where the weight's
  // reads are a small part of the work and packed_gemm's panels walk Y and Z a column strip at
  // a time: ResNet-50 at 8 images, 256 -> 1024 at 14x14 (1568 rows) 6.7 -> 5.4 ms at 1 thread
  // on the primitive, 3.4 -> 2.6 at 2.
  // A strided one (ResNet's downsampling) is the same product over every s-th pixel, gathered
  // first: ResNet-50's 512 -> 1024 at 28x28, stride 2, took 3.2 ms at 1 thread on oneDNN's
  // brgconv_1x1 (57% of peak), against ONNX Runtime's 2.0.
  Window unit = win;
  unit.strides.assign(win.rank(), 1);
  const bool pointwise = x_nhwc_ && y_nhwc_ && geo_.group == 1 && win.rank() == 2 && unit.is_pointwise();
  // A kernel that tiles the image (a vision transformer's patch embedding: kernel = stride, no
  // padding) over NCHW X is the product [N*OH*OW, C*kh*kw] x [C*kh*kw, K] over the patches,
  // each gathered as one row in W's own order: ViT-B/16's 16x16 3 -> 768 took 1.8-2.0 ms on
  // oneDNN plus reorders of X and Y (0.1 and 0.2-0.3), against ONNX Runtime's 1.8.
  // (Patches at least 4 pixels wide: each copy moves a row's run of them.)
  patches_ = !x_nhwc_ && geo_.group == 1 && win.rank() == 2 && win.tiles_input() && win.kernel[1] >= 4 &&
             !(post_.sum && !y_nhwc_);
  // A convolution whose weight outweighs its work waits on oneDNN's primitive for the weight
  // about as long as it computes (ResNet-50's 3x3 512 -> 512 at 7x7: 9.4 MB read from memory
  // for 49 pixels, 2.0-2.2 ms a layer at 1 thread, of which 1.15 computing at peak and 0.94
  // reading at 10 GB/s). As the product [pixels, kh*kw*C] x [kh*kw*C, K] over X's windows,
  // gathered a pixel a row, packed_gemm fetches the weight while it computes.
  const int64_t pixels = shape_size(y_shape) / m;
  windows_ = x_nhwc_ && y_nhwc_ && geo_.group == 1 && win.rank() == 2 && !unit.is_pointwise() && !use_winograd_ &&
             pixels <= kMaxWindowRows;
  // So does a pointwise convolution of few pixels whose weight, a few hundred kilobytes, comes
  // from memory all the same among a model's many layers (MobileNetV3's and EfficientNet-B0's
  // 1x1 layers at 7x7, which oneDNN's primitive ran at 50-60 GFLOP/s in the models): 160 -> 960
  // at 7x7 with its weight from memory 136 -> 116 us, 960 -> 160 139 -> 120; at 14x14 level.
  const int64_t depth = c * shape_size(win.kernel);  // the product's K: one patch's values
  // Without AVX-512 every one of them does: oneDNN's AVX2 kernels on channels-last data run
  // 30-50% behind their blocked layout (Zen 3, 256 -> 1024 at 14x14: 1.9 against 1.26 ms),
  // packed_gemm at its 85 GFLOP/s (EfficientNet-B0 2.6%, ResNet-50 1.6% faster, MobileNetV3
  // level, models interleaved).
  const bool heavy = (pointwise && !kAvx512) ||
                     (((pointwise && pixels <= kMaxStreamRows) || patches_ || windows_) && streams_on_packed_gemm(depth, m));
  const bool cold = pointwise && pixels > 1 && pixels <= kMaxColdRows && depth * m >= kColdWeight;  // one: gemv
  use_gemm_ = use_dnnl_ && (heavy || cold) && !bf16_ && weight_ && !z_broadcast_ && gemm_act(act);
  if (use_gemm_ && windows_ && !panels_) {
    windows_pack_ = pack_windows(*weight_);
    if (windows_pack_) panels_ = PackedPanels::from(windows_pack_->get_desc(), windows_pack_->get_data_handle());
  } else if (use_gemm_ && !panels_) {  // W [K, C, kh, kw] read as [C*kh*kw, K]: filter k is column k
    panels_ = PackedPanels::pack(
        gemm_pack_, weight_, dnnl::memory::desc({depth, m}, dnnl::memory::data_type::f32, dnnl::memory::dims{1, depth}));
  }
  use_gemm_ = use_gemm_ && panels_;
  if (use_gemm_) panels_->cold = cold;
  // One image of one pixel in and out (squeeze-excite's 1x1 layers): the product is a vector
  // times W, whose filters are its rows as stored; gemv streams them once (MobileNetV3's
  // 960 -> 240 at 1x1: 45 us on oneDNN's primitive, 33 here, ONNX Runtime's 36).
  use_gemv_ = !use_pointwise_ && use_dnnl_ && !bf16_ && weight_ && !z_broadcast_ && geo_.group == 1 && n == 1 && unit.is_pointwise() &&
              shape_size(in) == 1 && shape_size(out) == 1;
  if (on_own_kernel()) threads_ = 0;
  slices_ = 1;  // prepare_dnnl may find the primitive serves this batch in slices
  try {
    if (use_dnnl_ && !on_own_kernel())
      prepare_dnnl(x.shape(), w.shape(), y_shape, true);
  } catch (const dnnl::error&) {
    use_dnnl_ = false;  // a geometry oneDNN has no implementation for: the loop takes it
  }
  if ((x_nhwc_ || y_nhwc_) && shape_size(y_shape) > 0 && (!use_dnnl_ || z_broadcast_))
    fail(ErrorCode::NotImplemented, "channels-last storage needs oneDNN and a Z of the output's shape; got X ",
         shape_str(x.shape()), ", Y ", shape_str(y_shape), ": run with graph_optimization_level below ORT_ENABLE_ALL");
}

dnnl::convolution_forward::primitive_desc ConvPrimitiveSpec::primitive_desc() const {
  const int64_t m = y[1], g = w.size() > x.size() ? w[0] : 1;
  auto any = [](const Shape& s, bool bf16 = false) {
    return dnnl::memory::desc(dnnl_dims(s), bf16 ? dnnl::memory::data_type::bf16 : dnnl::memory::data_type::f32,
                              dnnl::memory::format_tag::any);
  };
  dnnl::memory::dims dil(window.rank());
  for (size_t d = 0; d < window.rank(); ++d) dil[d] = window.dilations[d] - 1;
  using fwd = dnnl::convolution_forward;
  const auto prop = dnnl::prop_kind::forward_inference;
  const auto alg = dnnl::algorithm::convolution_direct;
  const dnnl::memory::desc bias_md = has_bias ? plain_desc({m}, DType::Float32) : dnnl::memory::desc();
  // Activations stay plain NCHW between ops for now, and most convolutions are worth reordering
  // into oneDNN's blocked layout and back (3x3 64ch @56: 1.4 ms against 2.6-6.5 ms on NCHW,
  // which falls to gemm). Not so a pointwise convolution that keeps or narrows the channels
  // over a large image: on NCHW it is one plain GEMM (256->64 @56: 0.62 ms against 0.85 ms;
  // 96->24 @56: 0.11 against 0.22), while widening ones (128->512 @28) favour blocked.
  const bool pointwise = g == 1 && x[1] >= m && shape_size(Shape(y.begin() + 2, y.end())) >= 256 &&
                         window.is_pointwise() && !x_nhwc && !y_nhwc && !bf16;
  const auto src_md = pointwise ? conv_stored(x, x_nhwc) : any(x, bf16);
  const auto dst_md = pointwise ? conv_stored(y, y_nhwc) : any(y);
  fwd::desc d = has_bias ? fwd::desc(prop, alg, src_md, any(w, bf16), bias_md, dst_md, window.strides, dil,
                                     window.pads_begin, window.pads_end)
                         : fwd::desc(prop, alg, src_md, any(w, bf16), dst_md, window.strides, dil, window.pads_begin,
                                     window.pads_end);
  return fwd::primitive_desc(d, make_attr(post), dnnl_engine());
}

int64_t ConvPrimitiveSpec::slices_of(const ConvPrimitiveSpec& want) const {
  if (x.empty() || want.x.size() != x.size() || x[0] <= 0 || want.x[0] % x[0] != 0 || want.x[0] / x[0] > kMaxSlices)
    return 0;
  const Window &a = window, &b = want.window;
  const bool same = std::equal(x.begin() + 1, x.end(), want.x.begin() + 1) && want.y.size() == y.size() &&
                    std::equal(y.begin() + 1, y.end(), want.y.begin() + 1) && w == want.w && a.kernel == b.kernel &&
                    a.strides == b.strides && a.dilations == b.dilations && a.pads_begin == b.pads_begin &&
                    a.pads_end == b.pads_end && has_bias == want.has_bias && x_nhwc == want.x_nhwc &&
                    y_nhwc == want.y_nhwc && bf16 == want.bf16 && post.sum == want.post.sum &&
                    post.act.kind == want.post.act.kind && post.act.alpha == want.post.act.alpha &&
                    post.act.beta == want.post.act.beta;
  return same ? want.x[0] / x[0] : 0;
}

int ConvPrimitiveSpec::threads() const {
  const int64_t per_output = shape_size(w) / std::max<int64_t>(y[1], 1);  // multiply-adds per output value
  return primitive_threads(2.0 * double(shape_size(y)) * double(per_output));
}

void ConvKernel::prepare_dnnl(const Shape& x, const Shape& w, const Shape& y_shape, bool slice) {
  const int64_t g = group_, m = geo_.out_channels;
  Shape wdims = w;
  if (g > 1) {  // oneDNN's grouped weights [G, M/G, C/G, k...]: the same bytes as ONNX's W
    wdims[0] = m / g;
    wdims.insert(wdims.begin(), g);
  }
  w_plain_ = plain_desc(wdims, DType::Float32);
  // SiLU runs as Kiln's own pass over the output: oneDNN's swish post-op divides, 0.42 ns per
  // element here (1x1 16->96 at 112x112: 411 us plain, 926 with swish), and the pass, division
  // free, costs less even with its extra read and write (EfficientNet-B0 4-5% faster).
  own_silu_ = post_.act.kind == Activation::Kind::Silu && !z_broadcast_;
  PostOps in_primitive = z_broadcast_ ? PostOps{} : post_;
  if (own_silu_) in_primitive.act = Activation{};
  const ConvPrimitiveSpec want{x, wdims, y_shape, geo_.window, has_bias_, x_nhwc_, y_nhwc_, bf16_, in_primitive};
  // A batch of up to kMaxSlices times the one the primitive was made for runs it on each slice,
  // so the first run at a larger batch makes nothing: oneDNN's creation and first executions
  // were a third of SqueezeNet's first run at 8 images after 4. settle() makes the batch's own
  // primitive before the next run (sliced, small layers at 2 threads ran 3-6% slower).
  if (slice) {
    if (const int64_t slices = slices_for(want)) {
      slices_ = slices;
      return;
    }
  }
  const int threads = want.threads();
  ThreadLimit limit(threads);
  const dnnl::convolution_forward::primitive_desc pd = want.primitive_desc();
  prim_ = dnnl::convolution_forward(pd);  // from here on nothing throws but out of memory
  slices_ = 1;
  spec_ = want;
  threads_ = threads;
  bias_ = dnnl::memory(pd.bias_desc(), dnnl_engine(), DNNL_MEMORY_NONE);
  const dnnl::memory::desc src_plain = conv_stored(x, x_nhwc_), dst_plain = conv_stored(y_shape, y_nhwc_);
  src_.init(src_plain, pd.src_desc(), 0, true, false);
  dst_.init(dst_plain, pd.dst_desc(), 1, post_.sum && !z_broadcast_, true);
  packed_.pack(weight_, w_plain_, pd.weights_desc());
  // Weights fed at run time are reordered on every run.
  wei_.init(w_plain_, weight_ ? w_plain_ : pd.weights_desc(), 2, true, false);
}

std::function<void()> ConvKernel::ahead(int64_t num, int64_t den) const {
  if (!use_dnnl_ || on_own_kernel() || !prim_ || geo_.batch * num % den != 0) return {};
  ConvPrimitiveSpec spec = spec_;
  spec.x[0] = spec.y[0] = geo_.batch * num / den;
  if (slices_for(spec) > 0) return {};  // runs on prim_, slice by slice
  return [spec] {
    ThreadLimit limit(spec.threads());
    dnnl::convolution_forward made(spec.primitive_desc());
  };
}

int64_t ConvKernel::slices_for(const ConvPrimitiveSpec& want) const {
  return prim_ && weight_ ? spec_.slices_of(want) : 0;
}

std::function<void()> ConvKernel::settle() {
  if (slices_ <= 1) return {};
  return [this] {  // the shapes prim_ was made for, at the batch it runs in slices
    Shape x = spec_.x, y = spec_.y;
    x[0] = y[0] = geo_.batch;
    try {
      prepare_dnnl(x, weight_->shape(), y, false);
    } catch (const dnnl::error&) {  // no primitive for the whole batch: the slices go on
    }
  };
}

void ConvKernel::compute(OpContext& ctx) {
  const bool means_written = compute_y(ctx);
  if (has_means_ && !means_written)
    dispatch(FloatTypes{}, ctx.output(0).dtype(), "FusedConv", [&]<typename T>() { write_means<T>(ctx); });
}

template <typename T>
void ConvKernel::write_means(OpContext& ctx) const {  // as GlobalAveragePool computes it
  const Tensor& y = ctx.output(0);
  const int64_t n = y.dim(0), c = y.dim(1);
  reduce_planes(PlaneMean{}, y.data<T>(), n, c, y.size() / std::max<int64_t>(1, n * c), y_nhwc_,
                ctx.output(1).data<T>());
}

bool ConvKernel::compute_y(OpContext& ctx) {
  Tensor& y = ctx.output(0);
  if (y.size() == 0) return false;
  ThreadLimit limit(use_dnnl_ ? threads_ : 0);
  if (!use_dnnl_) {
    dispatch(FloatTypes{}, y.dtype(), "Conv", [&]<typename T>() {
      reference<T>(ctx, has_scale_ ? scaled_input<T>(ctx) : ctx.input(0).data<T>());
    });
    return false;
  }
  const Tensor& x = ctx.input(0);
  const float* xp = has_scale_ ? scaled_input<float>(ctx) : x.data<float>();
  if (use_winograd_) {
    winograd_.run(geo_, xp, has_bias_ ? ctx.input(2).data<float>() : nullptr,
                  post_.sum ? ctx.input(3).data<float>() : nullptr, post_.act.kind == Activation::Kind::Relu,
                  y.data<float>());
    return false;
  }
  if (use_depthwise_) {  // the means as sums from the kernel's registers, then scaled
    float* means = has_means_ ? ctx.output(1).data<float>() : nullptr;
    const int64_t channels = geo_.batch * geo_.out_channels;
    if (means) std::fill(means, means + channels, 0.f);
    depthwise_.run(geo_, xp, has_bias_ ? ctx.input(2).data<float>() : nullptr, *own_act_,
                   post_.act.alpha, post_.act.beta, y.data<float>(), means);
    if (means) PlaneMean{}.finish(means, shape_size(geo_.out), channels, means);
    return has_means_;
  }
  if (use_stem_) {
    const float* bias = has_bias_ ? ctx.input(2).data<float>() : nullptr;
    if (pooled())
      stem_.run_pooled(geo_, xp, bias, *own_act_, post_.act.alpha, post_.act.beta, pool_, pooled_,
                       y.data<float>());
    else
      stem_.run(geo_, xp, bias, *own_act_, post_.act.alpha, post_.act.beta, y.data<float>());
    return false;
  }
  if (use_pointwise_) {
    pointwise_.run(geo_, xp, has_bias_ ? ctx.input(2).data<float>() : nullptr, *own_act_, post_.act.alpha,
                   post_.act.beta, y.data<float>());
    return false;
  }
  if (use_gemm_) {
    GemmEpilogue ep;
    ep.bias = has_bias_ ? ctx.input(2).data<float>() : nullptr;
    ep.act = *gemm_act(post_.act.kind);
    ep.z = post_.sum ? ctx.input(3).data<float>() : nullptr;
    ep.z_first = true;
    const float* a = xp;
    const int64_t sh = geo_.window.strides[0], sw = geo_.window.strides[1];
    const int64_t pixels = y.size() / geo_.out_channels;  // the product's rows
    if (patches_) {  // each patch of NCHW X into one row, in W's order (channel, row, column)
      const int64_t c = geo_.in_channels, h = geo_.in[0], w = geo_.in[1], oh = geo_.out[0], ow = geo_.out[1];
      const int64_t depth = c * sh * sw;
      float* rows = static_cast<float*>(thread_scratch(kGatherSlot, sizeof(float) * size_t(pixels * depth)));
      parallel_for(geo_.batch * oh, 1, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r)
          for (int64_t j = 0; j < ow; ++j)
            for (int64_t ch = 0; ch < c; ++ch)
              for (int64_t i = 0; i < sh; ++i)
                std::memcpy(rows + (r * ow + j) * depth + (ch * sh + i) * sw,
                            a + ((r / oh * c + ch) * h + r % oh * sh + i) * w + j * sw, sizeof(float) * size_t(sw));
      });
      a = rows;
    } else if (windows_ || sh != 1 || sw != 1) {  // each output pixel's window of channels-last X into one
      // row (row, column, channel); of a strided 1x1 convolution, every s-th pixel
      const int64_t c = geo_.in_channels, h = geo_.in[0], w = geo_.in[1], oh = geo_.out[0], ow = geo_.out[1];
      const int64_t kh = geo_.window.kernel[0], kw = geo_.window.kernel[1], depth = kh * kw * c;
      const int64_t pt = geo_.window.pads_begin[0], pl = geo_.window.pads_begin[1];
      const int64_t dh = geo_.window.dilations[0], dw = geo_.window.dilations[1];
      float* rows = static_cast<float*>(thread_scratch(kGatherSlot, sizeof(float) * size_t(pixels * depth)));
      parallel_for(pixels, 1, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          const int64_t img = r / (oh * ow), y0 = r / ow % oh * sh - pt, x0 = r % ow * sw - pl;
          float* row = rows + r * depth;
          for (int64_t i = 0; i < kh; ++i)
            for (int64_t j = 0; j < kw; ++j, row += c) {
              const int64_t yy = y0 + i * dh, xx = x0 + j * dw;
              if (yy < 0 || yy >= h || xx < 0 || xx >= w)
                std::memset(row, 0, sizeof(float) * size_t(c));
              else
                std::memcpy(row, a + ((img * h + yy) * w + xx) * c, sizeof(float) * size_t(c));
            }
        }
      });
      a = rows;
    }
    if (y_nhwc_) {
      packed_gemm(a, pixels, *panels_, ep, y.data<float>());
      return false;
    }
    // NCHW Y: the product's [pixels, K] rows, then each image's transposed into place.
    const int64_t k = geo_.out_channels, plane = pixels / geo_.batch;
    float* prod = static_cast<float*>(thread_scratch(kProductSlot, sizeof(float) * size_t(pixels * k)));
    packed_gemm(a, pixels, *panels_, ep, prod);
    float* py = y.data<float>();
    constexpr int64_t kBlock = 16;
    const int64_t kb = ceil_div(k, kBlock);
    parallel_for(geo_.batch * kb, 1, [&](int64_t begin, int64_t end) {
      for (int64_t item = begin; item < end; ++item) {
        const int64_t img = item / kb, k0 = item % kb * kBlock, k1 = std::min(k, k0 + kBlock);
        const float* src = prod + img * plane * k;
        float* dst = py + img * k * plane;
        for (int64_t p = 0; p < plane; ++p)
          for (int64_t o = k0; o < k1; ++o) dst[o * plane + p] = src[p * k + o];
      }
    });
    return false;
  }
  if (use_gemv_) {  // Z (which may be Y's own buffer) before the activation, as the post-ops have it
    GemmEpilogue ep;
    ep.bias = has_bias_ ? ctx.input(2).data<float>() : nullptr;
    ep.z = post_.sum ? ctx.input(3).data<float>() : nullptr;
    ep.z_first = true;
    const bool relu = post_.act.kind == Activation::Kind::Relu;
    if (relu) ep.act = GemmEpilogue::Act::Relu;
    gemv(xp, weight_->data<float>(), geo_.in_channels, geo_.out_channels, true, ep, y.data<float>());
    if (!relu) post_.act.apply(y.data<float>(), y.size());
    return false;
  }
  const Tensor& w = ctx.input(1);
  auto& stream = dnnl_stream();
  std::unordered_map<int, dnnl::memory>& args = args_;
  args[DNNL_ARG_WEIGHTS] = packed_ ? packed_.memory() : wei_.in(w.raw());
  if (has_bias_) {
    bias_.set_data_handle(const_cast<void*>(ctx.input(2).raw()));
    args[DNNL_ARG_BIAS] = bias_;
  }
  // Images are contiguous in NCHW and NHWC alike: slice s starts s slices' bytes in.
  const size_t x_step = x.bytes() / size_t(slices_), y_step = y.bytes() / size_t(slices_);
  for (int64_t s = 0; s < slices_; ++s) {
    const char* xs = reinterpret_cast<const char*>(xp) + size_t(s) * x_step;
    char* ys = static_cast<char*>(y.raw()) + size_t(s) * y_step;
    args[DNNL_ARG_SRC] = src_.in(xs);
    if (post_.sum && !z_broadcast_) {  // the sum post-op adds what the destination holds: Z
      const char* zs = static_cast<const char*>(ctx.input(3).raw()) + size_t(s) * y_step;
      if (dst_.active()) {
        args[DNNL_ARG_DST] = dst_.in(zs);
      } else {
        if (ys != zs) std::memcpy(ys, zs, y_step);
        args[DNNL_ARG_DST] = dst_.target(ys);
      }
    } else {
      args[DNNL_ARG_DST] = dst_.target(ys);
    }
    prim_.execute(stream, args);
    dst_.finish(ys);
  }
  stream.wait();
  if (z_broadcast_) add_broadcast_residual(ctx);
  if (own_silu_) {
    float* py = y.data<float>();
    parallel_for(y.size(), 1 << 14, [&](int64_t begin, int64_t end) { fastmath::silu(py + begin, py + begin, end - begin); });
  }
  return false;
}

void ConvKernel::add_broadcast_residual(OpContext& ctx) const {
  Tensor& y = ctx.output(0);
  dispatch(FloatTypes{}, y.dtype(), "FusedConv", [&]<typename T>() {
    binary_loop<T, T>(y, ctx.input(3), y, [](T a, T b) { return a + b; });
    post_.act.apply(y.data<T>(), y.size());
  });
}

template <typename T>
const T* ConvKernel::scaled_input(OpContext& ctx) const {
  const Tensor& x = ctx.input(0);
  const Tensor& s = ctx.input(4);
  // In X's own buffer when X dies here; else in scratch. (A copy beside a dying X cost
  // EfficientNet-B0's 14x14 projections 5-10% and the model 3% at 8 images. Scaling the
  // weights instead, one image at a time, measured level with this.)
  Tensor* own = ctx.consumable_input(0);
  T* out = own ? own->data<T>() : static_cast<T*>(thread_scratch(kScaledSlot, x.bytes()));
  // The product as the Mul it replaces computes it: on the stored shapes when channels-last.
  const Shape xs = x_nhwc_ ? nhwc_storage_shape(x.shape(), 0) : x.shape();
  const Shape ss = x_nhwc_ ? nhwc_storage_shape(s.shape(), 1) : s.shape();
  auto view = [](const Tensor& t, const Shape& shape, const void* p) {
    return Tensor::view(t.dtype(), shape, const_cast<void*>(p));
  };
  Tensor scaled = view(x, xs, out);
  binary_loop<T, T>(view(x, xs, x.raw()), view(s, ss, s.raw()), scaled, [](T a, T b) { return a * b; });
  return out;
}

template <typename T>
void ConvKernel::reference(OpContext& ctx, const T* x) {
  Tensor& y = ctx.output(0);
  T* py = y.data<T>();
  conv_reference<T>(geo_, x, ctx.input(1).data<T>(), py);
  const int64_t plane = shape_size(geo_.out), planes = y.size() / plane;
  const T* bias = has_bias_ ? ctx.input(2).data<T>() : nullptr;
  const T* z = post_.sum && !z_broadcast_ ? ctx.input(3).data<T>() : nullptr;
  parallel_for(planes, 1, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      T* yp = py + p * plane;
      if (bias) {
        const T b = bias[p % geo_.out_channels];
        for (int64_t i = 0; i < plane; ++i) yp[i] += b;
      }
      if (z)
        for (int64_t i = 0; i < plane; ++i) yp[i] += z[p * plane + i];
      if (!z_broadcast_) post_.act.apply(yp, plane);
    }
  });
  if (z_broadcast_) add_broadcast_residual(ctx);
}

}  // namespace kiln::nn
