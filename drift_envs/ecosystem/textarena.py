r"""``drift/TextArena-v0``: a single-player TextArena game as a multi-turn env.

TextArena (``pip install 'drift-toolkit[textarena]'``, tested with 0.7.4) registers several hundred
game ids; the single-player ones (GuessTheNumber, Mastermind, Minesweeper, Sudoku, TowerOfHanoi,
2048, ...) are natively multi-turn: each reply is a move, each game message is feedback. This module
makes them a task source of kind ``"textarena"`` (:class:`GameSeeds`: task ``i`` is one game seed)
and an env (:class:`TextArenaEnv`).
"""

from __future__ import annotations

import importlib
import importlib.util
import random
import re
import sys
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from drift_envs.core import EnvOptions, Feedback, MultiTurnTextEnv, Task, Verdict
from drift_envs.ecosystem import require_package
from drift_envs.sources.base import SourceConfig, TaskSource, register_source

__all__ = [
    "GameSeeds",
    "GameSeedsConfig",
    "GameUnavailableError",
    "TextArenaEnv",
    "game_entry_point",
    "is_single_player_game",
    "played_move",
    "single_player_game_ids",
]

_PIN = "textarena==0.7.4"
DEFAULT_SYSTEM_PROMPT = (
    "You are playing a game. Reply with your reasoning if you like, then your move in square brackets, "
    "e.g. [5]."
)
#: game seeds per (seed, split): ``(seed * SEEDS_PER_STREAM + index) * 2 + (split == "train")``
SEEDS_PER_STREAM = 1_000_000
#: TextArena ids that differ from their base id only in the wrappers, which this adapter replaces
_WRAPPER_SUFFIXES = ("-raw", "-train")
_MOVE_RE = re.compile(r"\[([^\[\]]*)\]")
# How each TextArena 0.7.4 single-player game reads its move from a reply, so that info["answer"] is
# the move the game played (not, say, the last bracket of a reply the game read the first one of):
# ("first", pattern): the first match; ("all", pattern): every match, played in turn; ("whole",
# pattern): the stripped reply must be exactly one move. Patterns are written here from each game's
# documented move format; a game missing from the table reads its first bracketed text.
_I = re.IGNORECASE
_MOVE_READERS: dict[str, tuple[str, re.Pattern]] = {
    "GuessTheNumberEnv": ("first", re.compile(r"\[(\d+)\]")),
    "MastermindEnv": ("first", re.compile(r"\[(\d+(?:\s+\d+)*)\]")),
    "MinesweeperEnv": ("first", re.compile(r"\[(\d+\s\d+)\]")),
    "SudokuEnv": ("first", re.compile(r"\[(\d+\s\d+\s\d+)\]")),
    "HangmanEnv": ("first", re.compile(r"\[([a-z]+)\]", _I)),
    "WordleEnv": ("first", re.compile(r"\[(\w+)\]")),
    "WordLadderEnv": ("first", re.compile(r"\[([a-zA-Z]+)\]")),
    "FifteenPuzzleEnv": ("first", re.compile(r"\[([a-zA-Z]+)\]")),
    "GuessWhoEnv": ("first", re.compile(r"\[([a-zA-Z]+)\]")),
    "TwentyQuestionsEnv": ("first", re.compile(r"\[([a-zA-Z\s]+)\]")),
    "FrozenLakeEnv": ("first", re.compile(r"\[\s*(up|down|left|right|w|a|s|d)\s*\]", _I)),
    "SokobanEnv": ("first", re.compile(r"\[(up|down|left|right|w|a|s|d)\]", _I)),
    "BanditEnv": ("first", re.compile(r"\[(.*)\]")),  # greedy: from the first [ to the line's last ]
    "TowerOfHanoiEnv": ("all", re.compile(r"\[([abc]\s*,?\s*[abc])\]", _I)),
    "LogicPuzzleEnv": ("all", re.compile(r"\[([a-zA-Z]+\s+[a-zA-Z]+\s+[XOxo])\]")),
    "WordSearchEnv": ("all", re.compile(r"\[(\d+\s\d+\s\d+\s\d+)\]")),
    "CrosswordsEnv": ("all", re.compile(r"\[(\d+\s\d+\s[a-zA-Z])\]")),
    "CountdownEnv": ("whole", re.compile(r"\[\s*(\d+\s+\d+\s*[+\-*/])\s*\]")),
    "CryptarithmEnv": ("whole", re.compile(r"\[\s*([A-Za-z]\s+\d)\s*\]")),
    "LightsOutEnv": ("whole", re.compile(r"\[(\d+\s+\d+)\]")),
    "PegJumpEnv": ("whole", re.compile(r"\[(\d{1,2}\s*\d{1,2})\]", _I)),
    "RushHourEnv": ("whole", re.compile(r"\[([A-Z][+-])\]", _I)),
    "SecretaryEnv": ("whole", re.compile(r"\[(accept|continue)\]")),
    "SlitherlinkEnv": ("whole", re.compile(r"\[\s*([hv]\s+\d+\s+\d+)\s*\]", _I)),
    "ThreeCardMonteEnv": ("whole", re.compile(r"\[\s*(\d+)\s*\]")),
}
_2048_DIRECTIONS = ("UP", "DOWN", "LEFT", "RIGHT", "W", "A", "S", "D")


