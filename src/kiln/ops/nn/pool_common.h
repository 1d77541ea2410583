// MaxPool, AveragePool and LpPool over 1-D to 3-D (and higher) windows: kernel_shape, strides,
// pads, auto_pad, dilations, ceil_mode; MaxPool's optional Indices with storage_order,
// AveragePool's count_include_pad, LpPool's p. float32 runs on oneDNN's pooling where its
// semantics match; Indices, dilated averages, Lp and other types take a reference loop.
#pragma once

#include "kiln/exec/kernel.h"
#include "kiln/ops/common/dnnl.h"
#include "kiln/ops/nn/window.h"

namespace kiln::nn {

enum class PoolKind { Max, Average, Lp };

class PoolKernel : public Kernel {
 public:
  PoolKernel(const ir::Node& node, PoolKind kind);
  void prepare(OpContext& ctx) override;
  void compute(OpContext& ctx) override;

 private:
  bool dnnl_applies(DType t, bool indices) const;
  void prepare_dnnl(const Shape& x_shape, const Shape& y_shape, DType t);
  void max_nhwc(const float* x, float* y, int64_t images, int64_t channels) const;
  template <typename T>
  void max_reference(const T* x, T* y, int64_t* indices) const;
  template <typename T>
  void average_reference(const T* x, T* y) const;
  template <typename T>
  void lp_reference(const T* x, T* y) const;

  PoolKind kind_;
  std::vector<int64_t> kernel_;
  bool ceil_mode_, count_include_pad_, column_major_;
  bool nhwc_;  // kiln_nhwc (layout pass): X and Y are stored channels-last
  bool max_nhwc_ = false;  // float max pooling of channels-last data: Kiln's own loop
  double p_;
  Window win_;
  Shape in_, out_;
  int64_t planes_ = 0;
  bool use_dnnl_ = false;
  dnnl::pooling_v2_forward prim_;
  dnnl::memory::desc src_md_, dst_md_;
};

}  // namespace kiln::nn
