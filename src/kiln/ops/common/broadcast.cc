#include "kiln/ops/common/broadcast.h"

#include <sstream>

namespace kiln {

Shape broadcast_shapes(const std::vector<Shape>& shapes) {
  size_t rank = 0;
  for (const auto& s : shapes) rank = std::max(rank, s.size());
  Shape out(rank, 1);
  for (const auto& s : shapes) {
    for (size_t i = 0; i < s.size(); ++i) {
      int64_t& o = out[rank - s.size() + i];
      int64_t d = s[i];
      if (d == o || d == 1) continue;
      if (o == 1) {
        o = d;
        continue;
      }
      std::ostringstream os;
      for (size_t k = 0; k < shapes.size(); ++k) os << (k ? " and " : "") << shape_str(shapes[k]);
      fail(ErrorCode::InvalidArgument, "shapes ", os.str(), " cannot be broadcast together");
    }
  }
  return out;
}

Shape nhwc_storage_shape(const Shape& logical, int input) {
  if (logical.size() > 4) fail(ErrorCode::InvalidGraph, "kiln_nhwc: input ", input, " ", shape_str(logical), " is not 4-D");
  Shape s(4 - logical.size(), 1);
  s.insert(s.end(), logical.begin(), logical.end());
  if (logical.size() < 4 && s[2] * s[3] != 1)
    fail(ErrorCode::InvalidGraph, "kiln_nhwc: input ", input, " ", shape_str(logical),
         " is stored NCHW and is not [.., C, 1, 1]");
  return {s[0], s[2], s[3], s[1]};
}

int64_t BroadcastWalk::rows() const {
  int64_t r = 1;
  for (size_t i = 0; i + 1 < dims.size(); ++i) r *= dims[i];
  return r;
}

void BroadcastWalk::row_offsets(int64_t row, int64_t* offsets) const {
  const size_t n = strides.size();
  for (size_t k = 0; k < n; ++k) offsets[k] = 0;
  for (size_t i = dims.size() - 1; i-- > 0;) {
    int64_t c = row % dims[i];
    row /= dims[i];
    for (size_t k = 0; k < n; ++k) offsets[k] += c * strides[k][i];
  }
}

BroadcastWalk make_broadcast_walk(const Shape& out, const std::vector<Shape>& inputs) {
  const size_t rank = out.size();
  // Full-rank strides, 0 where an input is broadcast.
  std::vector<std::vector<int64_t>> full(inputs.size(), std::vector<int64_t>(rank, 0));
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Shape& s = inputs[k];
    int64_t stride = 1;
    for (size_t i = s.size(); i-- > 0;) {
      size_t o = rank - s.size() + i;
      full[k][o] = s[i] == 1 ? 0 : stride;
      stride *= s[i];
    }
  }
  BroadcastWalk w;
  for (size_t i = 0; i < rank; ++i) {
    if (out[i] == 1) continue;  // size-1 dims carry nothing
    bool merge = !w.dims.empty();
    for (size_t k = 0; k < inputs.size() && merge; ++k) {
      // Merge dim i into the previous kept dim when every input walks both contiguously.
      merge = full[k][i] * out[i] == w.strides[k].back() || (full[k][i] == 0 && w.strides[k].back() == 0);
    }
    if (merge) {
      w.dims.back() *= out[i];
      for (size_t k = 0; k < inputs.size(); ++k)
        if (full[k][i] != 0) w.strides[k].back() = full[k][i];
    } else {
      w.dims.push_back(out[i]);
      if (w.strides.empty()) w.strides.resize(inputs.size());
      for (size_t k = 0; k < inputs.size(); ++k) w.strides[k].push_back(full[k][i]);
    }
  }
  if (w.dims.empty()) {
    w.dims.push_back(1);
    w.strides.assign(inputs.size(), std::vector<int64_t>{0});
  }
  if (w.strides.empty()) w.strides.assign(inputs.size(), std::vector<int64_t>(w.dims.size(), 0));
  return w;
}

}  // namespace kiln