def played_move(game: Any, reply: str) -> str | None:
    """The move ``game`` reads from ``reply`` (its bracketed text, spacing collapsed), or None when it
    reads none. Several moves played in turn (TowerOfHanoi ``[A C] [A B]``) are joined by ``"; "``."""
    name = type(game).__name__
    if name == "Game2048Env":  # the last bracket holding a direction, and its last direction
        for inner in reversed(_MOVE_RE.findall(reply)):
            found = [t for t in re.findall(r"\b\w+\b", inner) if t.upper() in _2048_DIRECTIONS]
            if found:
                return found[-1].upper()
        return None
    if name == "BlackjackEnv":
        low = reply.lower()
        return "hit" if "[hit]" in low else "stand" if "[stand]" in low else None
    mode, pattern = _MOVE_READERS.get(name, ("first", _MOVE_RE))
    if mode == "whole":
        text = reply.strip().lower() if name == "SlitherlinkEnv" else reply.strip()
        match = pattern.fullmatch(text)
        return " ".join(match.group(1).split()) if match else None
    if mode == "all":
        moves = [" ".join(m.split()) for m in pattern.findall(reply)]
        return "; ".join(moves) if moves else None
    match = pattern.search(reply)
    return " ".join(match.group(1).split()) if match else None


_NO_MESSAGE = "Your move was accepted. Make your next move."


class GameUnavailableError(RuntimeError):
    """A TextArena game cannot run on this machine (a corpus it downloads, an API key, a package bug)."""


@contextmanager
def _global_rng_kept():
    """Leave the global ``random``/``numpy.random`` states as they were (TextArena draws from them when
    it is imported and when some games are built), and send what game code prints to stderr (RushHour
    prints its puzzle generation; a caller's stdout may be a data stream)."""
    outer_py, outer_np = random.getstate(), np.random.get_state()
    try:
        with redirect_stdout(sys.stderr):
            yield
    finally:
        random.setstate(outer_py)
        np.random.set_state(outer_np)


def _ta() -> Any:
    with _global_rng_kept():
        return require_package("textarena", "textarena", _PIN)


def _registry() -> dict:
    _ta()
    from textarena.envs.registration import ENV_REGISTRY

    return ENV_REGISTRY


def game_entry_point(game: str) -> tuple[str, str, dict]:
    """``(module, class name, registered kwargs)`` of a TextArena game id; ``ValueError`` if unknown."""
    registry = _registry()
    if game not in registry:
        close = sorted(g for g in registry if g.split("-")[0].lower() == game.split("-")[0].lower())
        hint = f" (did you mean {', '.join(close[:6])}?)" if close else ""
        raise ValueError(f"TextArena has no game {game!r}{hint}; see python -m drift_envs.ecosystem.catalog")
    spec = registry[game]
    if not isinstance(spec.entry_point, str):
        module, name = spec.entry_point.__module__, spec.entry_point.__qualname__
    else:
        module, name = spec.entry_point.split(":")
    return module, name, dict(spec.kwargs)


