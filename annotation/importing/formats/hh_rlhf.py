"""``hh-rlhf``: Anthropic HH-RLHF ``{"chosen", "rejected"}`` transcripts."""
from __future__ import annotations

import re
from collections.abc import Iterator

from annotation.importing.formats.lines import guarded, json_objects
from annotation.importing.formats.records import ParseContext, Record, RecordError, ResponseIn, check_text

# The role marker and the one joining space after it; the turn's text is kept as written (leading or
# trailing spaces included), so the standard export rebuilds the source transcript exactly.
_HH_TURN = re.compile(r"\n\n(Human|Assistant): ?")
_HH_ASSISTANT = "\n\nAssistant:"


def hh_split(chosen: str, rejected: str) -> tuple[list[dict], str, str]:
    """Split an HH-RLHF pair into (prompt messages, chosen reply, rejected reply).

    The prompt is the longest shared prefix of the two transcripts cut back to its last
    ``"\\n\\nAssistant:"`` (a few transcripts have an extra ``Assistant:`` inside one reply, so the
    last marker of ``chosen`` alone is not always shared); the replies are what follows. Texts are
    kept verbatim but for the one joining space after each ``Human:`` / ``Assistant:`` marker, so
    ``annotation.prompts.prompt_hh_transcript(messages) + hh_completion(reply)`` is the source transcript.
    """
    limit = min(len(chosen), len(rejected))
    k = 0
    # Compare in blocks first: transcripts share long prefixes.
    step = 256
    while k + step <= limit and chosen[k : k + step] == rejected[k : k + step]:
        k += step
    while k < limit and chosen[k] == rejected[k]:
        k += 1
    # The last marker lying entirely inside the shared prefix.
    cut = chosen.rfind(_HH_ASSISTANT, 0, k)
    if cut < 0:
        raise RecordError("chosen and rejected share no conversation up to an Assistant turn")
    end = cut + len(_HH_ASSISTANT)
    prefix = chosen[:cut]
    parts = _HH_TURN.split(prefix)
    # parts: [text before first marker, role, text, role, text, ...]
    if parts[0].strip():
        raise RecordError('transcript must start with "\\n\\nHuman: "')
    messages = []
    for role, text in zip(parts[1::2], parts[2::2]):
        messages.append({"role": "user" if role == "Human" else "assistant", "content": text})
    if not messages or not any(m["role"] == "user" for m in messages):
        raise RecordError("the conversation has no Human turn before the last Assistant turn")
    return messages, _reply(chosen[end:]), _reply(rejected[end:])


def _reply(tail: str) -> str:
    """The final turn after its ``Assistant:`` marker, less the one joining space."""
    return tail[1:] if tail.startswith(" ") else tail


def _hh_record(obj: dict, line: int, ctx: ParseContext) -> Record:
    chosen, rejected = obj.get("chosen"), obj.get("rejected")
    if not isinstance(chosen, str) or not isinstance(rejected, str):
        raise RecordError("HH-RLHF rows need chosen and rejected transcripts (strings)")
    messages, good, bad = hh_split(chosen, rejected)
    for m in messages:
        check_text(m["content"], "prompt")
    # An empty final Assistant turn is kept as an empty response: it is what the model said
    # (4 pairs of the harmless-base test split have one), and the human still preferred one side.
    return Record(
        line=line,
        prompt=messages,
        responses=[ResponseIn(check_text(good, "chosen")), ResponseIn(check_text(bad, "rejected"))],
        # HH-RLHF has no strength: the human picked the better one, and no strength is invented.
        pair=(0, 1, "a", None),
        source_detail="hh-rlhf",
    )


def parse_hh_rlhf(lines, ctx: ParseContext) -> Iterator[Record]:
    return guarded(json_objects(lines, ctx), _hh_record, ctx)
