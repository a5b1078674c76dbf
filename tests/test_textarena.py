"""drift/TextArena-v0: scripted episodes in every single-player TextArena game that runs offline, the
env contract (check_env, Text spaces, info["messages"]), the game's reward and end, invalid moves as
feedback, determinism; the games that cannot run here fail with a reason; ``drift rollout`` and
``drift eval`` on it with the tiny model."""

from __future__ import annotations

import json
import random
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

pytest.importorskip(
    "textarena",
    reason="the optional package textarena is not installed (pip install 'drift-toolkit[textarena]')",
)

from conftest import drift_rollout_records  # noqa: E402

import drift_envs  # noqa: E402,F401 - registers drift/* ids
from drift_envs.core import UnicodeText  # noqa: E402
from drift_envs.ecosystem.catalog import NO_MOVE, catalog  # noqa: E402
from drift_envs.ecosystem.textarena import GameUnavailableError, single_player_game_ids  # noqa: E402
from drift_train.cli import main as drift_main  # noqa: E402

ENV_ID = "drift/TextArena-v0"
#: measured with textarena 0.7.4 on a machine without network: (game id prefix, why it cannot run)
UNAVAILABLE = {
    "Hangman-v0": "NLTK corpus 'words'",
    "WordLadder-v0": "NLTK corpus 'words'",
    "WordSearch-v0": "NLTK corpus 'words'",
    "Wordle-v0": "NLTK corpus 'words'",
    "GuessWho-v0": "OpenRouter",
    "TwentyQuestions-v0": "OpenRouter",
    "Klondike-v0": "does not compile",
    "UltimateTexasHoldem-v0": "does not compile",
}
#: a few plausible moves per game class (the rest of an episode is replies without a move, which the
#: game answers with feedback and then, at the second in a row, ends the game)
MOVES = {
    "TowerOfHanoiEnv": ["[A C]", "[A B]", "[C B]", "[A C]", "[B A]", "[B C]", "[A C]"],  # solves 3 disks
    "Game2048Env": ["[Up]", "[Left]", "[Down]", "[Right]"],
    "BanditEnv": ["[red]", "[blue]"],
    "BlackjackEnv": ["[Hit]", "[Stand]"],
    "FifteenPuzzleEnv": ["[down]", "[left]"],
    "FrozenLakeEnv": ["[down]", "[right]"],
    "LightsOutEnv": ["[0 0]", "[1 1]"],
    "MastermindEnv": ["[1 2 3 4]", "[2 3 4 5]"],
    "MinesweeperEnv": ["[3 3]", "[0 0]"],
    "RushHourEnv": ["[A+]", "[B-]"],
    "SecretaryEnv": ["[continue]", "[accept]"],
    "SetEnv": ["[1, 2, 3]"],
    "SokobanEnv": ["[up]", "[left]"],
    "SudokuEnv": ["[1 4 2]"],
    "ThreeCardMonteEnv": ["[0]"],
    "CountdownEnv": ["[0 1 +]"],
    "CryptarithmEnv": ["[S 9]"],
    "SlitherlinkEnv": ["[h 0 0]"],
    "PegJumpEnv": ["[4 1]"],
    "CrosswordsEnv": ["[0 0 A]"],
    "LogicPuzzleEnv": ["[alice pizza X]"],
}
STEP_KEYS = {
    "task_id",
    "turn",
    "max_turns",
    "messages",
    "correct",
    "format_ok",
    "answer",
    "repeated",
    "feedback",
}
GAME_KEYS = {"game_reward", "game_over", "game_reason", "invalid_move"}


def unavailable_reason(game: str) -> str | None:
    return next((why for prefix, why in UNAVAILABLE.items() if game.startswith(prefix)), None)


def play(env: gym.Env, moves: list[str]) -> list[tuple]:
    """Play ``moves``, then replies without a move until the episode ends; every step checked."""
    obs, info = env.reset(seed=0, options={"index": 0})
    assert obs and info["messages"][-1] == {"role": "user", "content": obs}
    steps = []
    for turn in range(1, env.unwrapped.max_turns + 1):
        reply = moves[turn - 1] if turn <= len(moves) else NO_MOVE
        obs, reward, terminated, truncated, info = env.step(reply)
        steps.append((reply, obs, reward, terminated, truncated, info))
        assert STEP_KEYS | GAME_KEYS <= set(info) and info["turn"] == turn
        assert info["messages"][-1]["role"] == ("assistant" if terminated or truncated else "user")
        assert reward == pytest.approx(info["game_reward"] + (0.0 if info["format_ok"] else -0.1))
        if info["invalid_move"] and not info["game_over"]:
            assert "invalid move" in obs.lower() and info["feedback"]["kind"] == "invalid_move"
        if terminated or truncated:
            assert obs == "" and terminated == info["game_over"]
            break
        assert obs and info["game_reward"] == 0.0
    else:
        pytest.fail("the episode did not end within max_turns")
    json.dumps([s[5] for s in steps])  # info stays JSON-able
    return steps


