"""``drift/ToolUse-v0``: multi-turn tool calling against a simulated world, with follow-up requests."""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from drift_envs.commitment import denial
from drift_envs.core import Feedback, MultiTurnTextEnv, Task, Verdict
from drift_envs.number_words import NUMBER_PHRASE_RE, words_to_numbers
from drift_envs.tool.calls import ToolCall, canonical_calls, format_calls, parse_reply, same_call
from drift_envs.tool.mtu import ReplayWorld
from drift_envs.tool.tasks import Request, ToolTask, normalize_value
from drift_envs.tool.world import World

__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "HEDGE_RE",
    "NEGATION_RE",
    "TAIL_HEDGE_RE",
    "ToolUseEnv",
    "after_answer",
    "extract_answer",
    "judge_answer",
    "read_as_shown",
]

DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful assistant that can call tools. To call a tool, write "
    '<tool_call>{"name": "<tool name>", "arguments": {<the arguments as JSON>}}</tool_call>; one reply may '
    "hold several calls, and their results come back as tool messages. When a request is done, reply "
    "without tool calls and end with a line 'Answer: <the result>'."
)
# Answer spans are read as tokens: words (ids such as "acc-1234" are one word), numbers (a thousands
# separator only in groups of three, so "5,6,7" is three numbers and "4,500" one), and dates and
# times, which are kept apart so that "on 2025-03-04" names no number.
_ANSWER_TOKEN = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})|(?P<time>\d{1,2}:\d{2})"
    r"|(?P<word>[a-z][a-z0-9\-]*)|(?P<number>-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)"
)
_ID = re.compile(r"[a-z]+-\d+")
# Words that offer an alternative or hedge: an answer holding one (outside the expected value
# itself) names more than one value, whatever the other value is.
HEDGE_RE = re.compile(
    r"(?<![^\W_])(?:or|either|maybe|perhaps|possibly|possible|probably|likely|alternatively|otherwise|unless|"
    r"else|instead|could|might|guess|unsure|uncertain)(?![^\W_])|[/|]"
)
# Words that deny the value: "no, it has not been cancelled" names "cancelled" and says it is not;
# contractions are read with or without their apostrophe ("isnt"), and a verdict word ("nah",
# "false") after the value denies it as well.
NEGATION_RE = re.compile(
    r"(?<![^\W_])(?:no|not|never|none|neither|nor|cannot|nope|nah|false|untrue|incorrect|wrong"
    r"|(?:is|are|was|were|do|does|did|has|have|had|ca|wo|could|would|should|must|need|ai|might)nt)(?![^\W_])"
    r"|n't(?![^\W_])"
)
# Words that offer an alternative in the text *after* the answer line ("Answer: 3410\nOr maybe 1370"):
# stricter than HEDGE_RE, since a closing line ("let me know if you need anything else") is no hedge;
# "or" counts where it opens a clause, not inside one ("questions or requests"); a slash or bar only
# standing alone ("gold / wrong"), not in a link or a date.
TAIL_HEDGE_RE = re.compile(
    r"(?<![^\W_])(?:maybe|perhaps|possibly|probably|alternatively|alternative|otherwise|either|instead|unless|"
    r"unsure|uncertain)(?![^\W_])|(?:^|[\n.,;:!?(\[{/|\u2014\u2013\-])\s*or(?![^\W_])|(?:^|\s)[/|](?=\s|$)"
)
_MINUS = re.compile(r"(?<![^\W_])minus\s+(?=\d)|[−–](?=\d)")  # "minus 7.2", U+2212 and en-dash signs
# apostrophe look-alikes a reader takes for one: ‘ ’ ʼ ` ´ ′ ＇
_APOSTROPHES = str.maketrans(dict.fromkeys("\u2018\u2019\u02bc`\u00b4\u2032\uff07", "'"))
# a right-to-left override shows its span reversed, up to a pop (U+202C), an isolate's end or the line end
_RLO_SPAN = re.compile("\u202e([^\u202c\u2069\n]*)")

