"""PyOp classes used by tests/python/test_python_ops.py."""

import numpy as np

built = []      # (class name, constructor kwargs), one per instance
released = []   # class names of instances that were garbage collected


class Echo:
    """Returns the input and the input reversed along axis 0 (a non-contiguous view)."""

    def __init__(self, **kwargs):
        built.append(("Echo", kwargs))

    def compute(self, x):
        return x.copy(), x[::-1]


class Scale:
    def __init__(self, factor="1"):
        self.factor = np.float32(factor)
        built.append(("Scale", {"factor": factor}))

    def compute(self, x):
        return x * self.factor

    def twice(self, x):
        return x * self.factor * 2

    def __del__(self):
        released.append("Scale")


class AddIter:
    """acc + i, where i is the Loop's iteration count cast to float."""

    def compute(self, acc, i):
        return (acc + i).astype(np.float32)


class SoftClip:
    """The numpy twin of the PyTorch autograd function exported in the tests."""

    def __init__(self, limit):
        self.limit = np.float32(limit)

    def compute(self, x):
        return (np.tanh(x / self.limit) * self.limit).astype(np.float32)


class Broken:
    def __init__(self):
        raise ValueError("Broken cannot be built")

    def compute(self, x):
        return x


class Fails:
    def compute(self, x):
        if (x < 0).any():
            return helper_that_divides(x)
        return x


def helper_that_divides(x):
    return 1 // 0
