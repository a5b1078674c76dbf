"""Policy backends on real models and real servers: hf on the tiny model, openai against
``transformers serve`` and a small local HTTP server, vllm where a GPU and vLLM exist."""

from __future__ import annotations

import importlib.util
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from drift_train.policies import Completion, Policy, PolicyError, SamplingParams, make_policy

# one torch thread (conftest): the tiny model gains nothing from a second one, and on shared cores the two
# contend (test_hf_cache, test_evaluate and test_drift_vs_online_rl measured 4-8x slower with two at load 8)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


CONVERSATIONS = [
    [{"role": "user", "content": "What is 2+2?"}],
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Name a prime number larger than ten."},
        {"role": "assistant", "content": "9"},
        {"role": "user", "content": "Incorrect. Please think again."},
    ],
    [{"role": "user", "content": "x"}],
]


@pytest.fixture(scope="module")
def hf_policy(tiny_model_dir):
    with make_policy("hf", str(tiny_model_dir), batch_size=2) as policy:
        yield policy


def test_hf_shapes_and_counts(hf_policy):
    assert isinstance(hf_policy, Policy)
    out = hf_policy.generate(CONVERSATIONS, SamplingParams(max_new_tokens=12, n=3), seeds=[1, 2, 3])
    assert [len(row) for row in out] == [3, 3, 3]
    for row in out:
        for completion in row:
            assert isinstance(completion, Completion)
            assert 1 <= completion.num_tokens <= 12
            assert completion.finish_reason in ("stop", "length")
            assert completion.finish_reason == "stop" or completion.num_tokens == 12
            assert "<|" not in completion.text  # special tokens are not in the text


def test_hf_seeded_sampling_is_reproducible(hf_policy):
    params = SamplingParams(max_new_tokens=16)
    a = hf_policy.generate(CONVERSATIONS, params, seeds=[5, 6, 7])
    b = hf_policy.generate(CONVERSATIONS, params, seeds=[5, 6, 7])
    c = hf_policy.generate(CONVERSATIONS, params, seeds=[8, 6, 7])
    assert a == b
    assert a != c
    # the global RNG is left alone
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    hf_policy.generate(CONVERSATIONS, params, seeds=[1, 2, 3])
    assert torch.equal(torch.rand(1), expected)


def test_hf_batched_greedy_matches_one_at_a_time_generate(hf_policy, tiny_model_dir):
    """Left padding must not change what the model says: batched greedy == unbatched greedy."""
    params = SamplingParams(temperature=0.0, max_new_tokens=20)
    batched = hf_policy.generate(CONVERSATIONS, params)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    for conversation, (completion,) in zip(CONVERSATIONS, batched, strict=True):
        ids = tokenizer.apply_chat_template(
            conversation, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        out = model.generate(**ids, do_sample=False, max_new_tokens=20)
        text = tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
        assert completion.text == text


def test_hf_stop_strings_cut_the_reply(hf_policy):
    params = SamplingParams(temperature=0.0, max_new_tokens=40)
    ((full,),) = hf_policy.generate(CONVERSATIONS[:1], params)
    assert len(full.text) > 3
    stop = full.text[2]
    ((cut,),) = hf_policy.generate(
        CONVERSATIONS[:1], SamplingParams(temperature=0.0, max_new_tokens=40, stop=(stop,))
    )
    assert cut.text == full.text[: full.text.index(stop)]
    assert cut.finish_reason == "stop"


def test_hf_accepts_a_loaded_model(tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    policy = make_policy("hf", model, tokenizer=tokenizer)
    ((completion,),) = policy.generate(CONVERSATIONS[:1], SamplingParams(max_new_tokens=4), seeds=[0])
    assert completion.num_tokens <= 4
    assert policy.model_id == str(tiny_model_dir)


def test_argument_errors(hf_policy, tmp_path):
    with pytest.raises(ValueError, match="2 seeds for 3 conversations"):
        hf_policy.generate(CONVERSATIONS, SamplingParams(), seeds=[1, 2])
    with pytest.raises(ValueError, match="conversation 1 is empty"):
        hf_policy.generate([CONVERSATIONS[0], []], SamplingParams())
    with pytest.raises(ValueError, match="conversation 0, message 0"):
        hf_policy.generate([[{"role": "user", "content": None}]], SamplingParams())
    with pytest.raises(ValueError, match="top_p"):
        hf_policy.generate(CONVERSATIONS, SamplingParams(top_p=0))
    with pytest.raises(ValueError, match="unknown backend 'tgi'"):
        make_policy("tgi", "x")
    with pytest.raises(PolicyError, match="cannot load model"):
        make_policy("hf", str(tmp_path / "missing"))


# ---- openai -------------------------------------------------------------------------------------


def test_openai_against_transformers_serve(openai_server, tiny_model_dir):
    with make_policy("openai", str(tiny_model_dir), base_url=openai_server, max_concurrency=4) as policy:
        out = policy.generate(CONVERSATIONS, SamplingParams(max_new_tokens=8, n=2), seeds=[1, 2, 3])
    assert [len(row) for row in out] == [2, 2, 2]  # transformers serve ignores n: topped up
    for row in out:
        for completion in row:
            assert 1 <= completion.num_tokens <= 8
            assert completion.finish_reason in ("stop", "length")


def test_openai_unknown_path_is_not_retried(openai_server, tiny_model_dir):
    base = openai_server.removesuffix("/v1") + "/nope"
    with make_policy("openai", str(tiny_model_dir), base_url=base, max_retries=3) as policy:
        with pytest.raises(PolicyError, match=r"answered 404 .*is the model name one the server serves"):
            policy.generate(CONVERSATIONS[:1], SamplingParams(max_new_tokens=4))


class _FlakyServer(BaseHTTPRequestHandler):
    """Answers 503 for the first ``failures`` requests, then a valid chat completion."""

    failures = 2
    seen: list = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append(body)
        if len(type(self).seen) <= type(self).failures:
            self.send_response(503)
            payload = {"error": {"message": "warming up"}}
        else:
            self.send_response(200)
            payload = {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "length",
                        "message": {"role": "assistant", "content": "hello world"},
                    }
                ],
                "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8},
            }
        data = json.dumps(payload).encode()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def flaky_server():
    _FlakyServer.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FlakyServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_openai_retries_server_errors_with_backoff(flaky_server):
    _FlakyServer.failures = 2
    with make_policy("openai", "m", base_url=flaky_server, max_retries=3, backoff_s=0.01) as policy:
        ((completion,),) = policy.generate(
            CONVERSATIONS[:1], SamplingParams(max_new_tokens=5, stop=("wor",)), seeds=[42]
        )
    assert completion == Completion(text="hello ", num_tokens=5, finish_reason="stop")
    assert len(_FlakyServer.seen) == 3
    assert _FlakyServer.seen[-1]["seed"] == 42 and _FlakyServer.seen[-1]["max_tokens"] == 5


