"""A small OpenAI-compatible server for tests: ``POST /v1/completions`` with ``echo`` + ``logprobs``.

It serves a real local model (the packaged SmolLM2 from the model cache): each prompt is tokenised,
run through the model once, and every prompt token's log-probability is returned with its
``text_offset``, followed by one greedy generated token, in the legacy OpenAI completions layout
(the one vLLM also serves). Nothing is canned. ``fail_first`` makes the first N requests answer
HTTP 503, to exercise the client's retries; ``delay_s`` makes it slow, to exercise timeouts.
A request without ``echo`` is a generation request (synthetic editors): each prompt is answered by
``generator(prompt, body)`` when one is given (``bodies`` keeps every request body).
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch

Scorer = Callable[[str], dict]


def model_scorer(model, tokenizer) -> Scorer:
    lock = threading.Lock()

    @torch.inference_mode()
    def score(prompt: str) -> dict:
        ids = tokenizer.encode(prompt, add_special_tokens=True)
        with lock:
            logits = model(input_ids=torch.tensor([ids])).logits[0].float()
        logp = torch.log_softmax(logits, dim=-1)
        tokens, values, offsets = [], [], []
        for i, tok in enumerate(ids):
            start = len(tokenizer.decode(ids[:i], skip_special_tokens=True))
            text = tokenizer.decode(ids[: i + 1], skip_special_tokens=True)[start:]
            tokens.append(text)
            offsets.append(start)
            values.append(None if i == 0 else float(logp[i - 1, tok]))
        nxt = int(logp[-1].argmax())
        tokens.append(tokenizer.decode([nxt]))
        values.append(float(logp[-1, nxt]))
        offsets.append(len(prompt))
        return {"tokens": tokens, "token_logprobs": values, "text_offset": offsets, "top_logprobs": None}

    return score


class Server:
    def __init__(self, scorer: Scorer | None, *, fail_first: int = 0, delay_s: float = 0.0,
                 generator: Callable[[str, dict], str] | None = None):
        self.scorer, self.fail_first, self.delay_s, self.generator = scorer, fail_first, delay_s, generator
        self.requests = 0
        self.bodies: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                outer.requests += 1
                if outer.requests <= outer.fail_first:
                    return self._send(503, {"error": {"message": "warming up"}})
                if outer.delay_s:
                    time.sleep(outer.delay_s)
                if self.path != "/v1/completions":
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.bodies.append(body)
                if not body.get("echo") and outer.generator is not None:
                    prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
                    choices = [{"index": n, "text": outer.generator(p, body), "finish_reason": "stop"}
                               for n, p in enumerate(prompts)]
                    return self._send(200, {"object": "text_completion", "model": body.get("model"), "choices": choices})
                if not body.get("echo") or not body.get("logprobs"):
                    return self._send(400, {"error": {"message": "this test server needs echo and logprobs"}})
                prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
                choices = []
                for n, prompt in enumerate(prompts):
                    assert outer.scorer is not None
                    lp = outer.scorer(prompt)
                    choices.append({"index": n, "text": prompt + lp["tokens"][-1], "logprobs": lp, "finish_reason": "length"})
                self._send(200, {"object": "text_completion", "model": body.get("model"), "choices": choices})

            def _send(self, code: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # Join handler threads on close, so none is still inside the model when the test ends.
        self.httpd.daemon_threads = False
        self.httpd.block_on_close = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
