// Complex FFT of any length in double precision, shared by DFT and STFT: iterative radix-2 for
// powers of two, Bluestein's chirp-z through a power-of-two FFT for other lengths (O(n log n)
// for every n, so prime lengths cost no more than the next power of two). Unscaled in both
// directions: the inverse transform's 1/n is the caller's.
#pragma once

#include <complex>
#include <cstdint>
#include <numbers>
#include <vector>

#include "kiln/core/error.h"

namespace kiln::signal {

using cplx = std::complex<double>;

class Fft {
 public:
  Fft() = default;
  Fft(int64_t n, bool inverse) : n_(n), inverse_(inverse) {
    if (n <= 0) return;
    if ((n & (n - 1)) == 0) {
      init_pow2(n);
      return;
    }
    // Bluestein: X_k = c_k * sum_j (x_j c_j) conj(c_{k-j}), with c_k = exp(-+ i pi k^2 / n).
    int64_t m = 1;
    while (m < 2 * n - 1) m <<= 1;
    init_pow2(m);
    chirp_.resize(size_t(n));
    const double sign = inverse ? 1.0 : -1.0;
    for (int64_t k = 0; k < n; ++k) {
      const int64_t k2 = int64_t((__int128(k) * k) % (2 * n));  // exact angle reduction
      chirp_[size_t(k)] = std::polar(1.0, sign * std::numbers::pi * double(k2) / double(n));
    }
    filter_.assign(size_t(m), cplx(0));
    filter_[0] = std::conj(chirp_[0]);
    for (int64_t k = 1; k < n; ++k) filter_[size_t(k)] = filter_[size_t(m - k)] = std::conj(chirp_[size_t(k)]);
    pow2(filter_.data(), false);
  }

  int64_t size() const { return n_; }
  // Size of the scratch run() needs.
  size_t scratch_size() const { return chirp_.empty() ? 0 : filter_.size(); }

  // Transforms data[0..n) in place; `scratch` holds scratch_size() values.
  void run(cplx* data, cplx* scratch) const {
    if (n_ <= 1) return;
    if (chirp_.empty()) {
      pow2(data, inverse_);
      return;
    }
    const size_t m = filter_.size();
    for (size_t k = 0; k < m; ++k) scratch[k] = k < size_t(n_) ? data[k] * chirp_[k] : cplx(0);
    pow2(scratch, false);
    for (size_t k = 0; k < m; ++k) scratch[k] *= filter_[k];
    pow2(scratch, true);
    const double inv_m = 1.0 / double(m);
    for (size_t k = 0; k < size_t(n_); ++k) data[k] = scratch[k] * chirp_[k] * inv_m;
  }

 private:
  void init_pow2(int64_t m) {
    m_ = m;
    twiddle_.resize(size_t(m / 2));
    for (int64_t k = 0; k < m / 2; ++k)
      twiddle_[size_t(k)] = std::polar(1.0, -2.0 * std::numbers::pi * double(k) / double(m));
  }

  // In-place radix-2 transform of length m_ (forward: exp(-i..), inverse: exp(+i..)).
  void pow2(cplx* a, bool inverse) const {
    const int64_t m = m_;
    for (int64_t i = 1, j = 0; i < m; ++i) {
      int64_t bit = m >> 1;
      for (; j & bit; bit >>= 1) j ^= bit;
      j ^= bit;
      if (i < j) std::swap(a[i], a[j]);
    }
    for (int64_t len = 2; len <= m; len <<= 1) {
      const int64_t half = len / 2, step = m / len;
      for (int64_t s = 0; s < m; s += len) {
        for (int64_t k = 0; k < half; ++k) {
          const cplx w = inverse ? std::conj(twiddle_[size_t(k * step)]) : twiddle_[size_t(k * step)];
          const cplx u = a[s + k], v = a[s + k + half] * w;
          a[s + k] = u + v;
          a[s + k + half] = u - v;
        }
      }
    }
  }

  int64_t n_ = 0, m_ = 1;
  bool inverse_ = false;
  std::vector<cplx> twiddle_;  // exp(-2 pi i k / m_), k < m_/2
  std::vector<cplx> chirp_;    // Bluestein only
  std::vector<cplx> filter_;   // Bluestein only: FFT of the conjugate chirp
};

}  // namespace kiln::signal
