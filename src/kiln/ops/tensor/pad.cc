// Pad: modes constant, reflect, edge and wrap (numpy.pad's meanings). Pads come from
// attributes before opset 11 and inputs from 11 (with optional axes from 18); negative pads
// crop, and the remaining pads then apply to the cropped tensor. Each axis gets a table from
// output to input coordinate (-1: the constant), so every output row is a copy of its source
// row with its edges filled.
#include "kiln/ops/tensor/tensor_copy.h"

namespace kiln {
namespace {
enum class PadMode { Constant, Reflect, Edge, Wrap };

class Pad : public Kernel {
 public:
  explicit Pad(const ir::Node& node) : from_attr_(node.opset < 11) {
    const std::string mode = node.attr_string("mode", "constant");
    if (mode == "constant") mode_ = PadMode::Constant;
    else if (mode == "reflect") mode_ = PadMode::Reflect;
    else if (mode == "edge") mode_ = PadMode::Edge;
    else if (mode == "wrap") mode_ = PadMode::Wrap;
    else fail(ErrorCode::InvalidGraph, "mode must be constant, reflect, edge or wrap, got '", mode, "'");
    if (from_attr_) {
      const char* key = node.has_attr("pads") ? "pads" : "paddings";
      if (!node.has_attr(key)) fail(ErrorCode::InvalidGraph, "Pad before opset 11 needs the pads attribute");
      attr_pads_ = node.attr_ints(key);
      attr_value_ = node.attr_float("value", 0.0f);
    }
  }
  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const int64_t r = x.rank();
    std::vector<int64_t> pads = attr_pads_;
    std::vector<int64_t> axes;
    if (!from_attr_) {
      pads = tensor_ops::read_indices(ctx.input(1), "pads");
      if (ctx.has_input(3)) axes = tensor_ops::normalize_axes(tensor_ops::read_indices(ctx.input(3), "axes"), r);
    }
    if (axes.empty() && (from_attr_ || !ctx.has_input(3)))
      for (int64_t d = 0; d < r; ++d) axes.push_back(d);
    const size_t na = axes.size();
    if (pads.size() != 2 * na)
      fail(ErrorCode::InvalidArgument, "pads ", shape_str(pads), " must have 2 * ", na, " entries for input ",
           shape_str(x.shape()));
    std::vector<int64_t> begin(size_t(r), 0), end(size_t(r), 0);
    for (size_t i = 0; i < na; ++i) {
      begin[size_t(axes[i])] = pads[i];
      end[size_t(axes[i])] = pads[na + i];
    }
    Shape out(static_cast<size_t>(r));
    maps_.assign(size_t(r), {});
    for (int64_t d = 0; d < r; ++d) {
      const int64_t n = x.dim(d), pb = begin[size_t(d)], pe = end[size_t(d)];
      constexpr int64_t kMax = int64_t(1) << 50;
      if (pb < -n || pe < -n || pb > kMax || pe > kMax)
        fail(ErrorCode::InvalidArgument, "pads ", pb, " and ", pe, " are out of range for axis ", d, " of size ", n);
      const int64_t lo = std::max<int64_t>(0, -pb), m = n - lo - std::max<int64_t>(0, -pe);
      if (m < 0)
        fail(ErrorCode::InvalidArgument, "pads ", pb, " and ", pe, " remove more than the ", n, " elements of axis ", d);
      const int64_t left = std::max<int64_t>(0, pb), size = m + left + std::max<int64_t>(0, pe);
      if (m == 0 && size > 0 && mode_ != PadMode::Constant)
        fail(ErrorCode::InvalidArgument, "cannot pad axis ", d, " of input ", shape_str(x.shape()),
             " in a non-constant mode: it has no elements to copy");
      out[size_t(d)] = size;
      tensor_ops::check_shape_size(Shape(out.begin(), out.begin() + d + 1), "output shape");
      std::vector<int64_t>& map = maps_[size_t(d)];
      map.resize(size_t(size));
      for (int64_t o = 0; o < size; ++o) {
        int64_t i = o - left;
        if (i < 0 || i >= m) {
          switch (mode_) {
            case PadMode::Constant: i = -1 - lo; break;
            case PadMode::Edge: i = std::clamp<int64_t>(i, 0, m - 1); break;
            case PadMode::Wrap: i = ((i % m) + m) % m; break;
            case PadMode::Reflect: {
              if (m == 1) {
                i = 0;
                break;
              }
              const int64_t period = 2 * (m - 1);
              i = ((i % period) + period) % period;
              if (i >= m) i = period - i;
              break;
            }
          }
        }
        map[size_t(o)] = lo + i;
      }
      if (d == r - 1) {
        left_ = left;
        mid_ = m;
        lo_ = lo;
      }
    }
    ctx.set_output(0, x.dtype(), out);
  }
  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0);
    if (y.size() == 0) return;
    if (x.rank() == 0) return copy_elements(x, y);
    const Tensor value = constant_value(ctx, x.dtype());
    const size_t r = size_t(x.rank());
    const std::vector<int64_t> istr = tensor_ops::contiguous_strides(x.shape());
    const Shape& out = y.shape();
    const int64_t inner = out[r - 1], rows = y.size() / inner;
    const std::vector<int64_t>& last = maps_[r - 1];
    tensor_ops::dispatch_elements(x.dtype(), [&]<typename T>() {
      const T* src = tensor_ops::elems<T>(x);
      T* dst = tensor_ops::elems<T>(y);
      const T cval = tensor_ops::elems<T>(value)[0];
      parallel_for(rows, std::max<int64_t>(1, 16384 / inner), [&](int64_t b, int64_t e) {
        for (int64_t row = b; row < e; ++row) {
          T* o = dst + row * inner;
          int64_t off = 0, rem = row;
          bool constant = false;
          for (size_t d = r - 1; d-- > 0;) {
            const int64_t i = maps_[d][size_t(rem % out[d])];
            rem /= out[d];
            if (i < 0) constant = true;
            off += i * istr[d];
          }
          if (constant) {
            std::fill_n(o, inner, cval);
            continue;
          }
          const T* s = src + off;
          for (int64_t j = 0; j < left_; ++j) o[j] = last[size_t(j)] < 0 ? cval : s[last[size_t(j)]];
          tensor_ops::copy_n(s + lo_, mid_, o + left_);
          for (int64_t j = left_ + mid_; j < inner; ++j) o[j] = last[size_t(j)] < 0 ? cval : s[last[size_t(j)]];
        }
      });
    });
  }
  std::vector<int> value_inputs() const override { return {1, 3}; }

 private:
  // The pad value as a one-element tensor of the data's type (zero bits when absent).
  Tensor constant_value(OpContext& ctx, DType dtype) const {
    Tensor v(dtype, {1});
    if (!from_attr_ && ctx.has_input(2) && ctx.input(2).size() > 0) {
      const Tensor& c = ctx.input(2);
      if (c.dtype() != dtype)
        fail(ErrorCode::InvalidArgument, "constant_value is ", dtype_name(c.dtype()), " but data is ", dtype_name(dtype));
      if (c.size() != 1)
        fail(ErrorCode::InvalidArgument, "constant_value must be a scalar, got shape ", shape_str(c.shape()));
      copy_elements(c.reshaped({1}), v);
    } else if (dtype == DType::Float16) {
      v.data<Float16>()[0] = Float16{float_to_half(attr_value_)};
    } else if (dtype == DType::BFloat16) {
      v.data<BFloat16>()[0] = BFloat16{float_to_bfloat16(attr_value_)};
    } else if (dtype == DType::String) {
      v.data<std::string>()[0] = "";
    } else {
      dispatch(TypeList<float, double, int32_t, int64_t, int8_t, int16_t, uint8_t, uint16_t, uint32_t, uint64_t, bool>{},
               dtype, "Pad", [&]<typename T>() { v.data<T>()[0] = T(attr_value_); });
    }
    return v;
  }

  bool from_attr_;
  PadMode mode_ = PadMode::Constant;
  std::vector<int64_t> attr_pads_;
  float attr_value_ = 0.0f;
  std::vector<std::vector<int64_t>> maps_;  // per axis: output coordinate -> input coordinate, < 0 for the constant
  int64_t left_ = 0, mid_ = 0, lo_ = 0;     // last axis: leading pad, copied run, first input coordinate
};
const OpRegistration kPad{"Pad", make_kernel<Pad>};
}  // namespace
}  // namespace kiln