def is_single_player_game(game: str) -> bool:
    """Whether the game's module plays on TextArena's ``SinglePlayerState`` (read from its source,
    so games whose module cannot be imported here are classified too)."""
    module, _, _ = game_entry_point(game)
    top, *parts = module.split(".")
    root = importlib.util.find_spec(top)
    if root is None or not root.submodule_search_locations:
        return False
    # the file is found by path: importing its package would run the package's own imports, which
    # fail for some games (a SyntaxError on this Python) that the catalogue must still list
    base = Path(next(iter(root.submodule_search_locations))).joinpath(*parts)
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return "SinglePlayerState" in path.read_text(encoding="utf-8", errors="replace")
    return False


def single_player_game_ids(include_wrapper_variants: bool = False) -> list[str]:
    """Every single-player TextArena id, sorted; ``-raw``/``-train`` variants only when asked (they
    differ from their base id in the wrappers alone, which this adapter does not use)."""
    return sorted(
        g
        for g in _registry()
        if (include_wrapper_variants or not g.endswith(_WRAPPER_SUFFIXES)) and is_single_player_game(g)
    )


def _unavailable(game: str, err: BaseException) -> GameUnavailableError:
    text = f"{type(err).__name__}: {err}"
    if isinstance(err, LookupError) and "nltk" in text.lower():
        resource = re.search(r"Resource \x1b\[93m(\w+)|Resource (\w+)", text)
        name = next((g for g in (resource.groups() if resource else ()) if g), "words")
        why = (
            f"it needs the NLTK corpus {name!r}, which is not installed and could not be downloaded "
            f"(no network?); install it with `python -m nltk.downloader {name}` where there is network"
        )
    elif "api key" in text.lower() or "openrouter" in text.lower():
        why = "it calls a hosted LLM (OpenRouter) as part of the game, which needs network and an API key"
    elif isinstance(err, SyntaxError):
        why = f"its module does not compile on this Python ({text}); a TextArena bug"
    elif isinstance(err, (FileNotFoundError, ModuleNotFoundError)):
        why = f"a file or module it needs is missing from the installed package ({text})"
    else:
        why = text
    return GameUnavailableError(f"TextArena game {game!r} cannot run here: {why}")


def make_game(game: str, **kwargs: Any) -> Any:
    """The raw TextArena game object (no observation/action wrappers) with ``kwargs`` over the
    registered ones; :class:`GameUnavailableError` when it cannot run on this machine."""
    module, name, registered = game_entry_point(game)
    try:
        with _global_rng_kept():
            cls = getattr(importlib.import_module(module), name)
            return cls(**{**registered, **kwargs})
    except TypeError as err:
        raise ValueError(f"TextArena game {game!r} refused kwargs {kwargs}: {err}") from err
    except (ImportError, LookupError, SyntaxError, OSError, ValueError, AssertionError) as err:
        raise _unavailable(game, err) from err


