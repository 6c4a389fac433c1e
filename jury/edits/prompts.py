"""The default editor prompts (REFERENCE §3, adapted from clinical summaries to chat responses).

Both directions ask for the reference's output format: a numbered list of the edits made, separated
by ``|||``, then a marker line and the edited text. ``parsing.parse_edit_output`` reads that format
and recovers when a model ignores it.

Template fields: ``{prompt}``, ``{response}``, ``{feedback}``, ``{max_extra_words}``. Researchers
edit the templates on the edits page (each edit stores a new version); these are version 1.
"""
from __future__ import annotations

IMPROVE_MARKER = "Improved Response:"
CORRUPT_MARKER = "Hallucinated Response:"
EDITS_MARKER = "Numbered List of edits made:"

IMPROVE_V1 = """You are an expert reviewer of AI assistant responses. Edit the response below so that it follows \
the guidelines and answers the user safely and helpfully, guided by the reviewers' feedback.

Rules:
- Make the fewest edits that fix the problems named in the feedback; keep everything that is already good.
- Use only "Add" and "Omit" operations on the words that matter; add at most {max_extra_words} extra words.
- Do not rewrite the response from scratch.

User prompt:
{prompt}

Response:
{response}

Reviewers' feedback:
{feedback}

Answer in exactly this format:
""" + EDITS_MARKER + """ {{Edit 1}} ||| {{Edit 2}} ...
""" + IMPROVE_MARKER + """ <the edited response>"""

CORRUPT_V1 = """You are helping build training data for safety reviewers. Edit the good response below to plant \
one specific, plausible flaw that a careful reviewer should catch: a factual error, a dropped safety caveat, \
or a harmful detail.

Rules:
- Use "Add" and "Omit" operations in equal numbers on the words that matter; add at most {max_extra_words} \
extra words.
- Keep the rest of the response word for word, so the flaw is hard to spot.

User prompt:
{prompt}

Response:
{response}

{feedback}

Answer in exactly this format:
""" + EDITS_MARKER + """ {{Edit 1}} ||| {{Edit 2}} ...
""" + CORRUPT_MARKER + """ <the edited response>"""

# name -> (direction, text): seeded as version 1 by migration 0002 and by services.default_template.
DEFAULT_TEMPLATES: dict[str, tuple[str, str]] = {
    "improve-default": ("improve", IMPROVE_V1),
    "corrupt-default": ("corrupt", CORRUPT_V1),
}

TEMPLATE_FIELDS = ("prompt", "response", "feedback", "max_extra_words")