_NUMBER_PHRASE = NUMBER_PHRASE_RE
# Roman numerals: whole tokens in the strict form, upper-case of two or more letters or in any case
# of four or more (so "I", "mix", "did" and "CIVIL" are words; no English word of four letters or
# more is a strict numeral), less abbreviations that read as units or names
_ROMAN = re.compile(r"(?<![^\W_])(?:[MDCLXVI]{2,}|[MDCLXVImdclxvi]{4,})(?![^\W_])")
_ROMAN_FORM = re.compile(r"M{0,3}(?:CM|CD|D?C{0,3})(?:XC|XL|L?X{0,3})(?:IX|IV|V?I{0,3})")
_ROMAN_VALUES = {"M": 1000, "D": 500, "C": 100, "L": 50, "X": 10, "V": 5, "I": 1}
_NOT_ROMAN = frozenset("CM MM ML DL MI DC CD MD CV XL MIX CC CL LI DI MC".split())


def _numerals_as_digits(text: str) -> str:
    """``text`` with Roman numerals (upper-case, see ``_ROMAN``) and English number phrases written
    as digits, so that another value spelled out is another number. A lone "one" stays a word (the
    pronoun: "the one you asked about")."""

    def roman(m: re.Match) -> str:
        token = m.group(0).upper()
        if token in _NOT_ROMAN or not _ROMAN_FORM.fullmatch(token):
            return token
        values = [_ROMAN_VALUES[c] for c in token]
        return str(sum(-v if i + 1 < len(values) and v < values[i + 1] else v for i, v in enumerate(values)))

    def phrase(m: re.Match) -> str:
        if m.group(0) in ("one", "point"):
            return m.group(0)
        numbers = words_to_numbers(m.group(0))
        return " ".join(numbers) if numbers else m.group(0)

    text = _ROMAN.sub(roman, text)
    return _NUMBER_PHRASE.sub(phrase, text.lower())


def read_as_shown(text: str, numerals: bool = False) -> str:
    """``text`` as a reader sees it, lower-cased: a right-to-left override's span in display order,
    then the project's normalisation (look-alikes, invisible characters), apostrophe look-alikes as
    ``'``, signs unified; with ``numerals``, spelled-out and Roman numbers as digits."""
    from drift_envs.user.constraints.normalize import normalize_reply  # the one normalisation

    # apostrophes first: NFKC would make the acute accent a space and a combining mark
    text = _RLO_SPAN.sub(lambda m: m.group(1)[::-1], str(text)).translate(_APOSTROPHES)
    # an invisible character inside a word (which the normaliser may keep as one word joiner, U+2060)
    # hides nothing here: "o\u200br" is "or"
    text = unicodedata.normalize("NFKC", normalize_reply(text)).replace("\u2060", "").translate(_APOSTROPHES)
    text = _numerals_as_digits(text) if numerals else text.lower()
    return _MINUS.sub("-", text)


def _canonical_ids(text: str, prefix: str) -> str:
    """Every spelling of an id with ``prefix`` (``BK 102``, ``bk102``, ``bk_102``, ``BK-0102``) as
    ``bk-102``: ids compare on letters and digits, not on case or separators."""
    letters = r"[\s\-_.]*".join(re.escape(c) for c in prefix)  # "B.K. 102", "b k 102"
    return re.sub(
        rf"(?<![^\W_]){letters}(?:[\s\-_./#:]|\\_)*0*(\d+)(?![^\W_])",
        lambda m: f"{prefix}-{m.group(1)}",
        text,
    )


def extract_answer(text: str) -> str:
    """The final answer of a reply: what follows its last ``Answer:`` up to the line end, else the whole
    reply (one pass: ``rfind``)."""
    at = text.lower().rfind("answer:")
    if at < 0:
        return text.strip()
    rest = text[at + len("answer:") :]
    return rest.split("\n", 1)[0].strip()


def after_answer(text: str) -> str:
    """The text of a reply after its last ``Answer:`` line ("" when it has none: then the whole reply
    is the answer). :func:`judge_answer` reads it for alternatives offered after the answer."""
    at = text.lower().rfind("answer:")
    if at < 0:
        return ""
    rest = text[at + len("answer:") :].split("\n", 1)
    return rest[1] if len(rest) > 1 else ""


_ANSWER_LINE = re.compile(r"answer:([^\n]*)", re.IGNORECASE)


def _answer_lines(text: str) -> set[str]:
    """The distinct values of a reply's ``Answer:`` lines (normalised; empty ones left out)."""
    return {v for v in (normalize_value(m.group(1)) for m in _ANSWER_LINE.finditer(text)) if v}


