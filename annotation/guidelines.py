"""A project's guidelines (Markdown written by researchers) as safe HTML: one renderer for every page.

The project page and the workbench show the same guidelines, so they render them with the same
Markdown extensions and the same nh3 allow-list. The allow-list is the one the project page used:
it covers everything Python-Markdown's ``extra`` produces (tables, fenced code, definition lists,
abbreviations, footnotes), where the workbench's narrower list silently flattened definition lists
and dropped ``<abbr>``/``<kbd>``/``<sup>``. Both lists already dropped everything executable.
"""
from __future__ import annotations

import re
from functools import lru_cache

import markdown
import nh3
from django.utils.safestring import SafeString, mark_safe

# What guidelines may use: text structure, links, tables, code. No images (tracking pixels), no
# forms, no styles, no scripts, no event handlers: nh3 drops every attribute not listed here.
ALLOWED_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt", "em",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "kbd", "li", "ol", "p", "pre", "s", "span",
    "strong", "sub", "summary", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul",
})
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "abbr": {"title"}, "td": {"align"}, "th": {"align"}}
URL_SCHEMES = frozenset({"http", "https", "mailto"})  # javascript:, data:, vbscript: are dropped
# Guidelines sit under the page's own H1 and a "Guidelines" H2, so their headings start at H3: a page
# has one H1, and screen-reader users navigating by heading level find the guidelines inside their
# section. "# Rules" renders as <h3>; deeper levels shift with it, down to H6.
HEADING_SHIFT = 2
_HEADING = re.compile(r"<(/?)h([1-6])\b")


def _shift_headings(html: str) -> str:
    return _HEADING.sub(lambda m: f"<{m[1]}h{min(6, int(m[2]) + HEADING_SHIFT)}", html)


@lru_cache(maxsize=64)
def _render(text: str) -> str:
    html = markdown.markdown(text, extensions=["extra", "sane_lists"], output_format="html")
    # nh3 (ammonia) drops every tag, attribute and URL scheme not listed, so raw HTML in the
    # source goes through the same allow-list: no <script>, no event handlers, no javascript: links.
    return _shift_headings(nh3.clean(
        html, tags=set(ALLOWED_TAGS), attributes=ALLOWED_ATTRIBUTES, url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer nofollow",
    ))


def guidelines_html(text: str | None) -> SafeString:
    """Markdown → sanitised HTML, safe to put in a page as it is (cached per text: the workbench
    renders the same guidelines on every item)."""
    return mark_safe(_render(text or ""))
