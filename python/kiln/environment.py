"""ONNX Runtime's process-wide functions: seeds, logging levels, build information, telemetry,
and shared allocators.

Kiln has no process-wide environment object: these functions check their arguments as ONNX
Runtime does and record what they set, so scripts written for ONNX Runtime keep working.
"""

from __future__ import annotations

import enum
from typing import Any, Dict, List, Optional, Tuple

from kiln import _C
from kiln.capi.onnxruntime_pybind11_state import InvalidArgument

# What the functions below have set, for inspection (Kiln's engine does not consult them).
settings: Dict[str, Any] = {"seed": None, "logger_severity": 2, "logger_verbosity": 0, "telemetry": False}
registered_allocators: List[Tuple["OrtMemoryInfo", Optional["OrtArenaCfg"]]] = []


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArgument(f"{what} must be an integer, got {value!r}")
    return value


def set_seed(seed: int) -> None:
    """Seeds the random operators (RandomNormal, RandomUniform, their *Like forms, Bernoulli,
    Multinomial) that have no `seed` attribute: the runs that follow draw reproducibly."""
    settings["seed"] = _int(seed, "seed")
    _C.set_seed(seed)


def set_default_logger_severity(severity: int) -> None:
    """0 verbose, 1 info, 2 warning, 3 error, 4 fatal."""
    if _int(severity, "severity") not in range(5):
        raise InvalidArgument(f"Invalid logging severity {severity}: 0:Verbose, 1:Info, 2:Warning, 3:Error, 4:Fatal")
    settings["logger_severity"] = severity


def set_default_logger_verbosity(verbosity: int) -> None:
    if _int(verbosity, "verbosity") < 0:
        raise InvalidArgument(f"logging verbosity must be >= 0, got {verbosity}")
    settings["logger_verbosity"] = verbosity


def get_build_info() -> str:
    return f"Kiln {_C.__version__}: CPU execution (oneDNN, OpenMP), ONNX Runtime Python API"


def has_collective_ops() -> bool:
    """Kiln has no collective (multi-process communication) operators."""
    return False


def enable_telemetry_events() -> None:
    """Kiln sends no telemetry; this does nothing."""


def disable_telemetry_events() -> None:
    """Kiln sends no telemetry; this does nothing."""


class OrtAllocatorType(enum.IntEnum):
    INVALID = -1
    ORT_DEVICE_ALLOCATOR = 0
    ORT_ARENA_ALLOCATOR = 1


class OrtMemType(enum.IntEnum):
    CPU_INPUT = -2
    CPU_OUTPUT = -1
    CPU = -1
    DEFAULT = 0


class OrtMemoryInfo:
    """Where an allocator's memory lives. Kiln has CPU memory only (name 'Cpu')."""

    def __init__(self, name: str, alloc_type: Any, device_id: int, mem_type: Any) -> None:
        if not isinstance(name, str) or name.lower() != "cpu":
            raise InvalidArgument(f"OrtMemoryInfo '{name}': Kiln has CPU memory only ('Cpu'); "
                                  "no other device's allocator is available")
        self.name = name
        self.alloc_type = OrtAllocatorType(int(alloc_type))
        self.device_id = _int(device_id, "device_id")
        self.mem_type = OrtMemType(int(mem_type))

    def __repr__(self) -> str:
        return (f"OrtMemoryInfo(name='{self.name}', alloc_type={self.alloc_type.name}, device_id={self.device_id}, "
                f"mem_type={self.mem_type.name})")


class OrtArenaCfg:
    """Arena settings: OrtArenaCfg(max_mem, arena_extend_strategy, initial_chunk_size_bytes,
    max_dead_bytes_per_chunk) or OrtArenaCfg({key: value}). Kiln plans each run's memory itself,
    so these are recorded only."""

    _KEYS = ("max_mem", "arena_extend_strategy", "initial_chunk_size_bytes", "max_dead_bytes_per_chunk",
             "initial_growth_chunk_size_bytes", "max_power_of_two_extend_bytes")

    def __init__(self, *args: Any) -> None:
        self.max_mem = 0
        self.arena_extend_strategy = -1
        self.initial_chunk_size_bytes = -1
        self.max_dead_bytes_per_chunk = -1
        self.initial_growth_chunk_size_bytes = -1
        self.max_power_of_two_extend_bytes = -1
        if len(args) == 1 and isinstance(args[0], dict):
            for key, value in args[0].items():
                if key not in self._KEYS:
                    raise InvalidArgument(f"OrtArenaCfg: unknown key '{key}'; known: {', '.join(self._KEYS)}")
                setattr(self, key, _int(value, key))
        elif len(args) == 4:
            for key, value in zip(self._KEYS, args):
                setattr(self, key, _int(value, key))
        elif args:
            raise InvalidArgument("OrtArenaCfg takes (max_mem, arena_extend_strategy, initial_chunk_size_bytes, "
                                  f"max_dead_bytes_per_chunk) or one dict, got {len(args)} arguments")


def create_and_register_allocator(mem_info: OrtMemoryInfo, arena_cfg: Optional[OrtArenaCfg]) -> None:
    """Records a shared CPU allocator; Kiln's sessions keep using their own planned memory."""
    if not isinstance(mem_info, OrtMemoryInfo):
        raise InvalidArgument(f"mem_info must be an OrtMemoryInfo, got {type(mem_info).__name__}")
    if arena_cfg is not None and not isinstance(arena_cfg, OrtArenaCfg):
        raise InvalidArgument(f"arena_cfg must be an OrtArenaCfg or None, got {type(arena_cfg).__name__}")
    registered_allocators.append((mem_info, arena_cfg))


def create_and_register_allocator_v2(provider_type: str, mem_info: OrtMemoryInfo, provider_options: Dict[str, str],
                                     arena_cfg: Optional[OrtArenaCfg]) -> None:
    if provider_type != "CPUExecutionProvider":
        raise InvalidArgument(f"create_and_register_allocator_v2: provider '{provider_type}' is not available; "
                              "Kiln has CPUExecutionProvider only")
    create_and_register_allocator(mem_info, arena_cfg)