def test_openai_gives_up_after_max_retries(flaky_server):
    _FlakyServer.failures = 10
    with make_policy("openai", "m", base_url=flaky_server, max_retries=1, backoff_s=0.01) as policy:
        with pytest.raises(PolicyError, match=r"failed 2 times; last error HTTP 503: warming up"):
            policy.generate(CONVERSATIONS[:1], SamplingParams(max_new_tokens=5))


def test_openai_connection_refused_names_the_server():
    with make_policy(
        "openai", "m", base_url="http://127.0.0.1:9/v1", max_retries=1, backoff_s=0.01, timeout_s=2
    ) as policy:
        with pytest.raises(PolicyError, match=r"http://127.0.0.1:9/v1 .* failed 2 times"):
            policy.generate(CONVERSATIONS[:1], SamplingParams(max_new_tokens=5))


def test_openai_needs_a_server(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(PolicyError, match="OPENAI_BASE_URL"):
        make_policy("openai", "m")


# ---- tools ---------------------------------------------------------------------------------------

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "calculator",
            "description": "Evaluate an arithmetic expression.",
            "parameters": {
                "type": "object",
                "properties": {"expr": {"type": "string"}},
                "required": ["expr"],
            },
        },
    }
]


def test_hf_hands_tools_to_the_chat_template_only_when_given(tiny_model_dir):
    """A template that lists the tools sees them; a conversation without tools renders as before."""
    from drift_train.tiny import CHAT_TEMPLATE

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.chat_template = (
        "{% if tools is defined and tools %}{% for t in tools %}tool:{{ t['function']['name'] }};"
        "{% endfor %}{% endif %}" + CHAT_TEMPLATE
    )
    policy = make_policy("hf", str(tiny_model_dir), tokenizer=tokenizer)
    plain = make_policy("hf", str(tiny_model_dir))
    conversations = CONVERSATIONS[:2]
    with_tools = policy.render(conversations, [TOOLS, None])
    assert tokenizer.decode(with_tools[0]).startswith("tool:calculator;")
    assert with_tools[1] == plain.render(conversations[1:])[0]  # None: rendered without tools=
    assert policy.render(conversations) == plain.render(conversations)
    params = SamplingParams(max_new_tokens=4, temperature=0)
    (first,), (second,) = policy.generate(conversations, params, tools=[TOOLS, None])
    assert first.prompt_ids == tuple(with_tools[0]) and second.prompt_ids == tuple(with_tools[1])
    session = policy.session(params)
    session.submit("a", conversations[0], tools=TOOLS)
    replies = []
    while session.busy:
        replies += session.poll()
    assert [(key, c.prompt_ids) for key, c in replies] == [("a", tuple(with_tools[0]))]
    with pytest.raises(ValueError, match="got 1 tool lists for 2 conversations"):
        policy.generate(conversations, params, tools=[TOOLS])
    with pytest.raises(ValueError, match="conversation 0: tools must be None or a list"):
        policy.generate(conversations[:1], params, tools=["calculator"])


