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


@register.inclusion_tag("_model_text.html")
def model_text(text: str | None, letter: str = "") -> dict:
    """Model text (a prompt message, a response) as sanitised Markdown; long text collapsed behind a
    "show all" that works without JavaScript (a <details> the stylesheet reads with :has())."""
    from annotation.guidelines import is_long, model_text_html

    return {"html": model_text_html(text), "long": is_long(text), "letter": letter}
