#include "kiln/passes/passes.h"

namespace kiln {

void optimize_graph(ir::Model& model, const SessionConfig& config) {
  const OptLevel level = config.optimization;
  auto fast = config.entries.find("kiln.fast_math");
  if (fast != config.entries.end() && fast->second == "1") use_bfloat16_compute(model.graph);
  if (level == OptLevel::Disabled) return;
  fold_shape_computations(model.graph);
  fold_constants(model.graph);
  remove_dead_code(model.graph);
  if (level >= OptLevel::Extended) {
    split_concat_convolutions(model.graph);
    fuse_convolutions(model.graph);
    fuse_transformer_ops(model.graph);
  }
  if (level >= OptLevel::All) {
    choose_conv_layouts(model.graph);
    fold_squeeze_excite(model.graph);
    fuse_expand_depthwise(model.graph);
    fuse_stem_pools(model.graph);
    fuse_matmul_chains(model.graph);
  }
}

}  // namespace kiln
