"""Exception classes under the names ONNX Runtime uses, so ``except Fail`` code keeps working.

Every error Kiln's core raises is an instance of one of these; the message names the model,
the node (name and op type) or the input, and what was expected versus what came.
"""


class KilnError(RuntimeError):
    """Base of every error raised by Kiln's engine."""


class Fail(KilnError):
    pass


class InvalidArgument(KilnError):
    pass


class NoSuchFile(KilnError):
    pass


class NoModel(KilnError):
    pass


class InvalidGraph(KilnError):
    pass


class NotImplemented(KilnError):  # noqa: A001 - ONNX Runtime's name
    pass


class RuntimeException(KilnError):
    pass


class InvalidProtobuf(KilnError):
    pass


class EngineError(KilnError):
    pass


class ModelLoaded(KilnError):
    pass


class NotFound(KilnError):
    pass


class EPFail(KilnError):
    pass