def _tokens(text: str) -> list[tuple[str, str, int, int]]:
    """``(kind, normalised value, start, end)`` per token of ``text`` (already read by :func:`read_as_shown`)."""
    out = []
    for m in _ANSWER_TOKEN.finditer(text):
        kind = m.lastgroup
        value = m.group(0) if kind in ("date", "time") else normalize_value(m.group(0))
        out.append((kind, value, m.start(), m.end()))
    return out


def _blank_gold(
    text: str, gold: list[str]
) -> tuple[list[tuple[str, str, int, int]], str, list[tuple[int, int]]]:
    """The tokens of ``text`` outside occurrences of the token sequence ``gold``, ``text`` with those
    occurrences blanked out, and where they were (``(start, end)`` each)."""
    tokens = _tokens(text)
    values = [v for _, v, _, _ in tokens]
    spans, rest_tokens = [], []
    i = 0
    while i < len(values):
        if values[i : i + len(gold)] == gold:
            spans.append((tokens[i][2], tokens[i + len(gold) - 1][3]))
            i += len(gold)
        else:
            rest_tokens.append(tokens[i])
            i += 1
    # the blanked text in one pass (rebuilding it per occurrence is quadratic in a long reply)
    pieces, at = [], 0
    for a, b in spans:
        pieces += [text[at:a], " " * (b - a)]
        at = b
    return rest_tokens, "".join([*pieces, text[at:]]), spans


def judge_answer(
    answer: str, expected: str, candidates: tuple[str, ...] | set[str] = (), after: str = ""
) -> str:
    """How an ``Answer:`` span stands against the expected value: ``"right"``, ``"missing"`` (the
    value is not named), ``"several"`` (it names another value too, or offers an alternative) or
    ``"negated"`` (it names the value and denies it).

    The mechanism, on the span with each occurrence of the expected value blanked out: another value
    of the same kind (any other number when the value is a number, also spelled out or as a Roman
    numeral: "one thousand three hundred seventy", "MCCCLXX"; any other id such as ``BK-102`` when it
    is an id, in any case and with any separator: ``bk102``, ``BK 102``), any of ``candidates`` (the
    values of the task a guesser could list), a word that offers an alternative (``or``, ``either``,
    ``maybe``, ``perhaps``, ``possibly``, ``/``, ...) or a negation (``no``, ``not``, ``never``,
    ``n't``, ``isnt``, ``nah``, ``false``, ...) makes the answer wrong. A value that itself holds such a
    word (a name with "or" in it) is blanked out before the search, so it stays right. ``after``, the
    reply's text after the answer line, is read the same way for alternatives (another value, a
    candidate, :data:`TAIL_HEDGE_RE`), not for negations or mild words ("anything else"): text before
    the answer line (working, intermediate values) is never read. Both are read as a reader sees
    them: look-alike letters, apostrophes and a right-to-left override in display order. Last, the
    value must not be denied where it stands, as :func:`drift_envs.commitment.denial` reads a denial
    for every env: excluded (``anything but 3410``, ``other than``, ``far from``, ``~rainy``,
    ``!3410``), retracted (``3410... just kidding``, ``3410, jk``, ``(sarcasm)``, ``is wrong``),
    struck through (``~~rainy~~``) or crossed out (``rainy ❌``, ``✘ 3410``): ``"negated"``.
    """
    gold_tokens = _tokens(read_as_shown(expected))
    gold = [v for _, v, _, _ in gold_tokens]
    if not gold:
        return "missing"
    single = gold[0] if len(gold) == 1 else None
    number = single is not None and gold_tokens[0][0] == "number"
    is_id = single is not None and _ID.fullmatch(single) is not None
    text, tail = (
        read_as_shown(answer, numerals=number),
        read_as_shown(after, numerals=number) if after.strip() else "",
    )
    if is_id:
        prefix = single.split("-", 1)[0]
        text, tail = _canonical_ids(text, prefix), _canonical_ids(tail, prefix)
        gold = [_canonical_ids(single, prefix)]
    rest_tokens, rest, found = _blank_gold(text, gold)
    if not found:
        return "missing"
    tail_tokens, tail_rest, _ = _blank_gold(tail, gold)
    others = set(candidates) - set(gold)
    for kind, value, _, _ in (*rest_tokens, *tail_tokens):
        if value in others or (number and kind == "number") or (is_id and _ID.fullmatch(value)):
            return "several"
    if HEDGE_RE.search(rest) or TAIL_HEDGE_RE.search(tail_rest):
        return "several"
    if NEGATION_RE.search(rest):
        return "negated"
    # the shared reading of a denial around the value (drift_envs.commitment): "anything but 3410",
    # "~rainy", "3410... just kidding", "~~rainy~~", "rainy ❌", on the answer line and what follows it
    joined = f"{text}\n{tail}"
    if any(denial(joined, a, b) for a, b in found):
        return "negated"
    return "right"


