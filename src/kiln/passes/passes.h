// Graph rewrites run at session creation, ordered by ONNX Runtime's optimization levels.
#pragma once

#include "kiln/exec/session.h"
#include "kiln/ir/graph.h"

namespace kiln {

// Runs the rewrites of config.optimization's level; the entry "kiln.fast_math" = "1" also
// lets convolutions and matmuls compute in bfloat16 (on AMX where the CPU has it).
void optimize_graph(ir::Model& model, const SessionConfig& config);

// Old-opset semantics as modern ops (upgrade_legacy.cc); the session runs it before looking up
// kernels, at every optimization level.
void upgrade_legacy_ops(ir::Graph& graph);
// ai.onnx.preview.training::Gradient as the nodes computing it (expand_gradient.cc); the session
// runs it before looking up kernels.
void expand_gradients(ir::Graph& graph);
void fold_shape_computations(ir::Graph& graph);
void fold_constants(ir::Graph& graph);
void remove_dead_code(ir::Graph& graph);
void split_concat_convolutions(ir::Graph& graph);
void fuse_convolutions(ir::Graph& graph);
void fuse_transformer_ops(ir::Graph& graph);
void choose_conv_layouts(ir::Graph& graph);
void fold_squeeze_excite(ir::Graph& graph);
void fuse_expand_depthwise(ir::Graph& graph);
void fuse_stem_pools(ir::Graph& graph);
void fuse_matmul_chains(ir::Graph& graph);
void use_bfloat16_compute(ir::Graph& graph);

}  // namespace kiln
