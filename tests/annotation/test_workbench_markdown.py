"""Issue 13 point 3: prompts and responses as sanitised Markdown (code in monospace, tables), long
text collapsed behind "show all", two or three responses side by side; everything untrusted stays
escaped, on the Markdown path too."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.test import Client
from django.urls import reverse

from annotation.guidelines import LONG_CHARS, guidelines_html, is_long, model_text_html
from tests.annotation.workbench_fixtures import make_items

MARKDOWN = (
    "Here is **the fix**, with `ls -la`:\n\n```python\nif a < b:\n    print('<b>x</b>')\n```\n\n"
    "| name | value |\n|---|---|\n| a | 1 |\n\n#### Notes\n\n- one\n- two"
)
PAYLOADS = [
    "<script>window.__xss=1</script>",
    '<img src=x onerror="window.__xss=1">',
    "[click me](javascript:window.__xss=1)",
    '<a href="javascript:window.__xss=1">link</a>',
    "![pixel](https://tracker.example/p.gif)",
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    '<div onmouseover="window.__xss=1">raw <b>html</b></div>',
    "<iframe src=\"javascript:alert(1)\"></iframe> <svg onload=\"window.__xss=1\"></svg>",
    "[ok](https://example.org/a?b=1 \"title\")",
]


def test_markdown_renders_code_tables_and_lists():
    html = model_text_html(MARKDOWN)
    assert "<strong>the fix</strong>" in html and "<code>ls -la</code>" in html
    # the fence keeps its text, escaped once (not "&amp;lt;")
    assert re.search(r"<pre><code[^>]*>if a &lt; b:\n    print\('&lt;b&gt;x&lt;/b&gt;'\)", html)
    assert "<table>" in html and "<th>name</th>" in html and "<td>1</td>" in html
    assert "<ul>" in html and "<li>one</li>" in html
    # headings sit under the page's H3 ("Response A"): "####" is not promoted, "#" becomes H4
    assert "<h6>Notes</h6>" in html and "<h4>Top</h4>" in model_text_html("# Top")
    # a single newline stays a line break (much model text is plain text with line structure)
    assert "line one<br>\nline two" in model_text_html("line one\nline two")


class _Markup(HTMLParser):
    """The elements and attributes a browser would build from the HTML (text, escaped or not, is not markup)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [(k, v or "") for k, v in attrs]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_untrusted_markdown_never_yields_markup_that_runs_or_loads(payload):
    parsed = _Markup()
    parsed.feed(model_text_html(payload))
    assert set(parsed.tags) <= {"p", "a", "br", "b", "strong", "em", "code"}, parsed.tags
    assert not {"script", "img", "iframe", "svg", "div"} & set(parsed.tags)
    for name, value in parsed.attrs:
        assert not name.startswith("on") and name in {"href", "rel", "title"}, (name, value)
        if name == "href":
            assert value.startswith("https://"), value


def test_raw_html_in_model_text_reads_as_text_and_links_carry_rel():
    html = model_text_html(PAYLOADS[0] + "\n\n" + PAYLOADS[6] + "\n\n" + PAYLOADS[8])
    # raw HTML is shown as the model wrote it, not interpreted (and not silently dropped)
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in html
    assert "&lt;b&gt;html&lt;/b&gt;" in html
    link = re.search(r"<a [^>]*>ok</a>", html)
    assert link and 'href="https://example.org/a?b=1"' in link[0]
    assert 'rel="noopener noreferrer nofollow"' in link[0]
    # stricter than guidelines: a mailto link or a <details> from a researcher is fine there, not here
    assert "href" not in model_text_html("[mail](mailto:x@example.org)")
    assert "<a href=\"mailto:x@example.org\"" in guidelines_html("[mail](mailto:x@example.org)")


def test_long_text_is_long_by_characters_or_lines():
    assert not is_long("short") and not is_long(None)
    assert is_long("x" * (LONG_CHARS + 1)) and is_long("line\n" * 30)


def _assert_inert(page: str) -> None:
    """No element of the page runs or loads anything but the site's own static scripts."""
    parsed = _Markup()
    parsed.feed(page)
    assert not {"img", "iframe", "svg", "object", "embed"} & set(parsed.tags)
    assert all(not k.startswith("on") for k, _v in parsed.attrs)
    assert all(not v.strip().lower().startswith(("javascript:", "data:")) for k, v in parsed.attrs if k in ("href", "src"))
    assert "window.__xss" not in "".join(v for k, v in parsed.attrs)
    assert "<script>" not in page  # every script of the page has a src (CSP: no inline scripts)


def _client(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


@pytest.mark.django_db
def test_the_workbench_shows_markdown_collapses_long_text_and_lays_out_columns(project, annotator, tmp_path):
    # given: an item whose prompt and three responses are Markdown, one of them long, and payloads
    long_text = "\n\n".join(f"Paragraph {i}: " + "words " * 20 for i in range(40))
    make_items(project, tmp_path, 1, prompt=MARKDOWN + "\n\n" + PAYLOADS[1],
               texts=[MARKDOWN, long_text, "\n\n".join(PAYLOADS)])
    # when
    html = _client(annotator).get(reverse("workbench", args=[project.slug])).content.decode()
    # then: rendered markdown in the prompt and the cards
    assert html.count("<th>name</th>") == 2 and html.count("<code>ls -la</code>") == 2
    # the long response is collapsed behind a "show all" that needs no script
    assert html.count('class="model-text is-long"') == 1
    assert re.search(r'<details class="show-all"><summary><span class="more">Show all of response [ABC]</span>', html)
    # three responses: the list says so, and the stylesheet lays them side by side from 1200 px
    assert 'id="responses" data-count="3"' in html
    # nothing executable came through
    _assert_inert(html)
    assert "&lt;img src=x onerror=" in html  # shown as the text it is


@pytest.mark.django_db
def test_the_adjudication_page_shows_the_same_markdown(project, researcher, annotator, tmp_path):
    from annotation.workbench import services as wb
    from tests.annotation.workbench_fixtures import full_judgment, make_annotators

    (item,) = make_items(project, tmp_path, 1, prompt=MARKDOWN, texts=[MARKDOWN, PAYLOADS[0], PAYLOADS[2]])
    for u in make_annotators(project, 2):
        a = wb.queue_next(project=project, annotator=u)
        wb.annotation_submit(project=project, annotator=u, item_id=a.item_id, judgment=full_judgment(project, a.shown_order))
    html = _client(researcher).get(reverse("adjudication-item", args=[project.slug, item.pk])).content.decode()
    assert html.count("<th>name</th>") == 2
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in html
    _assert_inert(html)
