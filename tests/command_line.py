"""The ``ds`` command run in this process as a script runs it: the exit code and what it wrote
to stdout and stderr."""

from unittest import mock

from django.core.management import call_command


def ds(*args: str) -> tuple[int, str, str]:
    """Run ``ds`` like a script would; the exit code, stdout and stderr."""
    out, err = _Capture(), _Capture()
    with mock.patch("sys.stderr", err):
        try:
            call_command("ds", *args, stdout=out)
            code = 0
        except SystemExit as exit_:
            code = exit_.code
    return code, out.getvalue(), err.getvalue()


class _Capture:
    def __init__(self):
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def getvalue(self) -> str:
        return "".join(self.parts)
