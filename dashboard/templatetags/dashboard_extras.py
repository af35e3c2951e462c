"""Small formatting filters for the dashboard's templates."""

import math
import re
from datetime import timedelta

from django import template
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@register.filter
def money(amount: float | None) -> str:
    """Dollars with cents; a running staging's first minutes cost "under a cent", not $0.00."""
    if amount is None:
        return ""
    if 0 < amount < 0.01:
        return "<$0.01"
    return f"${amount:,.2f}"


def _seconds(value: timedelta | float | None) -> float | None:
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


@register.filter
def duration(value: timedelta | float | None) -> str:
    seconds = _seconds(value)
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


@register.filter
def time_left(value: timedelta | float | None) -> str:
    """A rough remaining time: the estimate is a median, so no false precision."""
    seconds = _seconds(value)
    if seconds is None:
        return ""
    if seconds < 45:
        return "less than a minute"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"about {minutes} min"
    return f"about {seconds / 3600:.1f} h"


# Where a branch name may break across lines: after the separators people put between words.
_AFTER_SEPARATOR = re.compile(r"(?<=[/_.-])(?=.)")


@register.filter(needs_autoescape=True)
def break_at_separators(text: str, autoescape: bool = True) -> SafeString:
    """``text`` escaped, with a <wbr> after each ``/``, ``-``, ``_`` and ``.``: a narrow column
    then wraps `feature/search-page` between its words, never inside one."""
    escape = conditional_escape if autoescape else str
    return mark_safe("<wbr>".join(escape(part) for part in _AFTER_SEPARATOR.split(str(text))))


@register.filter
def expires_in(seconds_left: float | None) -> str:
    """A staging's countdown: coarse far off, to the minute near the end, and never "in 0
    min" (minutes round up) before the check has destroyed it."""
    if seconds_left is None:
        return ""
    if seconds_left <= 0:
        return "expired: destroying soon"
    if seconds_left < 60:
        return "expires in under a minute"
    minutes = math.ceil(seconds_left / 60)
    if minutes < 60:
        return f"expires in {minutes} min"
    if minutes < 3 * 60:
        hours, minutes = divmod(minutes, 60)
        return f"expires in {hours} h {minutes:02d} min" if minutes else f"expires in {hours} h"
    hours = round(seconds_left / 3600)
    if hours < 48:
        return f"expires in {hours} h"
    days, hours = divmod(hours, 24)
    return f"expires in {days} d {hours} h" if hours else f"expires in {days} d"


@register.filter
def hours(value: float | None) -> str:
    """A number of hours as set (24, 0.5), without trailing zeros."""
    return "" if value is None else f"{value:g} h"


@register.filter
def rough_duration(value: timedelta | float | None) -> str:
    """A duration as people say it ("40 s", "3 min", "1.5 h"): beside a median, seconds of a
    long wait mean nothing."""
    seconds = _seconds(value)
    if seconds is None:
        return ""
    if seconds < 90:
        return f"{round(seconds)} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


@register.simple_tag
def unread_notifications(user) -> int:
    """The nav's count: one indexed query per full page (the polled partials do not ask)."""
    from provisioning.notifications import unread_count

    return unread_count(user) if user.is_authenticated else 0
