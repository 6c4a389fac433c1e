"""Split groups: items that share a conversation or a prompt go to the same split.

Splitting item by item leaks: two oasst items of one message tree share their opening turns, and
HH-RLHF has the same first Human turn (and even the same whole prompt) in several pairs. A model
validated on such a split has seen its validation prompts in training. So an export splits by
*group*: the connected components of the links

- **oasst tree**: items from one OpenAssistant message tree (``metadata.oasst.message_tree_id``);
- **first turn**: items whose conversation opens with the same message (role and exact text);
- **exact prompt**: items with the same prompt (every message, exactly).

Any chain of links joins items into one group (the union of the three relations). A group is named
by its smallest item id, and the split of a group is the seeded hash of that id (``pipeline``):
an item with no link is a group of its own and keeps the split it had when splitting by item.

Groups are computed over all of the project's items, not only the exported ones, so a filter does
not change which split an item lands in. Memory: a few small integers per item that shares a link
(keys are 64-bit hashes of the texts, never the texts); PostgreSQL returns only those items.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable

import orjson
from django.db import connection

from annotation.models import Item
from annotation.prompts import prompt_messages

GROUPING_TEXT = (
    "items that share an oasst message tree, a first conversation turn (same role and exact text) or an exact "
    "prompt are one group (connected components of these links, over all of the project's items); a group's "
    "split is the sha256 of the seed and the group's smallest item id, so no group crosses a split"
)


def _key(kind: bytes, payload: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(kind + payload, digest_size=8).digest(), "big")


def link_keys(prompt, tree_id: str | None) -> list[int]:
    """The keys that link an item to others (equal key, same group)."""
    messages = prompt_messages(prompt)
    keys = [_key(b"prompt\0", orjson.dumps(messages))]
    if messages:
        first = messages[0]
        keys.append(_key(b"first\0", orjson.dumps([first["role"], first["content"]])))
    if tree_id:
        keys.append(_key(b"tree\0", str(tree_id).encode()))
    return keys


def components(rows: Iterable[tuple[int, list[int]]]) -> dict[int, int]:
    """item id -> its group's smallest item id, from ``(item id, link keys)`` rows (union-find)."""
    parent: dict[int, int] = {}
    owner: dict[int, int] = {}  # link key -> an item holding it

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    for item_id, keys in rows:
        parent.setdefault(item_id, item_id)
        for key in keys:
            other = owner.setdefault(key, item_id)
            if other == item_id:
                continue
            a, b = find(item_id), find(other)
            if a != b:
                if a < b:
                    parent[b] = a
                else:
                    parent[a] = b
    return {item_id: find(item_id) for item_id in parent}


def split_groups(project) -> dict[int, int]:
    """item id -> group id (the smallest item id of its group) for the project's items that share a
    link with another item; an item not in the result is a group of its own.

    PostgreSQL finds the shared keys in the database (64-bit hashes of the canonical jsonb; only items with a
    key held by two or more items come back), so an export of a million unrelated items keeps its
    memory flat; other databases hash in Python (the same groups: a test compares the two).
    """
    if connection.vendor == "postgresql":
        return _split_groups_postgres(project)
    rows = (
        Item.objects.filter(project=project).order_by("id")
        .values_list("id", "prompt", "metadata__oasst__message_tree_id").iterator(chunk_size=2000)
    )
    return groups_in_python(rows)


def groups_in_python(rows: Iterable[tuple[int, object, str | None]]) -> dict[int, int]:
    """``split_groups`` from ``(item id, stored prompt, oasst tree id)`` rows, hashed here."""
    return _shared_only(components((item_id, link_keys(prompt, tree_id)) for item_id, prompt, tree_id in rows))


def _shared_only(groups: dict[int, int]) -> dict[int, int]:
    sizes: dict[int, int] = {}
    for root in groups.values():
        sizes[root] = sizes.get(root, 0) + 1
    return {item_id: root for item_id, root in groups.items() if sizes[root] > 1}


def _split_groups_postgres(project) -> dict[int, int]:
    table = Item._meta.db_table
    sql = f"""
        WITH k AS (
          SELECT id,
                 hashtextextended(prompt::text, 0) AS p,
                 hashtextextended(CASE WHEN jsonb_typeof(prompt) = 'array' THEN (prompt->0)::text ELSE prompt::text END, 0) AS f,
                 metadata->'oasst'->>'message_tree_id' AS t
            FROM {table} WHERE project_id = %s
        )
        SELECT id, p, f, t FROM k
         WHERE p IN (SELECT p FROM k GROUP BY p HAVING count(*) > 1)
            OR f IN (SELECT f FROM k GROUP BY f HAVING count(*) > 1)
            OR t IN (SELECT t FROM k WHERE t IS NOT NULL AND t <> '' GROUP BY t HAVING count(*) > 1)
         ORDER BY id
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [project.pk])
        rows = cursor.fetchall()
    return _shared_only(components(
        (item_id, [_key(b"prompt\0", str(p).encode()), *([_key(b"first\0", str(f).encode())] if f is not None else []),
                   *([_key(b"tree\0", t.encode())] if t else [])])
        for item_id, p, f, t in rows
    ))


