// Reads an ONNX model file into ONNX's ModelProto with protobuf's own parser, from a read-only
// mapping of the file, keeping the file's pages from piling up beside the parsed weights.
#pragma once

#include <onnx/onnx_pb.h>

#include <string>

namespace kiln {

// Parses the file at `path` into `mp`. Fails (NoSuchFile, InvalidProtobuf) with a message naming
// the file if it is missing, a directory, over protobuf's 2 GB limit or not a ModelProto.
void parse_model_file(const std::string& path, onnx::ModelProto& mp);

}  // namespace kiln
