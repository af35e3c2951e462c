"""Small formatting filters for the dashboard's templates."""

from datetime import timedelta

from django import template

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
