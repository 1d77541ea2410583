// What the optimizer needs to know of MatMul's engines (the kernel is matmul.cc).
#pragma once

#include <cstdint>

namespace kiln {

// Whether a [K, N] float weight runs on oneDNN's gemm-based matmul, with M a run-time dim and
// the weight plain, rather than packed for Kiln's packed_gemm or oneDNN's brgemm: a megabyte
// and more with K over 1024 and N up to 1024 (BERT's 3072x768: gemm 4% ahead of packed_gemm,
// 128x3072x768 156 against brgemm's 137 GFLOP/s). With K up to 1024 packed_gemm, which fetches
// the weight's next panel while it computes, is ahead of both. The one primitive serves every
// M, so a new batch or sequence length creates nothing.
// Such a weight is read plain as [K, N]: gemm takes a transposed one 10-130% slower (197x768x768
// and 8x1280x1000), so the optimizer stores it that way round.
bool runs_on_gemm(int64_t k, int64_t n);

}  // namespace kiln
