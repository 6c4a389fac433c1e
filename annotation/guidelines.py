"""Markdown as safe HTML: a project's guidelines (written by researchers) and model text (prompts
and responses), one renderer family for every page.

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


# --- Model text --------------------------------------------------------------------------------------
# Prompts and responses are untrusted (they are what the jury and the annotators judge, harmful text
# included). The same Markdown + nh3 pipeline, stricter: raw HTML in the text is shown as text (the
# Markdown parser's HTML passes are switched off, so "<b>" reads "<b>", as a chat UI shows it), no
# images, no details/summary, links only to http(s) and with rel="noopener noreferrer nofollow".
# Single newlines stay line breaks (nl2br): much model text is plain text with line structure.
MODEL_TEXT_TAGS = ALLOWED_TAGS - {"details", "summary", "div", "span", "abbr", "dl", "dd", "dt"}
MODEL_TEXT_ATTRIBUTES = {"a": {"href", "title"}, "td": {"align"}, "th": {"align"}}
MODEL_TEXT_SCHEMES = frozenset({"http", "https"})
# Model text sits under a "Response A" H3 (or the item's H2): its own headings start at H4.
MODEL_TEXT_HEADING_SHIFT = 3
# Longer than this (characters or lines) and the workbench collapses it behind "show all".
LONG_CHARS = 1500
LONG_LINES = 24


def _markdown_without_html() -> markdown.Markdown:
    md = markdown.Markdown(extensions=["tables", "fenced_code", "sane_lists", "nl2br"], output_format="html")
    # Without these two passes raw HTML is not passed through: "<script>" becomes "&lt;script&gt;" text.
    md.preprocessors.deregister("html_block")
    md.inlinePatterns.deregister("html")
    return md


@lru_cache(maxsize=256)
def _render_model_text(text: str) -> str:
    html = _markdown_without_html().convert(text)
    html = _HEADING.sub(lambda m: f"<{m[1]}h{min(6, int(m[2]) + MODEL_TEXT_HEADING_SHIFT)}", html)
    return nh3.clean(
        html, tags=set(MODEL_TEXT_TAGS), attributes=MODEL_TEXT_ATTRIBUTES, url_schemes=set(MODEL_TEXT_SCHEMES),
        link_rel="noopener noreferrer nofollow",
    )


def model_text_html(text: str | None) -> SafeString:
    """A prompt's or a response's text (Markdown, untrusted) → sanitised HTML, safe as it is."""
    return mark_safe(_render_model_text(text or ""))


def is_long(text: str | None) -> bool:
    text = text or ""
    return len(text) > LONG_CHARS or text.count("\n") >= LONG_LINES
