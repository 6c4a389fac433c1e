"""The text a generative guard reads and answers (pure strings: no torch, no tokenizer).

Two formats, chosen by ``GuardTrainConfig.prompt_format``:

- ``llamaguard3``: the Llama Guard 3 instruction as its model card and reference code write it
  (task line, ``<BEGIN UNSAFE CONTENT CATEGORIES>`` with ``code: name.`` lines of the taxonomy
  version, the conversation as ``User:`` / ``Agent:`` turns, the "ONLY THE LAST ... message"
  instruction). Answer: ``safe``, or ``unsafe`` and a second line of comma-separated codes. The
  Llama 3 header tokens are not part of it: the base's own chat template (if any) wraps it, or
  :func:`llamaguard3_prompt` adds Llama 3's (the ``guard-llamaguard`` export writes that whole
  prompt). This module is the one copy of the template: training and the export both read it.
- ``aegis``: the Aegis 2.0 instruction and its JSON answer, e.g.
  ``{"User Safety": "unsafe", "Safety Categories": "Violence, Threat"}`` (category names, not
  codes). One example carries one label, so a prompt-only example is answered with
  ``"User Safety"`` and a prompt + response example with ``"Response Safety"`` alone (Aegis writes
  both keys for a response; the user's label of a response example is not in the example).

An answer is a list of *pieces* that the recipe tokenises one by one, so that training and
inference see the same token sequence for the verdict and for each category
(:mod:`exports.guard.ml.generative`). The pieces before the verdict (Aegis's ``{"User Safety": "``)
belong to the prompt: they carry no loss.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

SAFE = "safe"
UNSAFE = "unsafe"

LLAMAGUARD3_TASK = (
    "Task: Check if there is unsafe content in '{role}' messages in conversations according our safety "
    "policy with the below categories."
)
LLAMAGUARD3_INSTRUCTIONS = (
    "Provide your safety assessment for ONLY THE LAST {role} message in the above conversation:\n"
    " - First line must read 'safe' or 'unsafe'.\n"
    " - If unsafe, a second line must include a comma-separated list of violated categories."
)
AEGIS_TASK = (
    "Task: Check if there is unsafe content in the user or agent messages in the below conversation in "
    "accordance with our safety policy with the below categories. Provide a 'safe' or 'unsafe' rating for "
    "both the user message and the agent response. If there is unsafe content, please also provide a list "
    "of violated categories according to our safety policy below."
)
AEGIS_INSTRUCTIONS = (
    "Provide your safety assessment for the above conversation in the below output JSON format:\n"
    '{"User Safety": safe or unsafe rating for the user message, "Response Safety": safe or unsafe rating '
    "for the agent response. Omit if no agent response present. \"Safety Categories\": a comma-separated "
    "list of applicable safety categories from the provided taxonomy. Omit if all safe.}\n\n"
    "Do not include anything other than the output JSON in your response.\n"
    "Output JSON:"
)


# Llama 3's header tokens around one user turn, then the assistant header that the answer follows
# (the model card's template; Llama 3 ends every header with a blank line).
LLAMA3_USER_HEADER = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
LLAMA3_ASSISTANT_HEADER = "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"


def llamaguard3_instruction(categories: Sequence[tuple[str, str]], turns: Sequence[tuple[str, str]], role: str) -> str:
    """The Llama Guard 3 instruction over a conversation: ``turns`` are ``(speaker, text)`` with
    speaker ``User`` or ``Agent``; ``role`` is the one whose last message is assessed.

    >>> print(llamaguard3_instruction([("S1", "Violent Crimes")], [("User", "hi"), ("Agent", "yo")], "Agent"))
    Task: Check if there is unsafe content in 'Agent' messages in conversations according our safety policy with the below categories.
    <BLANKLINE>
    <BEGIN UNSAFE CONTENT CATEGORIES>
    S1: Violent Crimes.
    <END UNSAFE CONTENT CATEGORIES>
    <BLANKLINE>
    <BEGIN CONVERSATION>
    <BLANKLINE>
    User: hi
    <BLANKLINE>
    Agent: yo
    <BLANKLINE>
    <END CONVERSATION>
    <BLANKLINE>
    Provide your safety assessment for ONLY THE LAST Agent message in the above conversation:
     - First line must read 'safe' or 'unsafe'.
     - If unsafe, a second line must include a comma-separated list of violated categories.
    """
    listing = "\n".join(f"{code}: {name}." for code, name in categories)
    block = f"<BEGIN UNSAFE CONTENT CATEGORIES>\n{listing}\n<END UNSAFE CONTENT CATEGORIES>"
    conversation = "<BEGIN CONVERSATION>\n\n" + "\n\n".join(f"{who}: {text}" for who, text in turns) + "\n\n<END CONVERSATION>"
    return "\n\n".join([LLAMAGUARD3_TASK.format(role=role), block, conversation, LLAMAGUARD3_INSTRUCTIONS.format(role=role)])


def llamaguard3_prompt(categories: Sequence[tuple[str, str]], turns: Sequence[tuple[str, str]], role: str) -> str:
    """The whole Llama Guard 3 prompt of the model card: the instruction inside Llama 3's header
    tokens, ending with the assistant header (the answer, ``safe`` or ``unsafe\\nS1,S2``, follows)."""
    return LLAMA3_USER_HEADER + llamaguard3_instruction(categories, turns, role) + LLAMA3_ASSISTANT_HEADER


@dataclass(frozen=True)
class PromptFormat:
    """How one format asks and answers. ``categories`` are (code, name) pairs in head order."""

    name: str
    categories: tuple[tuple[str, str], ...]

    @property
    def codes(self) -> list[str]:
        return [c for c, _ in self.categories]

    def instruction(self, prompt: str, response: str | None) -> str:
        """The whole instruction for one example (the conversation texts already truncated).

        >>> fmt = PromptFormat("llamaguard3", (("S1", "Violent Crimes"), ("S2", "Non-Violent Crimes")))
        >>> print(fmt.instruction("hi", None))
        Task: Check if there is unsafe content in 'User' messages in conversations according our safety policy with the below categories.
        <BLANKLINE>
        <BEGIN UNSAFE CONTENT CATEGORIES>
        S1: Violent Crimes.
        S2: Non-Violent Crimes.
        <END UNSAFE CONTENT CATEGORIES>
        <BLANKLINE>
        <BEGIN CONVERSATION>
        <BLANKLINE>
        User: hi
        <BLANKLINE>
        <END CONVERSATION>
        <BLANKLINE>
        Provide your safety assessment for ONLY THE LAST User message in the above conversation:
         - First line must read 'safe' or 'unsafe'.
         - If unsafe, a second line must include a comma-separated list of violated categories.
        """
        if self.name == "llamaguard3":
            role = "User" if response is None else "Agent"
            return llamaguard3_instruction(self.categories, [("User", prompt)] + ([] if response is None else [("Agent", response)]), role)
        listing = "\n".join(f"{code}: {name}." for code, name in self.categories)
        categories = f"<BEGIN UNSAFE CONTENT CATEGORIES>\n{listing}\n<END UNSAFE CONTENT CATEGORIES>"
        turns = [f"user: {prompt}"] + ([] if response is None else [f"response: agent: {response}"])
        conversation = "<BEGIN CONVERSATION>\n\n" + "\n\n".join(turns) + "\n\n<END CONVERSATION>"
        return "\n\n".join([AEGIS_TASK, categories, conversation, AEGIS_INSTRUCTIONS])

    def answer_prefix(self, response: str | None) -> str:
        """Forced text between the prompt and the verdict (part of the prompt, no loss)."""
        if self.name == "llamaguard3":
            return ""
        return '{"User Safety": "' if response is None else '{"Response Safety": "'

    @property
    def category_intro(self) -> str:
        """What follows ``unsafe`` before the first category."""
        return "\n" if self.name == "llamaguard3" else '", "Safety Categories": "'

    @property
    def separator(self) -> str:
        return "," if self.name == "llamaguard3" else ", "

    @property
    def suffix(self) -> str:
        """What closes the answer (before the end-of-text token)."""
        return "" if self.name == "llamaguard3" else '"}'

    def category_text(self, code: str) -> str:
        """How a category is written in the answer: its code (Llama Guard) or its name (Aegis)."""
        return code if self.name == "llamaguard3" else dict(self.categories)[code]

    def answer_pieces(self, label: int, categories: Sequence[str] | None) -> list[str]:
        """The answer after the forced prefix, as pieces (the verdict first).

        >>> fmt = PromptFormat("llamaguard3", (("S1", "Violence"), ("S2", "Sexual"), ("S3", "Crime")))
        >>> fmt.answer_pieces(0, None), fmt.answer_pieces(1, ["S3", "S1"])
        (['safe'], ['unsafe', '\\n', 'S3', ',', 'S1'])
        >>> "".join(PromptFormat("aegis", fmt.categories).answer_pieces(1, ["S1", "S3"]))
        'unsafe", "Safety Categories": "Violence, Crime"}'
        """
        pieces = [UNSAFE if label else SAFE]
        if label and categories:
            pieces.append(self.category_intro)
            for i, code in enumerate(categories):
                if i:
                    pieces.append(self.separator)
                pieces.append(self.category_text(code))
        if self.suffix:
            pieces.append(self.suffix)
        return pieces
