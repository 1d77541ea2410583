// Shared by the sequence ops: positions with ONNX's negative-index rule.
#pragma once

#include "kiln/exec/kernel.h"

namespace kiln {

// A position in [-n, n) (or [-n, n] when `allow_end`), as an index in [0, n].
inline int64_t sequence_position(const Tensor& pos, int64_t n, bool allow_end) {
  if (pos.dtype() != DType::Int32 && pos.dtype() != DType::Int64)
    fail(ErrorCode::InvalidArgument, "position must be int32 or int64, got ", dtype_name(pos.dtype()));
  int64_t p = pos.to_int64s().at(0);
  int64_t hi = allow_end ? n : n - 1;
  if (p < -n || p > hi)
    fail(ErrorCode::InvalidArgument, "position ", p, " is out of range for a sequence of ", n, " tensors");
  return p < 0 ? p + n : p;
}

}  // namespace kiln
