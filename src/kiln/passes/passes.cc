#include "kiln/passes/passes.h"

namespace kiln {

void optimize_graph(ir::Model& model, OptLevel level) {
  if (level == OptLevel::Disabled) return;
  fold_constants(model.graph);
  remove_dead_code(model.graph);
  if (level >= OptLevel::Extended) {
    fuse_convolutions(model.graph);
    fuse_matmuls(model.graph);
  }
  if (level >= OptLevel::All) choose_conv_layouts(model.graph);
}

}  // namespace kiln
