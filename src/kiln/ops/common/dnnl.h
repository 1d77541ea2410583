// Shared oneDNN plumbing: one CPU engine for the process, a stream per calling thread (a run
// stays on one thread), and descriptor helpers.
#pragma once

#include <dnnl.hpp>

#include "kiln/core/tensor.h"

namespace kiln {

dnnl::engine& dnnl_engine();
dnnl::stream& dnnl_stream();

dnnl::memory::data_type dnnl_type(DType t);
inline dnnl::memory::dims dnnl_dims(const Shape& s) { return dnnl::memory::dims(s.begin(), s.end()); }
// Plain row-major strides for `s`.
dnnl::memory::desc plain_desc(const Shape& s, DType t);
// Keeps `packed` holding the constant `weight` (stored as `plain`) in the layout a primitive
// wants; reorders only when that layout changed. Empty `packed` when no reorder is needed or
// the weight is not constant.
void pack_weights(const Tensor* weight, const dnnl::memory::desc& plain, const dnnl::memory::desc& wanted,
                  dnnl::memory& packed);
inline dnnl::memory wrap(const dnnl::memory::desc& d, const void* data) {
  return dnnl::memory(d, dnnl_engine(), const_cast<void*>(data));
}

}  // namespace kiln
