// What the optimizer needs to know of MatMul's engines (the kernel is matmul.cc).
#pragma once

#include <cstdint>

namespace kiln {

// Whether a [K, N] float weight runs on oneDNN's gemm-based matmul, with M a run-time dim and
// the weight plain, rather than on brgemm with it packed. Measured on this machine's AVX-512
// cores: gemm wins for narrow N once the weight outgrows the caches (128x768x768: 166 against
// 141 GFLOP/s; 128x3072x768: 156 against 137), brgemm for N of 2304 and more (even at M 128,
// ahead at M 197 and on two threads; 128x768x3072: 3-7% ahead) and for small weights. The one
// primitive then serves every M, so a new batch or sequence length creates nothing.
// Such a weight is read plain as [K, N]: gemm takes a transposed one 10-130% slower (197x768x768
// and 8x1280x1000), so the optimizer stores it that way round.
bool runs_on_gemm(int64_t k, int64_t n);

}  // namespace kiln
