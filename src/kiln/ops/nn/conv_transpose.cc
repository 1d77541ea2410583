// ConvTranspose: 1-D to 3-D float transposed convolution on oneDNN's deconvolution (groups,
// strides, dilations, pads, output_padding, output_shape, auto_pad), float64 and higher ranks
// through a reference loop. Constant weights are reordered once into the primitive's layout.
#include "kiln/ops/nn/conv_common.h"

namespace kiln::nn {
namespace {

class ConvTranspose : public Kernel {
 public:
  explicit ConvTranspose(const KernelInit& init)
      : weight_(init.constant(1)), group_(init.node.attr_int("group", 1)) {
    if (group_ <= 0) fail(ErrorCode::InvalidGraph, "group must be positive, got ", group_);
    if (init.node.has_attr("kernel_shape")) kernel_attr_ = read_kernel_shape(init.node, -1);
  }

  void prepare(OpContext& ctx) override {
    const ir::Node& node = ctx.node();
    const Tensor& x = ctx.input(0);
    const Tensor& w = ctx.input(1);
    if (x.dtype() != w.dtype())
      fail(ErrorCode::InvalidArgument, "X is ", dtype_name(x.dtype()), " but W is ", dtype_name(w.dtype()));
    if (x.dtype() != DType::Float32 && x.dtype() != DType::Float64)
      fail(ErrorCode::NotImplemented, "element type ", dtype_name(x.dtype()), " is not supported (float and double are)");
    const std::vector<int64_t> kernel = conv_kernel(x.shape(), w.shape(), kernel_attr_);
    const int64_t n = x.dim(0), c = x.dim(1), m = w.dim(1) * group_;
    if (c != w.dim(0))
      fail(ErrorCode::InvalidArgument, "X ", shape_str(x.shape()), " has ", c, " channels but W ", shape_str(w.shape()),
           " expects ", w.dim(0), " (W is [C, M/group, k...])");
    if (c % group_ != 0)
      fail(ErrorCode::InvalidArgument, "X ", shape_str(x.shape()), " has ", c, " channels, not a multiple of group ",
           group_);
    const size_t r = kernel.size();
    Window win = read_window(node, kernel);
    std::vector<int64_t> out_pad = node.attr_ints("output_padding", std::vector<int64_t>(r, 0));
    if (out_pad.size() != r)
      fail(ErrorCode::InvalidArgument, "output_padding ", dims_str(out_pad), " must have ", r, " values");
    std::vector<int64_t> out_shape = node.attr_ints("output_shape");
    if (out_shape.size() == r + 2) out_shape.erase(out_shape.begin(), out_shape.begin() + 2);  // [N, M, ...] given
    if (!out_shape.empty() && out_shape.size() != r)
      fail(ErrorCode::InvalidArgument, "output_shape ", dims_str(out_shape), " must have ", r, " values");
    Shape in(x.shape().begin() + 2, x.shape().end()), out(r);
    for (size_t d = 0; d < r; ++d) {
      const int64_t full = win.strides[d] * (in[d] - 1) + out_pad[d] + win.extent(d);
      const bool same = win.auto_pad == AutoPad::SameUpper || win.auto_pad == AutoPad::SameLower;
      if (!out_shape.empty() || same) {
        // The spec's rule (and onnx.reference's): the total padding that gives the asked size,
        // split with floor division; SAME_UPPER puts the smaller half at the start.
        out[d] = out_shape.empty() ? in[d] * win.strides[d] : out_shape[d];
        const int64_t total = full - out[d];
        const int64_t half = floor_div(total, 2);
        win.pads_begin[d] = win.auto_pad == AutoPad::SameUpper ? half : total - half;
        win.pads_end[d] = total - win.pads_begin[d];
      } else {
        if (win.auto_pad == AutoPad::Valid) win.pads_begin[d] = win.pads_end[d] = 0;
        out[d] = full - win.pads_begin[d] - win.pads_end[d];
      }
      if (out[d] < 0)
        fail(ErrorCode::InvalidArgument, "spatial dimension ", d, " would have negative size ", out[d], " (input ", in[d],
             ", pads ", win.pads_begin[d], "+", win.pads_end[d], ")");
    }
    Shape y_shape{n, m};
    y_shape.insert(y_shape.end(), out.begin(), out.end());
    has_bias_ = ctx.has_input(2);
    if (has_bias_) {
      const Tensor& b = ctx.input(2);
      if (b.dtype() != x.dtype() || b.rank() != 1 || b.dim(0) != m)
        fail(ErrorCode::InvalidArgument, "B must be ", dtype_name(x.dtype()), " [", m, "] (one per output channel), got ",
             dtype_name(b.dtype()), " ", shape_str(b.shape()));
    }
    ctx.set_output(0, x.dtype(), y_shape);
    geo_ = ConvGeometry{n, c, m, group_, in, out, win};
    bool pads_ok = true;  // a negative start pad (output_shape beyond the natural size) goes by the loop
    for (int64_t p : win.pads_begin) pads_ok = pads_ok && p >= 0;
    use_dnnl_ = x.dtype() == DType::Float32 && shape_size(y_shape) > 0 && x.size() > 0 && r <= 3 && pads_ok;
    if (!use_dnnl_) return;
    try {
      prepare_dnnl(x, w, y_shape, out_pad);
    } catch (const dnnl::error&) {
      use_dnnl_ = false;  // a geometry oneDNN has no implementation for: the loop takes it
    }
  }

