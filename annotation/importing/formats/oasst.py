"""``oasst``: OpenAssistant ``message_tree`` JSONL (one tree a line)."""
from __future__ import annotations

from collections.abc import Iterator

from annotation.importing.formats.lines import guarded, json_objects
from annotation.importing.formats.records import (
    ParseContext,
    Record,
    RecordError,
    ResponseIn,
    check_text,
    checked_external_id,
    checked_model_name,
)


def _oasst_records(obj: dict, line: int, ctx: ParseContext) -> list[Record]:
    """Walk one message tree. Every prompter message with two or more assistant replies that have
    a non-null ``rank`` becomes one record: the prompt is the path from the root to that message,
    the responses are the ranked replies (in file order), the ranking groups them by ``rank``
    ascending (0 = best; equal ranks tie). Unranked replies (``rank`` null) are left out: they were
    never compared with the others, so putting them in the item would invent a judgment. Deleted
    messages are left out too."""
    root = obj.get("prompt")
    if not isinstance(root, dict) or "replies" not in root:
        raise RecordError("oasst trees need a prompt message with replies (message_tree JSONL)")
    tree_id = obj.get("message_tree_id") or root.get("message_id") or ""
    records: list[Record] = []
    # Iterative walk: (message, path of messages before it)
    stack: list[tuple[dict, list[dict]]] = [(root, [])]
    while stack:
        message, path = stack.pop()
        if not isinstance(message, dict):
            raise RecordError("a message in the tree is not an object")
        role, text = message.get("role"), message.get("text")
        if role not in ("prompter", "assistant") or not isinstance(text, str):
            raise RecordError(f"message {message.get('message_id')!r} needs role prompter/assistant and text")
        here = [*path, {"role": "user" if role == "prompter" else "assistant", "content": check_text(text, "message")}]
        replies = [r for r in (message.get("replies") or []) if isinstance(r, dict) and not r.get("deleted")]
        if role == "prompter":
            ranked = [r for r in replies if r.get("role") == "assistant" and r.get("rank") is not None]
            if len(ranked) >= 2:
                for r in ranked:
                    if isinstance(r["rank"], bool) or not isinstance(r["rank"], int):
                        raise RecordError(f"reply {r.get('message_id')!r} has a non-integer rank {r['rank']!r}")
                    if not isinstance(r.get("text"), str) or not r["text"].strip():
                        raise RecordError(f"reply {r.get('message_id')!r} has no text")
                ranks = sorted({r["rank"] for r in ranked})
                groups = [[i for i, r in enumerate(ranked) if r["rank"] == rank] for rank in ranks]
                message_id = checked_external_id(message.get("message_id"))
                records.append(
                    Record(
                        line=line,
                        prompt=here,
                        responses=[
                            ResponseIn(
                                text=check_text(r["text"], "reply"),
                                model=checked_model_name(r.get("model_name"), i),
                                metadata={"oasst_message_id": r.get("message_id"), "rank": r["rank"]},
                            )
                            for i, r in enumerate(ranked)
                        ],
                        external_id=message_id,
                        metadata={"oasst": {"message_tree_id": tree_id, "message_id": message_id,
                                            "lang": message.get("lang")}},
                        ranking=groups,
                        source_detail="oasst",
                    )
                )
        for reply in reversed(replies):
            stack.append((reply, here))
    # Depth-first, replies pushed in reverse: records come out in document (pre-)order.
    return records


def parse_oasst(lines, ctx: ParseContext) -> Iterator[Record]:
    return guarded(json_objects(lines, ctx), _oasst_records, ctx)