@pytest.mark.parametrize("game", single_player_game_ids())
def test_scripted_episode_in_every_single_player_game(game: str) -> None:
    why = unavailable_reason(game)
    try:
        env = gym.make(ENV_ID, game=game, size=2)
    except GameUnavailableError as err:
        assert why is not None, f"{game} was expected to run here: {err}"
        assert why in str(err) and game in str(err)
        return
    steps = play(env, MOVES.get(type(env.unwrapped._game).__name__, []))
    roles = [m["role"] for m in steps[-1][5]["messages"]]
    assert roles[:2] == ["system", "user"] and roles[2:] == ["assistant", "user"] * (len(steps) - 1) + [
        "assistant"
    ]


def test_tower_of_hanoi_solved_by_script_is_a_win() -> None:
    env = gym.make(ENV_ID, game="TowerOfHanoi-v0")
    steps = play(env, MOVES["TowerOfHanoiEnv"])
    reply, obs, reward, terminated, truncated, info = steps[-1]
    assert len(steps) == 7 and (reward, terminated, truncated) == (1.0, True, False)
    assert info["correct"] and info["game_reward"] == 1.0 and info["feedback"]["kind"] == "correct"
    assert [s[5]["answer"] for s in steps][:2] == ["A C", "A B"]


def test_lost_game_terminates_with_the_game_reward() -> None:
    env = gym.make(ENV_ID, game="ThreeCardMonte-v0")
    env.reset(options={"index": 0})
    wrong = next(f"[{k}]" for k in range(3) if f"[{k}]" != env.unwrapped.oracle_reply())
    obs, reward, terminated, truncated, info = env.step(wrong)
    assert (obs, reward, terminated, truncated) == ("", 0.0, True, False)
    assert info["game_over"] and not info["correct"] and "ball was under cup" in info["feedback"]["text"]


def test_invalid_moves_are_feedback_then_end_the_game() -> None:
    env = gym.make(ENV_ID, game="GuessTheNumber-v0")
    env.reset(options={"index": 0})
    obs, reward, terminated, truncated, info = env.step("eleven")
    assert not (terminated or truncated) and reward == -0.1 and not info["format_ok"]
    assert obs.startswith("You attempted an invalid move.") and info["answer"] is None
    obs, reward, terminated, truncated, info = env.step("[99]")  # out of range: a second invalid move
    assert terminated and obs == "" and info["answer"] == "99" and info["game_over"]
    assert info["game_reason"].startswith("Invalid Move") and reward == pytest.approx(
        info["game_reward"] - 0.1
    )


@pytest.mark.parametrize("game", ["Countdown-v0", "Cryptarithm-v0", "Slitherlink-v0"])
def test_games_with_swapped_invalid_move_arguments_still_report_reward_and_reason(game: str) -> None:
    """These games pass (progress, reason) to set_invalid_move the wrong way round (textarena 0.7.4)."""
    env = gym.make(ENV_ID, game=game)
    env.reset(options={"index": 0})
    env.step(NO_MOVE)
    _, reward, terminated, _, info = env.step(NO_MOVE)
    assert terminated and isinstance(info["game_reward"], float) and 0.0 <= info["game_reward"] <= 1.0
    assert info["game_reason"].startswith("Invalid Move: ") and "format" in info["game_reason"].lower()


