"""What stagingbot says, as Slack messages (text and Block Kit blocks)."""

from ..models import DbMode, Staging, StagingStatus

# Button action ids: the interactions endpoint dispatches on them.
DESTROY = "destroy"
DESTROY_CONFIRMED = "destroy_confirmed"
DESTROY_CANCELLED = "destroy_cancelled"
# Link buttons: Slack reports their clicks too; nothing to do for them.
OPEN_PREFIX = "open"


def escape(text: str) -> str:
    """Slack's three control characters in text we did not write (a branch, an error)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def ephemeral(text: str, blocks: list[dict] | None = None, **extra) -> dict:
    body = {"response_type": "ephemeral", "text": text, **extra}
    if blocks:
        body["blocks"] = blocks
    return body


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _button(text: str, action_id: str, *, value: str = "", url: str = "",
            style: str = "") -> dict:
    button = {"type": "button", "action_id": action_id,
              "text": {"type": "plain_text", "text": text[:75]}}
    if value:
        button["value"] = value
    if url:
        button["url"] = url
    if style:
        button["style"] = style
    return button


def outcome_blocks(text: str, staging: Staging | None, dashboard_link: str) -> list[dict]:
    """The message in the channel when an operation ends: what happened, and buttons for
    what comes next (open it, its dashboard page, destroy it). There is no Extend button:
    stagings have no expiry to extend yet."""
    blocks = [_section(escape(text))]
    buttons = []
    if staging is not None and staging.is_live:
        if staging.url and staging.status == StagingStatus.READY:
            buttons.append(_button(f"Open {staging.name}", f"{OPEN_PREFIX}_staging",
                                   url=staging.url))
        if dashboard_link:
            buttons.append(_button("Dashboard page", f"{OPEN_PREFIX}_dashboard",
                                   url=dashboard_link))
        buttons.append(_button("Destroy", DESTROY, value=staging.name, style="danger"))
    elif dashboard_link:
        buttons.append(_button("Dashboard page", f"{OPEN_PREFIX}_dashboard", url=dashboard_link))
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    return blocks


def confirm_destroy(staging: Staging) -> dict:
    """Asked before a Destroy button does anything."""
    question = (f"Destroy *{staging.name}*? Everything it made in AWS is removed, its database "
                "too; this cannot be undone.")
    return ephemeral(f"Destroy {staging.name}?", [
        _section(question),
        {"type": "actions", "elements": [
            _button(f"Yes, destroy {staging.name}", DESTROY_CONFIRMED, value=staging.name,
                    style="danger"),
            _button("Cancel", DESTROY_CANCELLED, value=staging.name),
        ]},
    ], replace_original=False)


def staging_line(staging: Staging) -> str:
    url = f" <{staging.url}|{staging.url}>" if staging.url else ""
    return (f"• *{staging.name}* ({staging.status}) `{escape(staging.branch)}`, "
            f"{staging.owner.get_username()}{url}")


def staging_details(staging: Staging, dashboard_link: str) -> str:
    lines = [f"*{staging.name}*: {staging.status}",
             f"Branch `{escape(staging.branch)}`"
             + (f", image `{escape(staging.image_tag)}`" if staging.image_tag else ""),
             f"Database: {staging.db_mode}"
             + (f", restored from {staging.source}" if staging.db_mode == DbMode.DEDICATED else ""),
             f"Owner: {staging.owner.get_username()}"]
    if staging.url:
        lines.append(f"URL: {staging.url}")
    if staging.login_username:
        where = f" at {staging.login_url}" if staging.login_url else ""
        lines.append(f"Log in{where} as `{escape(staging.login_username)}`; the password is "
                     "on its dashboard page.")
    if staging.error:
        lines.append(f"Error: {escape(staging.error)}")
    if dashboard_link:
        lines.append(f"Dashboard: {dashboard_link}")
    return "\n".join(lines)