class _ToolCallServer(BaseHTTPRequestHandler):
    """Answers every request with content plus two structured tool calls (one with non-JSON arguments)."""

    seen: list = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append(body)
        calls = [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "calculator", "arguments": '{"expr": "2+2"}'},
            },
            {"id": "c2", "type": "function", "function": {"name": "calculator", "arguments": "2*"}},
        ]
        message = {"role": "assistant", "content": "Let me compute." if body.get("tools") else "4"}
        if body.get("tools"):
            message["tool_calls"] = calls
        payload = {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": message}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 9, "total_tokens": 12},
        }
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_openai_sends_tools_and_turns_tool_calls_into_hermes_blocks():
    _ToolCallServer.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ToolCallServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        with make_policy("openai", "m", base_url=url, max_concurrency=1) as policy:
            (with_tools,), (without,) = policy.generate(
                CONVERSATIONS[:2], SamplingParams(max_new_tokens=9), tools=[TOOLS, None]
            )
    finally:
        server.shutdown()
        server.server_close()
    assert [body.get("tools") for body in _ToolCallServer.seen] == [TOOLS, None]
    blocks = with_tools.text.split("\n")
    assert blocks[0] == "Let me compute."
    assert [json.loads(b.removeprefix("<tool_call>").removesuffix("</tool_call>")) for b in blocks[1:]] == [
        {"name": "calculator", "arguments": {"expr": "2+2"}},
        {"name": "calculator", "arguments": "2*"},  # not JSON: passed on as sent
    ]
    assert all(b.startswith("<tool_call>") and b.endswith("</tool_call>") for b in blocks[1:])
    assert with_tools.finish_reason == "stop" and without.text == "4"


def test_openai_sends_recorded_tool_call_arguments_as_json_strings():
    """Records keep a call's arguments as an object (chat templates want that); the OpenAI API takes a
    JSON string, and servers with typed request models (vLLM's) refuse an object."""
    _ToolCallServer.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ToolCallServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    call = {"id": "c1", "type": "function", "function": {"name": "calculator", "arguments": {"expr": "2+2"}}}
    history = [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "name": "calculator", "content": "4"},
    ]
    try:
        with make_policy("openai", "m", base_url=url, max_concurrency=1) as policy:
            policy.generate([history], SamplingParams(max_new_tokens=9), tools=[TOOLS])
    finally:
        server.shutdown()
        server.server_close()
    sent = _ToolCallServer.seen[0]["messages"]
    assert sent[1]["tool_calls"][0]["function"]["arguments"] == '{"expr": "2+2"}'
    assert sent[0] == history[0] and sent[2] == history[2]
    assert history[1]["tool_calls"][0]["function"]["arguments"] == {"expr": "2+2"}  # the record is untouched


def test_backends_declare_every_capability(hf_policy):
    from drift_train.policies import LockstepSession, PolicyBase, Session

    assert isinstance(hf_policy, Policy)
    assert hf_policy.has_sessions and not hf_policy.needs_env and hf_policy.has_token_ids
    assert isinstance(hf_policy.session(SamplingParams()), Session)
    assert isinstance(LockstepSession(hf_policy, SamplingParams(), seed_of=hash), Session)

    class GenerateOnly(PolicyBase):  # the least a policy writes: every other capability has a default
        def generate(self, conversations, params, seeds=None):
            return [[Completion("ok", 1, "stop")] for _ in conversations]

    minimal = GenerateOnly()
    assert isinstance(minimal, Policy) and not minimal.has_sessions and not minimal.needs_env
    assert minimal.describe() == {"backend": "base", "model": ""}
    assert "tokens_unavailable" in minimal.token_meta()
    minimal.reset_prefix_cache()
    with pytest.raises(PolicyError, match="has no sessions; it runs lock-step"):
        minimal.session(SamplingParams())
    session = LockstepSession(minimal, SamplingParams(), seed_of=lambda key: 0)
    session.submit("a", CONVERSATIONS[0])
    session.submit("b", CONVERSATIONS[1])
    assert session.busy and [key for key, _ in session.poll()] == ["a", "b"] and not session.busy
    assert session.poll() == []


# ---- vllm ---------------------------------------------------------------------------------------

HAS_VLLM = importlib.util.find_spec("vllm") is not None


@pytest.mark.skipif(HAS_VLLM, reason="vLLM is installed; the missing-extra message cannot be shown")
def test_vllm_missing_names_the_extra(tiny_model_dir):
    with pytest.raises(PolicyError, match=r"pip install 'drift-toolkit\[vllm\]'"):
        make_policy("vllm", str(tiny_model_dir))


# the vllm backend generating for real (CPU included): tests/test_vllm.py, under vLLM's own environment
