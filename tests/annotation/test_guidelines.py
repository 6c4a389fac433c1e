"""annotation.guidelines: one Markdown renderer and allow-list for every page that shows guidelines."""
from __future__ import annotations

import pytest

from annotation.guidelines import guidelines_html
from annotation.models import Project
from tests.annotation.workbench_fixtures import make_items


def test_markdown_is_rendered():
    assert str(guidelines_html("# Rules\n\nBe **careful**.")) == "<h3>Rules</h3>\n<p>Be <strong>careful</strong>.</p>"


def test_tables_and_fenced_code_are_kept():
    html = str(guidelines_html("| a | b |\n|---|---|\n| 1 | 2 |\n\n```\ncode\n```"))
    assert "<table>" in html and "<td>1</td>" in html and "<pre><code>code\n</code></pre>" in html


def test_definition_lists_abbreviations_and_kbd_survive():
    html = str(guidelines_html("Unsafe\n:   harmful to someone\n\nPress <kbd>S</kbd>.\n\n*[HTML]: HyperText\n\nHTML"))
    assert "<dl>\n<dt>Unsafe</dt>\n<dd>harmful to someone</dd>\n</dl>" in html
    assert "<kbd>S</kbd>" in html and '<abbr title="HyperText">HTML</abbr>' in html


def test_nothing_executable_survives():
    html = str(guidelines_html(
        "<script>alert(1)</script>\n\n[x](javascript:alert(2)) <img src=x onerror=alert(3)>"
        ' <a href="https://example.org" onclick="alert(4)" style="color:red">ok</a>'
    ))
    assert "<script" not in html and "alert(1)" not in html and "javascript:" not in html
    assert "<img" not in html and "onerror" not in html and "onclick" not in html and "style" not in html
    assert '<a href="https://example.org" rel="noopener noreferrer nofollow">ok</a>' in html


def test_no_guidelines_is_empty():
    assert str(guidelines_html(None)) == "" and str(guidelines_html("")) == ""


def test_project_page_and_workbench_render_the_guidelines_alike(client, project, annotator, tmp_path):
    # given guidelines with a definition list (the workbench used to flatten it)
    make_items(project, tmp_path, 1)
    text = "# Rules\n\nUnsafe\n:   harmful to someone\n\nPress <kbd>U</kbd>."
    Project.objects.filter(pk=project.pk).update(guidelines=text)
    client.force_login(annotator)
    # when
    page = client.get("/projects/demo/").content.decode()
    bench = client.get("/annotate/demo/").content.decode()
    # then: both pages carry the one rendering
    rendered = str(guidelines_html(text))
    assert "<dd>harmful to someone</dd>" in rendered
    assert rendered in page and rendered in bench


def test_guideline_headings_sit_below_the_page_headings():
    html = str(guidelines_html("# A\n\n## B\n\n### C\n\n#### D\n\n###### F"))
    assert html == "<h3>A</h3>\n<h4>B</h4>\n<h5>C</h5>\n<h6>D</h6>\n<h6>F</h6>"


@pytest.mark.django_db
def test_project_page_has_one_h1_whatever_the_guidelines(login, project):
    project.guidelines = "# Rules\n\n# More rules"
    project.save(update_fields=["guidelines"])
    html = login("annotator").get(f"/projects/{project.slug}/").content.decode()
    assert html.count("<h1") == 1