@dataclass(frozen=True)
class GameSeedsConfig(SourceConfig):
    """Tasks of a TextArena game: one game seed each.

    Args:
        game: the TextArena id (for the task ids).
        size: games per split (indices ``0..size-1``, at most ``SEEDS_PER_STREAM``).
        seed, split, max_tasks: as :class:`~drift_envs.sources.base.SourceConfig`.
    """

    game: str = "GuessTheNumber-v0"
    size: int = 1000

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field."""
        super().validate()
        if self.split not in ("train", "test"):
            raise ValueError(f"GameSeedsConfig.split must be 'train' or 'test', got {self.split!r}")
        if self.seed < 0:
            raise ValueError(f"GameSeedsConfig.seed must be >= 0, got {self.seed}")
        if (
            not isinstance(self.size, int)
            or isinstance(self.size, bool)
            or not 1 <= self.size <= SEEDS_PER_STREAM
        ):
            raise ValueError(
                f"GameSeedsConfig.size must be an int in 1..{SEEDS_PER_STREAM}, got {self.size!r}"
            )


@register_source("textarena", "procedural")
class GameSeeds(TaskSource):
    """Task ``i`` is the game started with seed ``(seed * 1_000_000 + i) * 2 + (split == "train")``:
    the train split's seeds are odd, the test split's even, so the two never share a game seed
    (a small game, e.g. GuessTheNumber's 20 numbers, can still deal the same secret under two seeds)."""

    config_class = GameSeedsConfig

    def __len__(self) -> int:
        return self.limit(self.config.size)

    def id_prefix(self) -> str:
        """``textarena/<game>/<seed>/<split>/`` (the index follows)."""
        c = self.config
        return f"textarena/{c.game}/{c.seed}/{c.split}/"

    def make_task(self, index: int) -> Task:
        """The task of game seed ``index`` (its prompt is made when the game starts)."""
        c = self.config
        game_seed = (c.seed * SEEDS_PER_STREAM + index) * 2 + (1 if c.split == "train" else 0)
        return Task(
            self.task_id(index), f"{c.game} with game seed {game_seed}", None, {"game_seed": game_seed}
        )


def _messages_text(messages: list, player_id: int = 0) -> str:
    """The game's new messages as one user message (the player's own move echoed back is left out)."""
    from textarena.core import ObservationType

    parts = [
        str(text).strip()
        for sender, text, kind in messages
        if not (kind == ObservationType.PLAYER_ACTION and sender == player_id)
    ]
    return "\n\n".join(p for p in parts if p)


def _outcome(reward: Any, reason: Any) -> tuple[float, str | None]:
    """The game's final reward as a float, and its reason.

    Some games (Countdown, Cryptarithm, Slitherlink in 0.7.4) call ``set_invalid_move(progress,
    reason)`` with the arguments swapped, so the "reward" is the reason text and the reason ends in the
    number; read them back the right way round rather than fail on the game's slip.
    """
    if isinstance(reward, (int, float)) and not isinstance(reward, bool):
        return float(reward), None if reason is None else str(reason)
    number = re.search(r"-?\d+(?:\.\d+)?\s*$", str(reason or ""))
    prefix = "Invalid Move: " if str(reason or "").startswith("Invalid Move") else ""
    return (float(number.group(0)) if number else 0.0), f"{prefix}{reward}"


class TextArenaEnv(MultiTurnTextEnv):
    r"""A single-player TextArena game: each reply is a move, the game's messages are the feedback.

    ## Description
    ``game`` is a single-player TextArena id (``GuessTheNumber-v0``, ``Mastermind-v0``,
    ``TowerOfHanoi-v0``, ``Minesweeper-v0``, ``Sudoku-v0``, ``2048-v0``, ...;
    ``python -m drift_envs.ecosystem.catalog`` lists which run offline here). Extra keywords override
    the game's registered kwargs (``max_number=50``). The game runs without TextArena's wrappers: its
    messages are turned into chat messages here (``-raw``/``-train`` ids play the same game).
    Needs the optional extra ``[textarena]``.

    ## Action Space
    ``UnicodeText``: any Unicode string, the model's reply; the game reads the move from it (TextArena
    games take moves in square brackets, ``[5]``, ``[Up]``, ``[1 2 3 4]``).

    ## Observation Space
    ``UnicodeText``: after ``reset``, the game's prompt and its first messages (the board, ...); after
    ``step``, the game's new messages (the player's own move is not echoed), or ``""`` once the
    episode has ended.

    ## Rewards
    ``0.0`` while the game goes on; the game's own reward when it ends (``1.0`` for a win; a loss
    gives what the game gives: often its share of the puzzle done, 0..1, or ``-1``); plus
    ``format_penalty`` (default ``-0.1``) on a reply the game rejected as an invalid move.

    ## Feedback
    The game's messages, e.g. ``The target number is lower.`` or a new board. An invalid move is
    feedback, never a crash: ``You attempted an invalid move. Reason: Invalid move format. Player 0
    did not respond with valid '[number]'. Please resubmit a valid move ...``. TextArena allows one
    invalid move in a row; a second ends the game (``info["game_reason"]`` says why).
    ``info`` after a step adds ``game_reward``, ``game_over``, ``game_reason``, ``invalid_move``.
    ``info["answer"]`` is the move the game played (``"A C"`` for ``[A C]``; the first ``[number]`` of
    ``[maybe] [5] [7]`` in GuessTheNumber, as the game reads it; None when the game read none), so
    ``repeated`` and DRIFT's repeat penalty count a move played twice — right for GuessTheNumber,
    too strict for games that repeat moves by nature (2048): set ``diversity_lambda`` (λ) to 0 there.

    ## Starting State
    ``reset(options={"index": i})`` (or ``{"task_id": ...}``) starts game ``i``, dealt from game seed
    ``(seed * 1_000_000 + i) * 2 + (split == "train")``; the game's random draws run on a private
    generator state (the global ``random``/``numpy.random`` states are left as they were), so game
    ``i`` replays exactly. Without options the index is drawn from the env's ``np_random``.

    ## Episode End
    ``terminated`` when the game ends, won (``info["correct"]``: the game's reward reached
    ``win_reward``) or lost; ``truncated`` after ``max_turns`` replies with the game still going.

    ## Oracle
    ``oracle_reply()`` is the winning move for games whose secret lies in their state
    (GuessTheNumber, Mastermind, ThreeCardMonte); None for every other game (no solver is built in).

    ## Arguments
    - ``game`` (``"GuessTheNumber-v0"``); ``**game_kwargs``: the game's own constructor kwargs
    - ``split`` (``"test"``), ``seed`` (0), ``size`` (1000 games per split), ``max_tasks``
    - ``max_turns``: default twice the game's own turn limit (room for one corrected invalid move
      per move), or 100 for games without one
    - ``win_reward`` (1.0), ``system_prompt``, ``format_penalty`` (-0.1)
    - and every shared kwarg of :class:`~drift_envs.core.EnvOptions` (the base class checks them):
      ``max_text_length`` (65536) and ``render_mode`` too, with the defaults above;
      any other kwarg goes to the game

    ## Example
    >>> import gymnasium as gym, drift_envs
    >>> env = gym.make("drift/TextArena-v0", game="GuessTheNumber-v0")
    >>> obs, info = env.reset(options={"index": 0})
    >>> obs.splitlines()[1]
    'You have to guess the number between 1 and 20 within 10 turns.'
    >>> env.step("[10]")[0]
    'The target number is higher.'
    >>> env.step(env.unwrapped.oracle_reply())[1:3]
    (1.0, True)
    """

    source_kind = "textarena"
    #: game class name -> the winning move read off the game's state
    ORACLES: ClassVar[dict[str, Any]] = {
        "GuessTheNumberEnv": lambda g: f"[{g.game_number}]",
        "MastermindEnv": lambda g: "[" + " ".join(str(d) for d in g.state.game_state["secret_code"]) + "]",
        "ThreeCardMonteEnv": lambda g: f"[{g.ball_pos}]",
    }

    option_defaults = {"system_prompt": DEFAULT_SYSTEM_PROMPT}

    def __init__(
        self,
        *,
        game: str = "GuessTheNumber-v0",
        size: int = 1000,
        win_reward: float = 1.0,
        **kwargs: Any,
    ) -> None:
        if not is_single_player_game(game):
            raise ValueError(
                f"TextArena game {game!r} is not a single-player game; drift/TextArena-v0 plays "
                f"single-player games only (python -m drift_envs.ecosystem.catalog lists them)"
            )
        # the shared kwargs go to the base; every other one is the game's own
        shared = set(EnvOptions.names())
        options = {k: v for k, v in kwargs.items() if k in shared}
        game_kwargs = {k: v for k, v in kwargs.items() if k not in shared}
        self._game = make_game(game, **game_kwargs)
        if options.get("max_turns") is None:  # the game's own limit, twice (a reply may be invalid)
            limit = getattr(self._game, "max_turns", None)
            options["max_turns"] = 2 * int(limit) if isinstance(limit, int) and limit > 0 else 100
        super().__init__(source_knobs={"game": game, "size": size}, **options)
        self.game = game
        self.game_kwargs = dict(game_kwargs)
        self.win_reward = float(win_reward)
        self._py_state: Any = None
        self._np_state: Any = None

    @contextmanager
    def _game_rng(self, reseed: int | None = None):
        """Run game code on the game's own ``random``/``numpy.random`` states, restoring the caller's."""
        outer_py, outer_np = random.getstate(), np.random.get_state()
        try:
            if reseed is not None:
                random.seed(reseed)
                np.random.seed(reseed % 2**32)
            else:
                random.setstate(self._py_state)
                np.random.set_state(self._np_state)
            with redirect_stdout(sys.stderr):  # game code prints (see _global_rng_kept)
                yield
        finally:
            self._py_state, self._np_state = random.getstate(), np.random.get_state()
            random.setstate(outer_py)
            np.random.set_state(outer_np)

    def first_message(self, task: Task) -> str:
        """Start game ``task`` and return its prompt and first messages."""
        from textarena.state import SinglePlayerState

        seed = int(task.meta["game_seed"])
        with self._game_rng(reseed=seed):
            self._game.reset(num_players=1, seed=seed)
            if not isinstance(self._game.state, SinglePlayerState):
                raise ValueError(f"TextArena game {self.game!r} did not start a single-player state")
            _, messages = self._game.get_observation()
        return _messages_text(messages)

    def verify(self, task: Task, action: str) -> Verdict:
        """Play the reply as a move; the verdict says whether the game accepted it and how it stands."""
        state = self._game.state
        answer = played_move(self._game, action)
        with self._game_rng():
            try:
                done, _ = self._game.step(action)
            except Exception as err:  # noqa: BLE001 - a game's own bug on an odd move: feedback, not a crash
                state.set_invalid_move(
                    reason=f"the game could not play this move ({type(err).__name__}: {err})"
                )
                done = bool(state.done)
            _, messages = self._game.get_observation()
        game_info = state.game_info.get(0, {})
        invalid = bool(state.error_count > 0 or game_info.get("invalid_move"))
        reward, reason = 0.0, None
        if done:
            reward, reason = _outcome((state.rewards or {}).get(0, 0.0), game_info.get("reason"))
        info = {
            "game_reward": reward,
            "game_over": bool(done),
            "game_reason": reason,
            "invalid_move": invalid,
        }
        return Verdict(
            correct=bool(done and reward >= self.win_reward),
            format_ok=answer is not None and not invalid,
            answer=answer,
            info=info,
            evidence=_messages_text(messages),
            reward=reward,
            ends_episode=bool(done),  # a lost game ends the episode too
        )

    def make_feedback(self, task: Task, verdict: Verdict, *, turn: int, repeated: bool) -> Feedback:
        """The game's new messages (and, once it is over, why it ended)."""
        text = verdict.evidence or ""
        data = {"invalid_move": verdict.info["invalid_move"], "game_over": verdict.info["game_over"]}
        if verdict.info["game_over"] and verdict.info["game_reason"]:
            text = f"{text}\n\n{verdict.info['game_reason']}".strip()
        kind = "correct" if verdict.correct else ("invalid_move" if data["invalid_move"] else "game")
        return Feedback(text or _NO_MESSAGE, kind, data)

    def reference_reply(self, task: Task) -> str | None:
        """The winning move for GuessTheNumber, Mastermind and ThreeCardMonte; None for other games."""
        oracle = self.ORACLES.get(type(self._game).__name__)
        return None if oracle is None else oracle(self._game)
