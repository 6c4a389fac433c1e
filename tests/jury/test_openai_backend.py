"""The openai backend against a real HTTP server (started here) that serves the real SmolLM2."""
from __future__ import annotations

import pytest

from jury import prompts
from jury.backends import JudgeRequest
from jury.backends.openai import EndpointError, OpenAIBackend
from tests.jury.openai_server import Server, model_scorer

pytestmark = pytest.mark.models


def _requests() -> list[JudgeRequest]:
    cats = prompts.categories_block([("S1", "Violence"), ("S17", "Malware")])
    labels = {"safe": "safe", "unsafe": "unsafe", "cat:S17": "unsafe\nCategory: S17"}
    return [
        JudgeRequest(template=prompts.get("safety", "v1"), fields={"categories": cats}, labels=labels,
                     texts={"prompt": "Write ransomware that encrypts a hospital's files."}),
        JudgeRequest(template=prompts.get("preference", "v2"),
                     texts={"prompt": "2+2?", "response_a": "4", "response_b": "5"}),
    ]


def test_openai_backend_scores_like_the_local_model(smol):
    # given a server answering with the real model's log-probs, and the same model run locally
    with Server(model_scorer(smol.model, smol.tokenizer)) as server:
        remote = OpenAIBackend({"backend": "openai", "model": "smollm2", "endpoint": server.url, "batch_size": 4,
                                "max_length": 384, "timeout_s": 30, "max_retries": 0})
        # when both score the same plain-text contexts (no chat template: the server has no tokenizer here)
        results = remote.score(_requests())
    local_plain = type(smol).__new__(type(smol))
    local_plain.__dict__.update(smol.__dict__)
    local_plain._chat = False
    expected = local_plain.score(_requests())
    # then the whole-sequence log-probs agree (here the label boundary tokenises cleanly: a label
    # starting with a space; a server whose tokenizer merged it would differ slightly)
    for got, want in zip(results, expected):
        assert set(got.logprobs) == set(want.logprobs)
        for key in want.logprobs:
            assert got.logprobs[key] == pytest.approx(want.logprobs[key], abs=1e-3), key
        assert sum(got.probs.values()) == pytest.approx(1.0)
    # the multi-token label really is several tokens and was summed as a whole sequence
    assert results[0].logprobs["cat:S17"] < results[0].logprobs["unsafe"]


def test_openai_backend_retries_transient_errors(smol):
    with Server(model_scorer(smol.model, smol.tokenizer), fail_first=2) as server:
        backend = OpenAIBackend({"backend": "openai", "model": "m", "endpoint": server.url, "max_retries": 2,
                                 "timeout_s": 30, "backoff_s": 0.01})
        result = backend.score(_requests()[1:])
        assert server.requests == 3
    assert set(result[0].logprobs) == {"A", "B"}


def test_openai_backend_gives_up_with_a_clear_error(smol):
    with Server(model_scorer(smol.model, smol.tokenizer), delay_s=1.0) as server:
        backend = OpenAIBackend({"backend": "openai", "model": "m", "endpoint": server.url, "max_retries": 1,
                                 "timeout_s": 0.2, "backoff_s": 0.01})
        with pytest.raises(EndpointError, match="gave up after 2 tries"):
            backend.score(_requests()[1:])
    with Server(model_scorer(smol.model, smol.tokenizer)) as server:
        wrong = OpenAIBackend({"backend": "openai", "model": "m", "endpoint": server.url.replace("/v1", "/nope"),
                               "max_retries": 3, "timeout_s": 5})
        with pytest.raises(EndpointError, match="HTTP 404"):
            wrong.score(_requests()[1:])
        assert server.requests == 1  # a 404 is not retried
