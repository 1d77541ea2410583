// Sliding-window geometry shared by Conv, ConvTranspose and the pooling ops: the attributes
// (kernel_shape, strides, dilations, pads, auto_pad) and the output size they give.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kiln/core/tensor.h"
#include "kiln/ir/graph.h"

namespace kiln::nn {

enum class AutoPad { NotSet, SameUpper, SameLower, Valid };

AutoPad parse_auto_pad(const ir::Node& node);

// Per spatial dimension. `dilations` are ONNX's (1 = dense); oneDNN wants dilations - 1.
struct Window {
  std::vector<int64_t> kernel, strides, dilations, pads_begin, pads_end;
  AutoPad auto_pad = AutoPad::NotSet;

  size_t rank() const { return kernel.size(); }
  int64_t extent(size_t d) const { return (kernel[d] - 1) * dilations[d] + 1; }
  // A 1x1... window, stride 1, unpadded: each output pixel reads its input pixel alone.
  bool is_pointwise() const {
    for (size_t d = 0; d < rank(); ++d)
      if (kernel[d] != 1 || strides[d] != 1 || pads_begin[d] != 0 || pads_end[d] != 0) return false;
    return true;
  }
  // Kernel = stride, dense, unpadded: the windows tile the input (a patch embedding's patches).
  bool tiles_input() const {
    for (size_t d = 0; d < rank(); ++d)
      if (strides[d] != kernel[d] || dilations[d] != 1 || pads_begin[d] != 0 || pads_end[d] != 0) return false;
    return true;
  }
};

// Reads strides, dilations, pads and auto_pad from `node` for `rank` spatial dimensions,
// checking their lengths and signs; kernel_shape comes from the caller (attribute or W).
Window read_window(const ir::Node& node, std::vector<int64_t> kernel);

// The spatial kernel of a convolution's W [., ., k...], after checking that X is [N, C, D...]
// with W of its rank, that W matches the kernel_shape attribute (when given) and that no
// kernel dim is empty. Conv, ConvTranspose and the integer convolutions share it.
std::vector<int64_t> conv_kernel(const Shape& x, const Shape& w, const std::vector<int64_t>& kernel_attr);

// The kernel_shape attribute, checked against `rank` when rank >= 0.
std::vector<int64_t> read_kernel_shape(const ir::Node& node, int64_t rank);

// Output spatial sizes of a convolution or pooling over `in` (spatial dims only). Resolves
// SAME_*/VALID into explicit pads (written back into `w`). With ceil_mode the last window may
// run past the end but never starts inside the end padding (PyTorch's and ONNX's rule).
Shape window_output(const Shape& in, Window& w, bool ceil_mode = false);

// "[1,2,3]" for attribute lists in messages.
std::string dims_str(const std::vector<int64_t>& v);

// ONNX's floor division for possibly negative numerators (ConvTranspose's total padding).
inline int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

// Ceiling of a / b for b > 0 and any sign of a (the first tap inside the input, blocks of 16).
inline int64_t ceil_div(int64_t a, int64_t b) { return a <= 0 ? -(-a / b) : (a + b - 1) / b; }

}  // namespace kiln::nn
