// Plain loops for convolution and transposed convolution of any spatial rank: the path for
// element types oneDNN does not take (float64). Each output channel plane belongs to one
// thread; the innermost loop runs along the last spatial dimension.
#pragma once

#include <algorithm>
#include <vector>

#include "kiln/core/parallel.h"
#include "kiln/ops/nn/window.h"

namespace kiln::nn {

struct ConvGeometry {
  int64_t batch = 0, in_channels = 0, out_channels = 0, group = 1;
  Shape in, out;  // spatial sizes
  Window window;
};

namespace detail {

// Advances the multi-index `idx` over `dims` in row-major order; false after the last one.
inline bool next_index(std::vector<int64_t>& idx, const Shape& dims) {
  for (size_t d = idx.size(); d-- > 0;) {
    if (++idx[d] < dims[d]) return true;
    idx[d] = 0;
  }
  return false;
}

}  // namespace detail

// y[n, m] = sum over c in m's group and kernel offsets of x * w (no bias). W is [M, C/G, k...].
template <typename T>
void conv_reference(const ConvGeometry& g, const T* x, const T* w, T* y) {
  const Window& win = g.window;
  const size_t r = win.rank();
  const int64_t in_plane = shape_size(g.in), out_plane = shape_size(g.out), kvol = shape_size(win.kernel);
  const int64_t cg = g.in_channels / g.group, mg = g.out_channels / g.group;
  const int64_t out_last = g.out[r - 1], in_last = g.in[r - 1];
  const Shape out_rows(g.out.begin(), g.out.end() - 1), kdims = win.kernel;
  parallel_for(g.batch * g.out_channels, 1, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> k(r), o(r - 1);
    for (int64_t p = begin; p < end; ++p) {
      const int64_t n = p / g.out_channels, m = p % g.out_channels, grp = m / mg;
      T* yp = y + p * out_plane;
      std::fill(yp, yp + out_plane, T(0));
      for (int64_t c = 0; c < cg; ++c) {
        const T* xp = x + (n * g.in_channels + grp * cg + c) * in_plane;
        const T* wp = w + (m * cg + c) * kvol;
        std::fill(k.begin(), k.end(), 0);
        for (int64_t ki = 0; ki < kvol; ++ki, detail::next_index(k, kdims)) {
          const T wv = wp[ki];
          const int64_t shift = k[r - 1] * win.dilations[r - 1] - win.pads_begin[r - 1];
          const int64_t s = win.strides[r - 1];
          // Output positions along the last dimension whose input index lies inside.
          const int64_t lo = std::max<int64_t>(0, ceil_div(-shift, s));
          const int64_t hi = std::min<int64_t>(out_last, shift >= in_last ? 0 : (in_last - 1 - shift) / s + 1);
          std::fill(o.begin(), o.end(), 0);
          int64_t row = 0;
          do {
            int64_t off = 0;
            bool inside = true;
            for (size_t d = 0; d + 1 < r; ++d) {
              const int64_t i = o[d] * win.strides[d] - win.pads_begin[d] + k[d] * win.dilations[d];
              if (i < 0 || i >= g.in[d]) {
                inside = false;
                break;
              }
              off = off * g.in[d] + i;
            }
            if (inside) {
              const T* xr = xp + off * in_last + shift;
              T* yr = yp + row * out_last;
              for (int64_t j = lo; j < hi; ++j) yr[j] += wv * xr[j * s];
            }
            ++row;
          } while (detail::next_index(o, out_rows));
        }
      }
    }
  });
}

// The transpose: every input element scatters x * w into the output window it reaches.
// W is [C, M/G, k...]; pads_end only bounds the output, whose size is g.out.
template <typename T>
void conv_transpose_reference(const ConvGeometry& g, const T* x, const T* w, T* y) {
  const Window& win = g.window;
  const size_t r = win.rank();
  const int64_t in_plane = shape_size(g.in), out_plane = shape_size(g.out), kvol = shape_size(win.kernel);
  const int64_t cg = g.in_channels / g.group, mg = g.out_channels / g.group;
  const int64_t out_last = g.out[r - 1], in_last = g.in[r - 1];
  const Shape in_rows(g.in.begin(), g.in.end() - 1), kdims = win.kernel;
  parallel_for(g.batch * g.out_channels, 1, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> k(r), i(r - 1);
    for (int64_t p = begin; p < end; ++p) {
      const int64_t n = p / g.out_channels, m = p % g.out_channels, grp = m / mg, mi = m % mg;
      T* yp = y + p * out_plane;
      std::fill(yp, yp + out_plane, T(0));
      for (int64_t c = 0; c < cg; ++c) {
        const T* xp = x + (n * g.in_channels + grp * cg + c) * in_plane;
        const T* wp = w + ((grp * cg + c) * mg + mi) * kvol;
        std::fill(k.begin(), k.end(), 0);
        for (int64_t ki = 0; ki < kvol; ++ki, detail::next_index(k, kdims)) {
          const T wv = wp[ki];
          const int64_t shift = k[r - 1] * win.dilations[r - 1] - win.pads_begin[r - 1];
          const int64_t s = win.strides[r - 1];
          // Input positions along the last dimension whose output index lies inside.
          const int64_t lo = std::max<int64_t>(0, ceil_div(-shift, s));
          const int64_t hi = std::min<int64_t>(in_last, shift >= out_last ? 0 : (out_last - 1 - shift) / s + 1);
          std::fill(i.begin(), i.end(), 0);
          int64_t row = 0;
          do {
            int64_t off = 0;
            bool inside = true;
            for (size_t d = 0; d + 1 < r; ++d) {
              const int64_t oi = i[d] * win.strides[d] - win.pads_begin[d] + k[d] * win.dilations[d];
              if (oi < 0 || oi >= g.out[d]) {
                inside = false;
                break;
              }
              off = off * g.out[d] + oi;
            }
            if (inside) {
              const T* xr = xp + row * in_last;
              T* yr = yp + off * out_last + shift;
              for (int64_t j = lo; j < hi; ++j) yr[j * s] += wv * xr[j];
            }
            ++row;
          } while (detail::next_index(i, in_rows));
        }
      }
    }
  });
}

}  // namespace kiln::nn
