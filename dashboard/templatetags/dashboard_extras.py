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


@register.simple_tag
def unread_notifications(user) -> int:
    """The nav's count: one indexed query per full page (the polled partials do not ask)."""
    from provisioning.notifications import unread_count

    return unread_count(user) if user.is_authenticated else 0
