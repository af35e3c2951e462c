"""stagingbot: dynamic stagings from Slack (slash commands, buttons, and the end of what they
started told back in the conversation). The endpoints are dashboard/slack_views.py."""
