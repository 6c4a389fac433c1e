"""An item's prompt, as stored and as shown: one place for the three shapes it takes.

An ``Item.prompt`` is stored as a list of chat messages ``[{"role", "content"}, ...]`` (the
importer writes that shape); older rows or hand-made ones may hold a bare string.

- :func:`prompt_messages`: the stored value → a clean message list (every page, API and export
  reads it through this);
- :func:`prompt_hh_transcript`: messages → the one string an export's "standard" style writes for
  every row, single- and multi-turn alike: an HH-RLHF transcript ending in the ``Assistant:`` cue
  (:func:`hh_completion` writes the reply that follows it, joining space first, so that
  prompt + completion is the whole transcript);
- :func:`prompt_role_lines`: the stored value → the plain text a juror reads (a single message is
  its text; a conversation is one ``Role: content`` line per message).

The last two differ on purpose: their outputs are part of exported files and of jury prompts, and
must not change. (``jury.judging.prompt_text`` is today a copy of :func:`prompt_role_lines`; the
jury switches to this one when its rework lands.)
"""
from __future__ import annotations

from typing import Any

_HH_ROLES = {"user": "Human", "assistant": "Assistant", "system": "System"}


def prompt_messages(prompt: Any) -> list[dict[str, str]]:
    """The stored prompt as ``[{"role", "content"}]`` with string values.

    >>> prompt_messages("Hi")
    [{'role': 'user', 'content': 'Hi'}]
    >>> prompt_messages([{"role": "system", "content": 1}, "bare"])
    [{'role': 'system', 'content': '1'}, {'role': 'user', 'content': 'bare'}]
    """
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [
        {"role": str(m.get("role", "user")), "content": str(m.get("content", ""))}
        if isinstance(m, dict)
        else {"role": "user", "content": str(m)}
        for m in prompt or []
    ]


HH_JOIN = " "  # what separates the ``Assistant:`` cue from the reply in an HH-RLHF transcript


def prompt_hh_transcript(messages: list[dict[str, str]]) -> str:
    """The standard (string) prompt of an export, one form for every row: the HH-RLHF transcript
    (``\\n\\nHuman: ...\\n\\nAssistant: ...``) of the messages, ending with the ``\\n\\nAssistant:``
    cue and no space (the joining space belongs to the completion, :func:`hh_completion`, so the
    prompt ends on a token boundary and prompt + completion rebuilds the transcript).

    >>> prompt_hh_transcript([{"role": "user", "content": "Hi"}])
    '\\n\\nHuman: Hi\\n\\nAssistant:'
    >>> prompt_hh_transcript([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    '\\n\\nSystem: Be brief.\\n\\nHuman: Hi\\n\\nAssistant:'
    """
    turns = "".join(f"\n\n{_HH_ROLES.get(m['role'], m['role'].title())}: {m['content']}" for m in messages)
    return turns + "\n\nAssistant:"


def hh_completion(text: str) -> str:
    """The standard (string) completion of an export: the reply with the transcript's joining space
    in front, so that ``prompt_hh_transcript(messages) + hh_completion(reply)`` is the HH-RLHF
    transcript ``...\\n\\nAssistant: reply`` (an empty reply gives ``...Assistant: ``, as HH-RLHF writes it).

    >>> prompt_hh_transcript([{"role": "user", "content": "Hi"}]) + hh_completion("Hello")
    '\\n\\nHuman: Hi\\n\\nAssistant: Hello'
    """
    return HH_JOIN + text


def prompt_role_lines(prompt: Any) -> str:
    """The stored prompt as the plain text a juror reads: a single message is its content; a
    conversation is one ``Role: content`` line per message.

    >>> prompt_role_lines([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}])
    'User: Hi\\nAssistant: Hello'
    """
    if isinstance(prompt, str):
        return prompt
    messages = [m for m in (prompt or []) if isinstance(m, dict)]
    if len(messages) == 1:
        return str(messages[0].get("content", ""))
    return "\n".join(f"{str(m.get('role', 'user')).capitalize()}: {m.get('content', '')}" for m in messages)
