"""drift/TextArena-v0: ``info["answer"]`` is the move the game played, read the way each game reads it
(the env used to record the reply's last bracket while GuessTheNumber plays the first ``[number]``)."""

from __future__ import annotations

import gymnasium as gym
import pytest

pytest.importorskip("textarena", reason="the optional package textarena is not installed")

import drift_envs  # noqa: E402,F401 - registers drift/* ids

ENV_ID = "drift/TextArena-v0"


def start(game: str, index: int = 0):
    env = gym.make(ENV_ID, game=game)
    env.reset(options={"index": index})
    return env, env.unwrapped._game


def test_guess_the_number_records_the_number_it_played() -> None:
    env, game = start("GuessTheNumber-v0")
    target = game.game_number
    first, decoy = (1, 2) if target not in (1, 2) else (3, 4)
    *_, info = env.step(f"[maybe] [{first}] [{decoy}]")
    assert info["answer"] == str(first) and game.guessed_numbers == {first}
    # the played move is what repeats: the game refuses the number again, and the env says it repeated
    *_, info = env.step(f"[{first}] [{target}]")
    assert info["answer"] == str(first) and info["repeated"] is True and info["invalid_move"] is True


def test_mastermind_records_the_first_code() -> None:
    env, game = start("Mastermind-v0")
    *_, info = env.step("[1 2 3 4] or rather [5 6 1 2]")
    assert info["answer"] == "1 2 3 4"
    assert game.state.game_state["history"][-1]["guess"] == [1, 2, 3, 4]


def test_tower_of_hanoi_records_every_move_it_played() -> None:
    env, game = start("TowerOfHanoi-v0")
    *_, info = env.step("[A C] [A, B]")
    assert info["answer"] == "A C; A, B"
    assert game.state.game_state["towers"]["C"] == [1] and game.state.game_state["towers"]["B"] == [2]


def test_2048_records_the_last_direction() -> None:
    env, _ = start("2048-v0")
    *_, info = env.step("[up] no, wait: [left]")
    assert info["answer"] == "LEFT"


def test_a_game_that_takes_only_a_whole_reply_records_no_move_for_more() -> None:
    env, _ = start("ThreeCardMonte-v0")
    *_, info = env.step("[1] [2]")
    assert info["answer"] is None and info["invalid_move"] is True and not info["format_ok"]
    *_, info = env.step(" [2] ")
    assert info["answer"] == "2" and info["format_ok"]
