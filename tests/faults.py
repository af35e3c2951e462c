"""What tests inject at our AWS wrappers (the module functions of provisioning/aws/): a failure
or a worker's death at a chosen call, and a database that is still restoring."""

import inspect
import threading
from collections.abc import Callable
from dataclasses import replace
from unittest import mock

from provisioning import runner
from provisioning.aws import ecr, ecs, elbv2, rds, secretsmanager, tagging
from provisioning.aws.base import AwsError

WRAPPER_MODULES = (ecr, ecs, elbv2, rds, secretsmanager, tagging)


def aws_wrappers() -> dict[str, tuple[object, str]]:
    """Every function of our AWS modules that calls AWS, as ``module.function``."""
    found = {}
    for module in WRAPPER_MODULES:
        short = module.__name__.rsplit(".", 1)[-1]
        for name, function in vars(module).items():
            if (inspect.isfunction(function) and function.__module__ == module.__name__
                    and not name.startswith("_") and "client(" in inspect.getsource(function)):
                found[f"{short}.{name}"] = (module, name)
    return found


class WorkerKilled(BaseException):
    """Stands for the worker process dying in the middle of a step."""


class Watch:
    """Wraps every AWS wrapper: records (wrapper, step) of each call during an operation, and
    makes ``fail`` raise on its first call (AwsError, or ``crash`` for a BaseException)."""

    def __init__(self, monkeypatch, fail: str | None = None, crash: bool = False):
        self.calls: list[tuple[str, str | None]] = []
        self.fail, self.crash = fail, crash
        self.injected_in: str | None = None
        self._lock = threading.Lock()
        self._current = threading.local()
        real_run_step = runner._run_step

        def tracking_run_step(spec, context):
            self._current.step = spec.key
            try:
                return real_run_step(spec, context)
            finally:
                self._current.step = None

        monkeypatch.setattr(runner, "_run_step", tracking_run_step)
        for qualified, (module, name) in aws_wrappers().items():
            monkeypatch.setattr(module, name, self._wrap(qualified, getattr(module, name)))

    def _wrap(self, qualified: str, real: Callable) -> Callable:
        def watched(*args, **kwargs):
            step = getattr(self._current, "step", None)
            with self._lock:
                self.calls.append((qualified, step))
                first = qualified == self.fail and self.injected_in is None
                if first:
                    self.injected_in = step or "(outside a step)"
            if first:
                if self.crash:
                    raise WorkerKilled(qualified)
                raise AwsError(qualified, "AccessDenied", "injected")
            return real(*args, **kwargs)

        return watched

    def functions(self) -> list[str]:
        return list(dict.fromkeys(name for name, _ in self.calls))


def restoring_for(looks: int):
    """rds.describe_instance, with the staging's database still restoring for ``looks`` looks."""
    real = rds.describe_instance
    seen = {"looks": 0}

    def describe(*, instance_id):
        found = real(instance_id=instance_id)
        if found and instance_id.startswith("ds-") and seen["looks"] < looks:
            seen["looks"] += 1
            return replace(found, status="creating")
        return found

    return mock.patch("provisioning.aws.rds.describe_instance", side_effect=describe)