def test_oracle_and_determinism() -> None:
    env = gym.make(ENV_ID, game="GuessTheNumber-v0", size=30)
    random.seed(7)
    np.random.seed(7)
    expected_py, expected_np = random.random(), np.random.random()
    random.seed(7)
    np.random.seed(7)
    secrets = []
    for i in range(30):
        env.reset(options={"index": i})
        env.step("[10]")
        secrets.append(env.unwrapped.oracle_reply())
    assert (random.random(), np.random.random()) == (expected_py, expected_np)  # global RNGs untouched
    assert len(set(secrets)) > 5
    other = gym.make(ENV_ID, game="GuessTheNumber-v0", size=30)
    other.reset(options={"index": 3})
    other.step("[1]")
    replay = []
    for i in reversed(range(30)):
        other.reset(options={"index": i})
        replay.append(other.unwrapped.oracle_reply())
    assert replay[::-1] == secrets
    for i in (0, 7):
        env.reset(options={"index": i})
        reply = env.unwrapped.oracle_reply()
        assert env.step(reply)[1:3] == (1.0, True)
    train = gym.make(ENV_ID, game="GuessTheNumber-v0", split="train").unwrapped
    _, info = train.reset(options={"index": 2})
    assert info["task_id"] == "textarena/GuessTheNumber-v0/0/train/2"
    assert train.task.meta["game_seed"] % 2 == 1 and env.unwrapped.task.meta["game_seed"] % 2 == 0
    assert train.reset(options={"task_id": info["task_id"]})[1]["index"] == 2


def test_game_prints_go_to_stderr(capsys: pytest.CaptureFixture) -> None:
    env = gym.make(ENV_ID, game="RushHour-v0", size=2)
    env.reset(options={"index": 0})
    env.step("[A+]")
    out, err = capsys.readouterr()
    assert out == "" and "Generated puzzle in" in err


@pytest.mark.parametrize("game", ["GuessTheNumber-v0", "TowerOfHanoi-v0", "Minesweeper-v0", "2048-v0"])
def test_env_checker_and_text_spaces(game: str) -> None:
    env = gym.make(ENV_ID, game=game, size=3)
    check_env(env.unwrapped)
    assert isinstance(env.observation_space, UnicodeText) and isinstance(env.action_space, UnicodeText)


def test_game_kwargs_and_refusals() -> None:
    env = gym.make(ENV_ID, game="GuessTheNumber-v0", max_number=50, max_turns=3)
    assert "between 1 and 50" in env.reset(options={"index": 0})[0] and env.unwrapped.max_turns == 3
    assert gym.make(ENV_ID, game="GuessTheNumber-v0").unwrapped.max_turns == 20  # twice the game's 10
    with pytest.raises(ValueError, match="not a single-player game"):
        gym.make(ENV_ID, game="Chess-v0")
    with pytest.raises(ValueError, match="no game 'GuessTheNumbr-v0'"):
        gym.make(ENV_ID, game="GuessTheNumbr-v0")
    with pytest.raises(ValueError, match="refused kwargs"):
        gym.make(ENV_ID, game="GuessTheNumber-v0", colour="red")


def test_catalogue_probes_with_the_network_off() -> None:
    rows = {r["name"]: r for r in catalog("textarena", ["GuessTheNumber-v0", "Wordle-v0", "Sokoban-v0"])}
    assert rows["GuessTheNumber-v0"]["runs_offline"] and rows["GuessTheNumber-v0"]["solved"]
    assert rows["Sokoban-v0"]["runs_offline"] and not rows["Sokoban-v0"]["oracle"]
    wordle = rows["Wordle-v0"]
    assert wordle["runs_offline"] or "NLTK corpus 'words'" in wordle["why"]


# ---- drift rollout / drift eval on the tiny model --------------------------------------------------
ENV_KWARGS = {"game": "GuessTheNumber-v0", "max_turns": 3}


def test_drift_rollout_on_textarena(tiny_model_dir: Path, tmp_path: Path) -> None:
    records = drift_rollout_records(ENV_ID, ENV_KWARGS, tiny_model_dir, tmp_path / "ta.jsonl")
    assert len(records) == 4 and all(r["env_id"] == ENV_ID for r in records)
    assert all(r["task_id"].startswith("textarena/GuessTheNumber-v0/0/test/") for r in records)
    assert all(1 <= r["meta"]["num_turns"] <= 3 for r in records)


def test_drift_eval_on_textarena(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval" / "metrics.json"
    argv = ["eval", "--model", str(tiny_model_dir), "--env", ENV_ID, "--env-kwargs", json.dumps(ENV_KWARGS)]
    argv += ["--num-tasks", "3", "--max-new-tokens", "8", "--out", str(out)]
    assert drift_main(argv) == 0
    metrics = json.loads(out.read_text())
    assert metrics["env"] == ENV_ID and metrics["num_episodes"] == 3 and metrics["max_turns"] == 3
