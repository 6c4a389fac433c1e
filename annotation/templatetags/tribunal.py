"""Template filters. They only format data the view already loaded (no queries here)."""
from __future__ import annotations

import markdown as md
import nh3
from django import template
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

# What guidelines may use: text structure, links, tables, code. No images (tracking pixels), no
# forms, no styles, no scripts, no event handlers: nh3 drops every attribute not listed here.
_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt", "em",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "kbd", "li", "ol", "p", "pre", "s", "span",
    "strong", "sub", "summary", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul",
}
_ATTRIBUTES = {"a": {"href", "title"}, "abbr": {"title"}, "td": {"align"}, "th": {"align"}}
_URL_SCHEMES = {"http", "https", "mailto"}  # javascript:, data:, vbscript: are dropped


@register.filter(is_safe=True)
def markdown_safe(text: str | None) -> SafeString:
    """Render Markdown, then sanitise the HTML with nh3 (an allow-list). Raw HTML in the source
    goes through the same allow-list, so `<script>` and `javascript:` links never survive."""
    html = md.markdown(text or "", extensions=["extra", "sane_lists"], output_format="html")
    clean = nh3.clean(
        html, tags=_TAGS, attributes=_ATTRIBUTES, url_schemes=_URL_SCHEMES, link_rel="noopener noreferrer nofollow"
    )
    return mark_safe(clean)  # noqa: S308 - sanitised by nh3 just above


@register.filter
def percent(value: float | None) -> str:
    """0.427 -> '43%'."""
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
