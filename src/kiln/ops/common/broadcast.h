// Numpy-style broadcasting: the output shape of several inputs, and a row-wise walk over the
// output in which each input advances by its own stride (0 along a broadcast dimension).
#pragma once

#include <vector>

#include "kiln/core/parallel.h"
#include "kiln/core/tensor.h"

namespace kiln {

// Throws with both shapes when they cannot broadcast.
Shape broadcast_shapes(const std::vector<Shape>& shapes);

struct BroadcastWalk {
  std::vector<int64_t> dims;                  // output dims, adjacent compatible dims merged
  std::vector<std::vector<int64_t>> strides;  // per input, per merged dim (elements)
  int64_t inner() const { return dims.empty() ? 1 : dims.back(); }
  int64_t rows() const;
  // Element offset of each input at the start of output row `row`.
  void row_offsets(int64_t row, int64_t* offsets) const;
};

// Channels-last operands (kiln_nhwc, set by the layout pass): a logical [N, C, H, W] shape,
// right-aligned to rank 4, in the [N, H, W, C] order its bytes are stored in. An operand of
// lower rank must read the same in both orders (its last two dims of size 1); `input` names it
// in the error (-1: the output).
Shape nhwc_storage_shape(const Shape& logical, int input);

BroadcastWalk make_broadcast_walk(const Shape& out, const std::vector<Shape>& inputs);

// Calls fn(row, offsets) for every output row, in parallel over rows. Offsets advance like an
// odometer, so rows cost no divisions after the first of each chunk.
template <typename Fn>
void for_each_broadcast_row(const BroadcastWalk& walk, Fn&& fn) {
  const int64_t rows = walk.rows();
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, walk.inner()));
  parallel_for(rows, grain, [&](int64_t begin, int64_t end) {
    const size_t k = walk.strides.size();
    const size_t outer = walk.dims.size() - 1;  // dims before the inner one
    std::vector<int64_t> offsets(k), index(outer);
    walk.row_offsets(begin, offsets.data());
    for (size_t d = outer, rem = size_t(begin); d-- > 0;) {
      index[d] = int64_t(rem % size_t(walk.dims[d]));
      rem /= size_t(walk.dims[d]);
    }
    for (int64_t r = begin; r < end; ++r) {
      fn(r, offsets.data());
      for (size_t d = outer; d-- > 0;) {
        if (++index[d] < walk.dims[d]) {
          for (size_t j = 0; j < k; ++j) offsets[j] += walk.strides[j][d];
          break;
        }
        index[d] = 0;
        for (size_t j = 0; j < k; ++j) offsets[j] -= (walk.dims[d] - 1) * walk.strides[j][d];
      }
    }
  });
}

}  // namespace kiln
