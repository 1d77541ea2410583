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
inline dnnl::memory wrap(const dnnl::memory::desc& d, const void* data) {
  return dnnl::memory(d, dnnl_engine(), const_cast<void*>(data));
}

}  // namespace kiln