class ToolUseEnv(MultiTurnTextEnv):
    r"""A user asks for things that take tool calls; the env runs the calls against a small world.

    ## Description
    Each task is a dialogue of 1-3 user requests, a set of tools (OpenAI function schemas: the
    domain's own and distractors from other domains) and a deterministic world the tools act on:
    bank accounts, shop orders, flights and bookings, calendars, weather forecasts, unit conversion.
    Requests chain calls (a call's output is the next call's input: an account id, an order id, the
    cheapest flight) and change the world (transfers, cancellations, bookings, events); a follow-up
    request is revealed once the current one is done and often depends on the change an earlier one
    made. A request is done when (1) every reference call of the request has been made without error
    (in any order; the answer must come from the tools, not a guess), (2) the world is in exactly the
    state the reference calls leave it in (no extra transfers, cancellations or bookings) and (3) the
    final reply answers it: its ``Answer:`` line (or, without one, the whole reply) names the expected
    value, no other value and does not deny it, and the text after that line offers no alternative
    (:func:`judge_answer`): listing every balance seen, ``-7.3 or -7.2 or -7.1``, ``rainy or stormy``,
    ``maybe rainy``, ``no, it has not been cancelled``, ``it isnt cancelled``, ``BK-101, bk102``, ``3410
    (MCCCLXX)`` and ``Answer: 3410`` then a line ``Or maybe 1370.`` are all wrong, and so is a value
    the reply excludes, retracts or crosses out (``anything but 3410``, ``~rainy``, ``3410... just
    kidding``, ``~~rainy~~``, ``rainy ❌``: :mod:`drift_envs.commitment`, the reading every env
    shares); ``Answer: the forecast is rainy`` is right, and working before the answer line is not read. With
    ``dataset=PATH`` the tasks are MTU-Bench dialogues (:mod:`drift_envs.tool.mtu`) replayed from
    their recorded results.

    ## Action Space
    ``UnicodeText``: the model's reply. Tool calls are Hermes/Qwen blocks
    ``<tool_call>{"name": "get_balance", "arguments": {"account_id": "ACC-1234"}}</tool_call>``,
    several per reply allowed (OpenAI's ``{"type": "function", "function": {...}}`` inside a block is
    read too). A reply without blocks is a final answer to the current request.

    ## Observation Space
    ``UnicodeText``: after ``reset``, the first request; after a reply with calls, the results, one line
    ``name: {json}`` per call; after a final reply, the next request or the user's complaint; ``""``
    once the episode ended. ``info["messages"]`` keeps OpenAI shapes: the assistant message carries
    ``tool_calls`` (``{"id", "type": "function", "function": {"name", "arguments": {...}}}``, arguments
    as an object, as chat templates render them), each result is a ``{"role": "tool", "tool_call_id",
    "name", "content"}`` message; ``info["tools"]`` holds the schemas (the rollout engine passes them to
    the chat template's ``tools=``).

    ## Rewards
    ``1.0`` on the step that completes the last request, else ``0.0``; with ``partial_credit=True``
    each completed request pays ``1/num_requests`` instead (the episode's sum is the share done). Plus
    ``format_penalty`` (``-0.1``) for a reply with a malformed ``<tool_call>`` block or nothing in it.
    ``info``: ``request`` (1-based, the one this reply worked on), ``num_requests``, ``requests_done``,
    ``progress``, ``tool_errors`` (calls of this reply that failed).

    ## Feedback
    - tool results (role ``tool``): ``{"account_id": "ACC-4821", "owner": "Dana Cohen"}``; errors are
      results too: ``{"error": "unknown tool 'get_weather'; the tools you can call are: ..."}``,
      ``{"error": "transfer: missing required argument 'amount'"}``, ``{"error": "transfer: argument
      'amount' must be of type integer, got str '200'"}``, ``{"error": "cancel_order: order ORD-1 is
      shipped and can no longer be cancelled"}``, ``{"error": "call budget for this request spent"}``
    - a malformed block (``kind="format_error"``): ``I could not read your tool call: the <tool_call>
      block is not valid JSON (Expecting value at column 9). Write each call as ...``
    - an answer before the work is done (``"not_done"``): ``That isn't done yet: use the tools to carry
      out the request before you answer.``; a wrong answer (``"wrong_answer"``): ``That's not the
      answer I need.`` (``... Give one answer, not several.`` when it named several values or hedged)
    - a completed request: the next request (``"next_request"``); the last one: ``"success"``.

    ## Starting State
    ``reset(seed=..., options={"index": i})`` (or ``{"task_id": ...}``); procedural task ``i`` is a pure
    function of (``seed``, ``split``, ``i``).

    ## Episode End
    ``terminated`` when the last request is done; ``truncated`` after ``max_turns`` assistant replies
    (calls and answers alike). Stepping an ended episode raises
    :class:`~drift_envs.core.EpisodeFinishedError`. ``oracle_reply()`` gives the next round of
    reference calls, or the answer once they are made; None when earlier replies changed the world
    so that the request can no longer be done.

    ## Arguments
    - ``dataset``: None (procedural, offline) or a path to an MTU-Bench-format file (``.jsonl``/
      ``.json``/``.parquet``); ``split`` (``"test"``/``"train"``, disjoint people and cities), ``seed``,
      ``max_tasks``
    - ``domains``: procedural domains to draw from (``bank``, ``shop``, ``travel``, ``calendar``,
      ``weather``; all by default); ``distractors``: other domains' tools offered per task (2)
    - ``max_turns`` (10), ``partial_credit`` (False), ``max_calls_per_reply`` (8; later calls of a
      reply are not run), ``extra_calls`` (4: calls per request allowed beyond the reference ones, so
      stuffing calls cannot search the world), ``tools_in_prompt`` (False: also list the schemas in the
      system prompt, for chat templates that ignore ``tools=``), ``system_prompt``,
      ``format_penalty`` (-0.1)
    - and every shared kwarg of :class:`~drift_envs.core.EnvOptions` (the base class checks them):
      ``max_text_length`` (65536) and ``render_mode`` too, with the defaults above;
      ``source_options``: more options of the source

    ## Example
    >>> import gymnasium as gym, drift_envs
    >>> env = gym.make("drift/ToolUse-v0", domains=["bank"])
    >>> obs, info = env.reset(seed=0, options={"index": 0})
    >>> obs
    "How much money is in Alice Moreau's bank account?"
    >>> sorted(t["function"]["name"] for t in info["tools"])[:3]
    ['cancel_order', 'create_event', 'find_account']
    >>> call = '{"name": "find_account", "arguments": {"owner": "Alice Moreau"}}'
    >>> obs, *_ = env.step(f"<tool_call>{call}</tool_call>")
    >>> obs
    'find_account: {"account_id": "ACC-7891", "owner": "Alice Moreau"}'
    """

    source_kind = "tool"

    option_defaults = {"max_turns": 10, "system_prompt": DEFAULT_SYSTEM_PROMPT}

    def __init__(
        self,
        *,
        domains: list[str] | tuple[str, ...] | str | None = None,
        distractors: int | None = None,
        partial_credit: bool = False,
        max_calls_per_reply: int = 8,
        extra_calls: int = 4,
        tools_in_prompt: bool = False,
        **options: Any,
    ) -> None:
        for name, value, low in (
            ("max_calls_per_reply", max_calls_per_reply, 1),
            ("extra_calls", extra_calls, 0),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        knobs = {
            "domains": tuple(domains) if isinstance(domains, list) else domains,
            "distractors": distractors,
        }
        super().__init__(source_knobs={k: v for k, v in knobs.items() if v is not None}, **options)
        self.partial_credit = bool(partial_credit)
        self.max_calls_per_reply = max_calls_per_reply
        self.extra_calls = extra_calls
        self.tools_in_prompt = bool(tools_in_prompt)
        self._base_system_prompt = self.system_prompt
        self._begin(None)

    # ---- episode state ------------------------------------------------------------------------
    def _begin(self, tool_task: ToolTask | None) -> None:
        self._tool_task = tool_task
        self._world: Any = None
        if tool_task is not None:
            self._world = (
                ReplayWorld(tool_task)
                if tool_task.backend == "replay"
                else World(tool_task.state, tool_task.tools)
            )
        self._request = 0  # index of the request being worked on
        self._calls_used = 0  # calls run for the current request
        self._made: list[ToolCall] = []  # calls of the current request that ran without error
        self._pred: list[list[ToolCall]] = [[] for _ in (tool_task.requests if tool_task else ())]
        self._goals: dict[int, str] = {}

    @staticmethod
    def tool_task_of(task: Task) -> ToolTask:
        """The :class:`ToolTask` behind an env-level task."""
        return task.meta["tool_task"]

    def _goal(self, k: int) -> str:
        """The world snapshot after the reference calls of requests 1..k+1."""
        if k not in self._goals:
            tt = self._tool_task
            world = World(tt.state, tt.tools)
            for request in tt.requests[: k + 1]:
                for call in request.reference_calls:
                    _, error = world.execute(call)
                    if error is not None:  # a generator bug, not a model error
                        raise RuntimeError(f"{tt.task_id}: reference call {call.signature()} fails: {error}")
            self._goals[k] = world.snapshot()
        return self._goals[k]

    def tool_trace(self) -> list[tuple[list[ToolCall], list[ToolCall]]]:
        """Per request of the current episode: (the calls the model made while on it, the reference calls).
        Requests never reached have no calls. :mod:`drift_train.tool_metrics` scores these."""
        tt = self._tool_task
        if tt is None:
            return []
        return [
            (list(pred), request.reference_calls)
            for pred, request in zip(self._pred, tt.requests, strict=True)
        ]

    # ---- MultiTurnTextEnv hooks ---------------------------------------------------------------
    def first_message(self, task: Task) -> str:
        """The first request (the episode's world and counters are set up here, once per reset)."""
        tool_task = self.tool_task_of(task)
        self._begin(tool_task)
        return tool_task.requests[0].text

    def system_message(self, task: Task) -> str | None:
        """The system prompt; with ``tools_in_prompt`` followed by the task's tool schemas, one per line."""
        if self.tools_in_prompt and self._base_system_prompt is not None:
            listing = "\n".join(
                json.dumps(s, ensure_ascii=False) for s in self.tool_task_of(task).tool_schemas()
            )
            self.system_prompt = f"{self._base_system_prompt}\n\nTools:\n{listing}"
        return self.system_prompt

    def episode_info(self) -> dict:
        """``tools`` (the schemas offered) and ``num_requests``."""
        if self._tool_task is None:
            return {}
        return {"tools": self._tool_task.tool_schemas(), "num_requests": len(self._tool_task.requests)}

    def _progress_info(self, errors: int = 0, request: int | None = None) -> dict:
        n = len(self._tool_task.requests)
        return {
            "request": (self._request if request is None else request) + 1,
            "requests_done": self._request,
            "progress": self._request / n,
            "tool_errors": errors,
        }

    def verify(self, task: Task, action: str) -> Verdict:
        """Run the reply's calls, or judge it as the final answer to the current request."""
        parsed = parse_reply(action)
        k = self._request
        request = self._tool_task.requests[k]
        if parsed.error is not None:
            evidence = {"kind": "format_error", "error": parsed.error}
            return Verdict(False, False, None, {"kind": "format_error"}, self._progress_info(), evidence)
        if parsed.calls:
            return self._run_calls(parsed.calls, parsed.text, request)
        if not parsed.text:
            evidence = {"kind": "format_error", "error": "the reply is empty"}
            return Verdict(False, False, None, {"kind": "format_error"}, self._progress_info(), evidence)
        answer = extract_answer(parsed.text)
        norm = normalize_value(answer)[:200]
        judged = (
            "right"
            if request.answer is None
            else judge_answer(answer, request.answer, request.candidates, after_answer(parsed.text))
        )
        if judged == "right" and len(_answer_lines(parsed.text)) > 1:
            judged = "several"  # "Answer: -7.3" then "Answer: -7.2": two answers, whichever is last
        kind = "wrong_answer"
        missing = [c for c in request.reference_calls if not any(same_call(c, m) for m in self._made)]
        if missing or self._world.snapshot() != self._state_goal(k):
            kind = "not_done"
        elif judged == "right":
            kind = "next_request" if k + 1 < len(self._tool_task.requests) else "success"
        several = judged == "several"
        if kind in ("next_request", "success"):
            self._request += 1
            self._calls_used, self._made = 0, []
            if isinstance(self._world, ReplayWorld) and self._request < len(self._tool_task.requests):
                self._world.request = self._request
        evidence = {"kind": kind, "several": several}
        # partial credit: the share of the dialogue this reply completed (one request, or none)
        share = 1.0 / len(self._tool_task.requests) if kind in ("next_request", "success") else 0.0
        return Verdict(
            kind == "success",
            True,
            norm,
            {"kind": kind},
            self._progress_info(request=k),
            evidence,
            reward=share if self.partial_credit else None,
        )

    def _state_goal(self, k: int) -> str:
        return "" if isinstance(self._world, ReplayWorld) else self._goal(k)

    def _run_calls(self, calls: list[ToolCall], text: str, request: Request) -> Verdict:
        budget = len(request.reference_calls) + self.extra_calls
        results, errors, pairs = [], 0, []
        for j, call in enumerate(calls):
            call_id = f"call_{self.turn}_{j + 1}"
            self._pred[self._request].append(call)
            if j >= self.max_calls_per_reply:
                error = f"{call.name}: not run: at most {self.max_calls_per_reply} calls per reply"
                result = {"error": error}
            elif self._calls_used >= budget:
                error = f"{call.name}: not run: the call budget for this request ({budget} calls) is spent"
                result = {"error": error}
            else:
                self._calls_used += 1
                result, error = self._world.execute(call)
                if error is None:
                    self._made.append(call)
            errors += error is not None
            pairs.append((call_id, call))
            results.append(
                {
                    "tool_call_id": call_id,
                    "name": call.name,
                    "content": json.dumps(result, ensure_ascii=False),
                }
            )
        evidence = {"kind": "tool_results", "calls": pairs, "results": results, "text": text}
        return Verdict(
            False,
            True,
            canonical_calls(calls)[:2000],
            {"kind": "tool_results"},
            self._progress_info(errors),
            evidence,
        )

    def make_feedback(self, task: Task, verdict: Verdict, *, turn: int, repeated: bool) -> Feedback:
        """Tool results, a format complaint, the user's reaction to an answer, or the next request."""
        ev = verdict.evidence
        kind = ev["kind"]
        if kind == "tool_results":
            text = "\n".join(f"{r['name']}: {r['content']}" for r in ev["results"])
            return Feedback(text, kind, {"tool_results": ev["results"]})
        if kind == "format_error":
            text = (
                f"I could not read your tool call: {ev['error']}. Write each call as "
                '<tool_call>{"name": "<tool name>", "arguments": {...}}</tool_call>, or answer without tags.'
            )
            return Feedback(text, kind, {"error": ev["error"]})
        if kind == "not_done":
            return Feedback(
                "That isn't done yet: use the tools to carry out the request before you answer.", kind
            )
        if kind == "wrong_answer":
            extra = " Give one answer, not several." if ev.get("several") else ""
            return Feedback("That's not the answer I need." + extra, kind)
        if kind == "next_request":
            return Feedback(
                self._tool_task.requests[self._request].text, kind, {"request": self._request + 1}
            )
        return Feedback("Thanks, that's everything.", "success")

    def assistant_message(self, action: str, verdict: Verdict) -> dict:
        """The reply; a reply with calls keeps its text as ``content`` and its calls as ``tool_calls``."""
        ev = verdict.evidence
        if not isinstance(ev, dict) or ev.get("kind") != "tool_results":
            return {"role": "assistant", "content": action}
        tool_calls = [
            {"id": call_id, "type": "function", "function": {"name": c.name, "arguments": dict(c.arguments)}}
            for call_id, c in ev["calls"]
        ]
        return {"role": "assistant", "content": ev["text"], "tool_calls": tool_calls}

    def feedback_messages(self, feedback: Feedback) -> list[dict]:
        """``tool`` messages for call results, else one user message."""
        if feedback.kind == "tool_results":
            return [{"role": "tool", **r} for r in feedback.data["tool_results"]]
        return [{"role": "user", "content": feedback.text}]

    def reference_reply(self, task: Task) -> str | None:
        """The next round of reference calls not yet made, else the answer; None when the world can no
        longer reach the request's goal."""
        request = self._tool_task.requests[self._request]
        for round_ in request.rounds:
            missing = [c for c in round_ if not any(same_call(c, m) for m in self._made)]
            if missing:
                return format_calls(missing)
        if self._world.snapshot() != self._state_goal(self._request):
            return None
        return f"Answer: {request.answer}" if request.answer is not None else "Done."