  void compute(OpContext& ctx) override {
    Tensor& y = ctx.output(0);
    if (y.size() == 0) return;
    if (!use_dnnl_) {
      dispatch(FloatTypes{}, y.dtype(), "ConvTranspose", [&]<typename T>() { reference<T>(ctx); });
      return;
    }
    auto& stream = dnnl_stream();
    std::unordered_map<int, dnnl::memory> args;
    args[DNNL_ARG_SRC] = src_.in(ctx.input(0).raw());
    args[DNNL_ARG_WEIGHTS] = packed_ ? packed_.memory() : wei_.in(ctx.input(1).raw());
    if (has_bias_) args[DNNL_ARG_BIAS] = wrap(bias_md_, ctx.input(2).raw());
    args[DNNL_ARG_DST] = dst_.target(y.raw());
    prim_.execute(stream, args);
    dst_.finish(y.raw());
    stream.wait();
  }

 private:
  void prepare_dnnl(const Tensor& x, const Tensor& w, const Shape& y_shape, const std::vector<int64_t>& out_pad) {
    const Window& win = geo_.window;
    const int64_t g = group_, cg = geo_.in_channels / g, mg = geo_.out_channels / g;
    const Shape kernel = win.kernel;
    const int64_t kvol = shape_size(kernel);
    // oneDNN wants [G,] O, I, k... ; ONNX stores [G, I/G, O/G, k...]: describe it by strides.
    dnnl::memory::dims dims, strides;
    if (g > 1) dims = {g, mg, cg}, strides = {cg * mg * kvol, kvol, mg * kvol};
    else dims = {mg, cg}, strides = {kvol, mg * kvol};
    int64_t inner = kvol;
    for (size_t d = 0; d < kernel.size(); ++d) {
      inner /= kernel[d];
      dims.push_back(kernel[d]);
      strides.push_back(inner);
    }
    w_plain_ = dnnl::memory::desc(dims, dnnl::memory::data_type::f32, strides);
    auto any = [](const dnnl::memory::dims& s) {
      return dnnl::memory::desc(s, dnnl::memory::data_type::f32, dnnl::memory::format_tag::any);
    };
    dnnl::memory::dims dil(win.rank()), pad_r(win.rank());
    for (size_t d = 0; d < win.rank(); ++d) {
      dil[d] = win.dilations[d] - 1;
      pad_r[d] = win.pads_end[d] - out_pad[d];  // output_padding extends the end: a negative pad
    }
    using fwd = dnnl::deconvolution_forward;
    const auto prop = dnnl::prop_kind::forward_inference;
    const auto alg = dnnl::algorithm::deconvolution_direct;
    bias_md_ = has_bias_ ? plain_desc({geo_.out_channels}, DType::Float32) : dnnl::memory::desc();
    const auto src_md = any(dnnl_dims(x.shape())), w_md = any(dims), dst_md = any(dnnl_dims(y_shape));
    fwd::desc d = has_bias_ ? fwd::desc(prop, alg, src_md, w_md, bias_md_, dst_md, win.strides, dil, win.pads_begin, pad_r)
                            : fwd::desc(prop, alg, src_md, w_md, dst_md, win.strides, dil, win.pads_begin, pad_r);
    fwd::primitive_desc pd(d, dnnl_engine());
    prim_ = fwd(pd);
    src_.init(plain_desc(x.shape(), DType::Float32), pd.src_desc(), 0, true, false);
    dst_.init(plain_desc(y_shape, DType::Float32), pd.dst_desc(), 1, false, true);
    packed_.pack(weight_, w_plain_, pd.weights_desc());
    wei_.init(w_plain_, weight_ ? w_plain_ : pd.weights_desc(), 2, true, false);
  }

  template <typename T>
  void reference(OpContext& ctx) {
    Tensor& y = ctx.output(0);
    T* py = y.data<T>();
    conv_transpose_reference<T>(geo_, ctx.input(0).data<T>(), ctx.input(1).data<T>(), py);
    if (!has_bias_) return;
    const T* bias = ctx.input(2).data<T>();
    const int64_t plane = shape_size(geo_.out), planes = y.size() / plane;
    parallel_for(planes, 1, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        const T b = bias[p % geo_.out_channels];
        for (int64_t i = 0; i < plane; ++i) py[p * plane + i] += b;
      }
    });
  }

  const Tensor* weight_;
  int64_t group_;
  std::vector<int64_t> kernel_attr_;
  ConvGeometry geo_;
  bool has_bias_ = false;
  bool use_dnnl_ = false;
  dnnl::deconvolution_forward prim_;
  Relayout src_, dst_, wei_;
  PackedWeights packed_;
  dnnl::memory::desc w_plain_, bias_md_;
};

const OpRegistration kConvTranspose{"ConvTranspose", make_kernel<ConvTranspose>};

}  // namespace
}  // namespace kiln::nn
