"""The task sizes Fargate accepts: one table for the engine's settings and the sandbox's rules.

From the AWS documentation "Fargate task CPU and memory" (Linux tasks). RegisterTaskDefinition
refuses any other pair for a Fargate task definition with a ClientException.
"""


def _steps(low: int, high: int, step: int) -> tuple[int, ...]:
    return tuple(range(low, high + 1, step))


# CPU units -> the memory sizes (MiB) allowed with them.
FARGATE_MEMORY_BY_CPU: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: _steps(1024, 4096, 1024),
    1024: _steps(2048, 8192, 1024),
    2048: _steps(4096, 16384, 1024),
    4096: _steps(8192, 30720, 1024),
    8192: _steps(16384, 61440, 4096),
    16384: _steps(32768, 122880, 8192),
}


def is_fargate_size(cpu: int, memory: int) -> bool:
    return memory in FARGATE_MEMORY_BY_CPU.get(cpu, ())


def _sizes_text(sizes: tuple[int, ...]) -> str:
    gaps = {b - a for a, b in zip(sizes, sizes[1:], strict=False)}
    if len(sizes) > 3 and len(gaps) == 1:
        return f"{sizes[0]}-{sizes[-1]} in steps of {gaps.pop()}"
    return ", ".join(map(str, sizes))


def memory_sizes_text(cpu: int) -> str:
    return _sizes_text(FARGATE_MEMORY_BY_CPU[cpu])


def describe_sizes() -> str:
    """Every valid pair, for a configuration error."""
    pairs = "; ".join(f"{cpu}: {memory_sizes_text(cpu)}" for cpu in FARGATE_MEMORY_BY_CPU)
    return f"Valid pairs (CPU units: MiB): {pairs}."
