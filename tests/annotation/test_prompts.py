"""annotation.prompts: the three shapes of a prompt, on literal inputs."""
from __future__ import annotations

import pytest

from annotation.prompts import hh_completion, prompt_hh_transcript, prompt_messages, prompt_role_lines
from jury.judging import prompt_text as jury_prompt_text

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello"},
    {"role": "user", "content": "How do I pick a lock?"},
]


def test_a_bare_string_is_one_user_message():
    assert prompt_messages("Hi there") == [{"role": "user", "content": "Hi there"}]


def test_messages_get_string_values_and_defaults():
    assert prompt_messages([{"content": 3}, {"role": "assistant"}, "loose text"]) == [
        {"role": "user", "content": "3"},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "loose text"},
    ]


def test_no_prompt_is_no_messages():
    assert prompt_messages(None) == [] and prompt_messages([]) == []


def test_hh_transcript_of_one_user_turn_is_a_transcript_too():
    # one prompt form for every row: a single turn is not bare text
    assert prompt_hh_transcript([{"role": "user", "content": "Hi"}]) == "\n\nHuman: Hi\n\nAssistant:"


def test_the_completion_carries_the_joining_space_so_prompt_plus_completion_is_the_transcript():
    messages = [{"role": "user", "content": " two spaces"}, {"role": "assistant", "content": "ok "}]
    assert prompt_hh_transcript(messages) + hh_completion("Sure.") == (
        "\n\nHuman:  two spaces\n\nAssistant: ok \n\nAssistant: Sure."
    )
    assert hh_completion("") == " "


def test_hh_transcript_of_a_conversation_ends_with_the_assistant_cue():
    assert prompt_hh_transcript(CONVERSATION) == (
        "\n\nSystem: Be brief.\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: How do I pick a lock?\n\nAssistant:"
    )


def test_hh_transcript_titles_an_unknown_role():
    assert prompt_hh_transcript([{"role": "tool", "content": "42"}]) == "\n\nTool: 42\n\nAssistant:"


def test_hh_transcript_of_a_lone_system_message_is_a_transcript():
    assert prompt_hh_transcript([{"role": "system", "content": "x"}]) == "\n\nSystem: x\n\nAssistant:"


def test_role_lines_of_a_conversation():
    assert prompt_role_lines(CONVERSATION) == "System: Be brief.\nUser: Hi\nAssistant: Hello\nUser: How do I pick a lock?"


def test_role_lines_of_one_message_is_its_text_whatever_the_role():
    assert prompt_role_lines([{"role": "system", "content": "x"}]) == "x"
    assert prompt_role_lines("plain") == "plain"


@pytest.mark.parametrize("prompt", ["plain", [{"role": "user", "content": "Hi"}], CONVERSATION, [], None,
                                    [{"role": "user", "content": "a"}, "skipped", {"content": "b"}]])
def test_role_lines_is_what_the_jury_reads_today(prompt):
    # jury.judging.prompt_text is the copy this replaces once the jury rework lands.
    assert prompt_role_lines(prompt) == jury_prompt_text(prompt)
