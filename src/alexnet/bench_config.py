"""The benchmarks' settings, importable without torch (the CLI builds its flags and defaults from them)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .choices import BENCH_MODES
from .errors import ConfigError


@dataclass(frozen=True)
class BenchConfig:
    """One ``bench_model`` run: which network, how it is timed, and our network's runtime settings.

    precision/channels_last/compile: "auto" or None take ``alexnet.runtime``'s defaults for the device.
    model_switches: ``build_model`` switches (lrn=False, towers=1, ...); the input size and classes are fields here.
    """

    mode: str = "train"                  # one of BENCH_MODES
    arch: str = "paper"
    batch_size: int = 128
    input_size: int = 224
    steps: int = 5                       # timed steps (the median is reported)
    warmup: int = 2                      # untimed steps first
    device: str = "auto"
    precision: str = "auto"
    channels_last: bool | None = None
    compile: bool | None = None
    reference: bool = True               # also time torchvision's AlexNet
    num_classes: int = 1000
    memory: bool = True                  # measure peak memory after the timing
    peak: bool = True                    # measure the machine's peak FLOP/s and each network's fraction of it
    seed: int = 0
    model_switches: Mapping = field(default_factory=dict)

    def __post_init__(self):
        if self.mode not in BENCH_MODES:
            raise ConfigError(f"bench mode must be one of {', '.join(BENCH_MODES)}; got {self.mode!r}")
        if self.batch_size < 1 or self.steps < 1 or self.warmup < 0:
            raise ConfigError(f"bench: need batch_size >= 1, steps >= 1, warmup >= 0 "
                              f"(got {self.batch_size}, {self.steps}, {self.warmup})")
        clash = {"input_size", "num_classes"} & set(self.model_switches)
        if clash:
            raise ConfigError(f"bench: give {', '.join(sorted(clash))} as BenchConfig field(s), not model switches")


@dataclass(frozen=True)
class LRNBenchConfig:
    """Defaults of ``bench_lrn`` (our LRN against torch.nn.LocalResponseNorm)."""

    batch_size: int = 128                # maps per step
    steps: int = 5                       # timed steps (the median is reported)
    warmup: int = 1                      # untimed steps first
    device: str = "auto"


__all__ = ["BenchConfig", "LRNBenchConfig"]
