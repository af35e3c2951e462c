"""The sandbox's clock: what its lifecycles measure time with (a restore's end, a task's stop,
how long a deleted rule stays listed).

It is time.monotonic() (never set back, unlike the wall clock), shifted so that it goes on
across a restart: a sandbox restored from its saved state (persistence.py) resumes the clock
where the saved one stopped, plus the wall-clock time it was away (what AWS did meanwhile
is done: a restore started before the stop is available after it). A fresh sandbox starts
with no shift.
"""

import time

_shift = {"seconds": 0.0}


def now() -> float:
    return time.monotonic() + _shift["seconds"]


def reading() -> dict[str, float]:
    """What a saved state keeps to resume the clock from."""
    return {"clock": now(), "wall": time.time()}


def resume(saved: dict[str, float]) -> None:
    """Go on from a saved ``reading()``: its clock plus the wall-clock time since (none if the
    wall clock went back)."""
    away = max(time.time() - saved["wall"], 0.0)
    _shift["seconds"] = saved["clock"] + away - time.monotonic()
