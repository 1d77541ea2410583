#include "kiln/ops/nn/window.h"

#include <sstream>

namespace kiln::nn {

AutoPad parse_auto_pad(const ir::Node& node) {
  const std::string s = node.attr_string("auto_pad", "NOTSET");
  if (s == "NOTSET" || s.empty()) return AutoPad::NotSet;
  if (s == "SAME_UPPER") return AutoPad::SameUpper;
  if (s == "SAME_LOWER") return AutoPad::SameLower;
  if (s == "VALID") return AutoPad::Valid;
  fail(ErrorCode::InvalidGraph, "auto_pad must be NOTSET, SAME_UPPER, SAME_LOWER or VALID, got '", s, "'");
}

std::string dims_str(const std::vector<int64_t>& v) { return shape_str(v); }

std::vector<int64_t> conv_kernel(const Shape& x, const Shape& w, const std::vector<int64_t>& kernel_attr) {
  if (x.size() < 3)
    fail(ErrorCode::InvalidArgument, "X must be [N, C, D1, ...] with at least one spatial dimension, got ", shape_str(x));
  if (w.size() != x.size())
    fail(ErrorCode::InvalidArgument, "W ", shape_str(w), " must have the rank of X ", shape_str(x));
  std::vector<int64_t> kernel(w.begin() + 2, w.end());
  if (!kernel_attr.empty() && kernel_attr != kernel)
    fail(ErrorCode::InvalidArgument, "kernel_shape ", dims_str(kernel_attr), " does not match W ", shape_str(w));
  for (int64_t k : kernel)
    if (k <= 0) fail(ErrorCode::InvalidArgument, "W ", shape_str(w), " has an empty kernel");
  return kernel;
}

std::vector<int64_t> read_kernel_shape(const ir::Node& node, int64_t rank) {
  std::vector<int64_t> k = node.attr_ints("kernel_shape");
  if (rank >= 0 && int64_t(k.size()) != rank)
    fail(ErrorCode::InvalidArgument, "kernel_shape ", dims_str(k), " has ", k.size(), " values, expected ", rank,
         " (one per spatial dimension)");
  for (int64_t v : k)
    if (v <= 0) fail(ErrorCode::InvalidArgument, "kernel_shape values must be positive, got ", dims_str(k));
  return k;
}

Window read_window(const ir::Node& node, std::vector<int64_t> kernel) {
  Window w;
  const size_t r = kernel.size();
  w.kernel = std::move(kernel);
  w.auto_pad = parse_auto_pad(node);
  w.strides = node.attr_ints("strides", std::vector<int64_t>(r, 1));
  w.dilations = node.attr_ints("dilations", std::vector<int64_t>(r, 1));
  std::vector<int64_t> pads = node.attr_ints("pads", std::vector<int64_t>(2 * r, 0));
  if (w.strides.size() != r)
    fail(ErrorCode::InvalidArgument, "strides ", dims_str(w.strides), " must have ", r, " values");
  if (w.dilations.size() != r)
    fail(ErrorCode::InvalidArgument, "dilations ", dims_str(w.dilations), " must have ", r, " values");
  if (pads.size() != 2 * r)
    fail(ErrorCode::InvalidArgument, "pads ", dims_str(pads), " must have ", 2 * r, " values (begins, then ends)");
  for (size_t d = 0; d < r; ++d) {
    if (w.strides[d] <= 0) fail(ErrorCode::InvalidArgument, "strides must be positive, got ", dims_str(w.strides));
    if (w.dilations[d] <= 0)
      fail(ErrorCode::InvalidArgument, "dilations must be positive, got ", dims_str(w.dilations));
    if (pads[d] < 0 || pads[d + r] < 0) fail(ErrorCode::InvalidArgument, "pads must not be negative, got ", dims_str(pads));
  }
  w.pads_begin.assign(pads.begin(), pads.begin() + long(r));
  w.pads_end.assign(pads.begin() + long(r), pads.end());
  return w;
}

Shape window_output(const Shape& in, Window& w, bool ceil_mode) {
  Shape out(w.rank());
  for (size_t d = 0; d < w.rank(); ++d) {
    const int64_t ek = w.extent(d), s = w.strides[d];
    switch (w.auto_pad) {
      case AutoPad::SameUpper:
      case AutoPad::SameLower: {
        out[d] = (in[d] + s - 1) / s;
        const int64_t total = std::max<int64_t>(0, (out[d] - 1) * s + ek - in[d]);
        const int64_t small = total / 2;
        w.pads_begin[d] = w.auto_pad == AutoPad::SameUpper ? small : total - small;
        w.pads_end[d] = total - w.pads_begin[d];
        continue;
      }
      case AutoPad::Valid: w.pads_begin[d] = w.pads_end[d] = 0; break;
      case AutoPad::NotSet: break;
    }
    const int64_t span = in[d] + w.pads_begin[d] + w.pads_end[d] - ek;
    if (span < 0)
      fail(ErrorCode::InvalidArgument, "spatial dimension ", d, " of size ", in[d], " with pads ", w.pads_begin[d], "+",
           w.pads_end[d], " is smaller than the kernel extent ", ek, " (kernel ", w.kernel[d], ", dilation ",
           w.dilations[d], ")");
    if (ceil_mode && w.auto_pad == AutoPad::NotSet) {
      out[d] = (span + s - 1) / s + 1;
      if ((out[d] - 1) * s >= in[d] + w.pads_begin[d]) --out[d];
    } else {
      out[d] = span / s + 1;
    }
  }
  return out;
}

}  // namespace kiln::nn
