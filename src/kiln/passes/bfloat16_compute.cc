// Fast-math (session config "kiln.fast_math" = "1"): convolutions and matmuls with constant
// weights read their inputs and weights as bfloat16 and accumulate in fp32 on oneDNN (AMX
// tiles where the CPU has them, else AVX512-BF16); outputs stay fp32, so the rest of the graph
// is unchanged. A machine without AVX-512 has no bfloat16 kernels in oneDNN: there the entry
// changes nothing and the session computes in fp32.
#include "kiln/ops/common/dnnl.h"
#include "kiln/passes/passes.h"

namespace kiln {

void use_bfloat16_compute(ir::Graph& g) {
  if (!dnnl_has_bf16()) return;
  for (auto& n : g.nodes) {
    const bool conv = n.domain.empty() && n.op_type == "Conv";
    const bool matmul = n.domain.empty() && n.op_type == "MatMul" && n.inputs.size() == 2 &&
                        g.initializers.count(n.inputs[1]) && g.initializers.at(n.inputs[1]).rank() == 2;
    if (!conv && !matmul) continue;
    ir::Attribute a;
    a.kind = ir::Attribute::Kind::Int;
    a.i = 1;
    n.attrs["kiln_bf16"] = a;
  }
}

}  // namespace kiln
