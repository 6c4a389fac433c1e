"""Template filters. They only format data the view already loaded (no queries here)."""
from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def percent(value: float | str | None) -> str:
    """0.427 -> '43%'; '' for None or for what is not a number."""
    if value is None:
        return ""
    try:
        return f"{float(value) * 100:.0f}%"
    except (TypeError, ValueError):
        return ""


@register.filter
def message_text(message) -> str:
    """The text of one chat message of a prompt (``{"role", "content"}``), whatever its shape."""
    if isinstance(message, dict):
        content = message.get("content", "")
        return content if isinstance(content, str) else str(content)
    return str(message)
