#include "kiln/core/error.h"

namespace kiln {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::Fail: return "Fail";
    case ErrorCode::InvalidArgument: return "InvalidArgument";
    case ErrorCode::NoSuchFile: return "NoSuchFile";
    case ErrorCode::NoModel: return "NoModel";
    case ErrorCode::InvalidGraph: return "InvalidGraph";
    case ErrorCode::NotImplemented: return "NotImplemented";
    case ErrorCode::RuntimeException: return "RuntimeException";
    case ErrorCode::InvalidProtobuf: return "InvalidProtobuf";
    case ErrorCode::EngineError: return "EngineError";
  }
  return "Fail";
}

}  // namespace kiln
