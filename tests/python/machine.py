"""What the test machine's CPU has, where Kiln's choices depend on it."""


def _flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


# Kiln's own convolution kernels (stem, pointwise, the fused expansion) and
# oneDNN's bfloat16 kernels need AVX-512; without it those layers run on oneDNN in fp32.
HAS_AVX512 = "avx512f" in _flags()
