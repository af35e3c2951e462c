"""The slash command's words: ``/staging create feature/x --shared-db`` and the rest.

Split like a shell (quotes keep a word whole) and parsed with argparse, so options, their
values and a word too many are handled the way every command line does. A problem is one
sentence; an unknown word gets the help.
"""

import argparse
import shlex
from dataclasses import dataclass, field

HELP = """*stagingbot* makes and removes dynamic stagings. Type `/staging` and one of:
• `create BRANCH [--source DB] [--shared-db] [--name NAME] [--ttl HOURS]`: a staging running
  BRANCH, destroyed after HOURS (default: the dashboard's) unless extended
• `list [mine]`: the live stagings (or only yours)
• `show NAME`: one staging: status, URL, how to log in
• `redeploy NAME [--tag TAG]`: deploy the newest image of its branch (or TAG)
• `destroy NAME`: remove it and everything it made in AWS
• `extend NAME [HOURS]`: it expires HOURS from now (default: the dashboard's TTL)
• `sleep NAME`, `wake NAME`: not available yet
• `help`: this text"""

# Words the bot knows but the engine cannot do yet: answered honestly, nothing is asked.
NOT_AVAILABLE = {
    "sleep": "Putting a staging to sleep is not available yet.",
    "wake": "Waking a staging is not available yet: no staging can be asleep so far.",
}


class CommandProblem(Exception):
    """The text is not a command we can run: ``message`` is one sentence (or the help)."""

    def __init__(self, message: str, *, show_help: bool = False):
        super().__init__(message)
        self.message = message
        self.show_help = show_help


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing and exiting."""

    def error(self, message: str):
        raise CommandProblem(_sentence(message))

    def exit(self, status=0, message=None):
        raise CommandProblem(_sentence(message or "That command is not complete."))


def _sentence(message: str) -> str:
    message = message.strip()
    message = message[:1].upper() + message[1:]
    return message if message.endswith(".") else f"{message}."


def _hours(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number of hours") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("the hours must be more than 0")
    return value


def _mine(raw: str) -> str:
    if raw != "mine":
        raise argparse.ArgumentTypeError(f"list takes only the word mine, not {raw!r}")
    return raw


def _parser() -> _Parser:
    parser = _Parser(prog="/staging", add_help=False)
    verbs = parser.add_subparsers(dest="verb", parser_class=_Parser)
    create = verbs.add_parser("create", add_help=False)
    create.add_argument("branch")
    create.add_argument("--source")
    create.add_argument("--shared-db", action="store_true")
    create.add_argument("--name")
    create.add_argument("--ttl", type=_hours)
    listing = verbs.add_parser("list", add_help=False)
    listing.add_argument("whose", nargs="?", type=_mine)
    for verb in ("show", "destroy", "sleep", "wake"):
        verbs.add_parser(verb, add_help=False).add_argument("name")
    redeploy = verbs.add_parser("redeploy", add_help=False)
    redeploy.add_argument("name")
    redeploy.add_argument("--tag")
    extend = verbs.add_parser("extend", add_help=False)
    extend.add_argument("name")
    extend.add_argument("hours", nargs="?", type=_hours)
    verbs.add_parser("help", add_help=False)
    return parser


KNOWN_VERBS = ("create", "list", "show", "redeploy", "destroy", "extend", "sleep", "wake", "help")


@dataclass(frozen=True)
class Command:
    verb: str
    options: dict = field(default_factory=dict)

    @property
    def not_available(self) -> str:
        """The sentence for what the engine cannot do yet, or ""."""
        return NOT_AVAILABLE.get(self.verb, "")


def parse(text: str) -> Command:
    """The command in ``text``; CommandProblem with one sentence, or the help for an unknown
    or missing word."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise CommandProblem(f"I could not read that: {exc} (quotes must be closed).") from None
    if not words or words[0] not in KNOWN_VERBS:
        raise CommandProblem(HELP, show_help=True)
    options = vars(_parser().parse_args(words))
    return Command(options.pop("verb"), options)
