"""``drift demo``: one scripted MathFeedback episode, printed turn by turn (no model needed)."""

from __future__ import annotations

from dataclasses import dataclass, field

import gymnasium as gym
from rich.console import Console

import drift_envs  # noqa: F401  (registers the ids)
from drift_envs.math.env import FEEDBACK_MODES
from drift_train.commands._args import DataclassArgumentParser


@dataclass
class DemoConfig:
    """The episode ``drift demo`` plays.

    Args:
        index: procedural task index
        feedback: what the env says after a wrong reply
    """

    index: int = 1
    feedback: str = field(default="hint", metadata={"choices": FEEDBACK_MODES})


def build_parser():
    """The ``drift demo`` parser: one flag per :class:`DemoConfig` field."""
    parser = DataclassArgumentParser(prog="drift demo", description=__doc__)
    parser.add_dataclass(DemoConfig)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Play a wrong reply, a reply without an answer, then the right answer, showing each feedback."""
    parser = build_parser()
    args = parser.build(DemoConfig, parser.parse_args(argv))
    console = Console()
    env = gym.make("drift/MathFeedback-v0", feedback=args.feedback, max_turns=4)
    obs, info = env.reset(seed=0, options={"index": args.index})
    console.rule(f"task {info['task_id']}")
    console.print(f"[bold]user:[/bold] {obs}")
    gold = env.unwrapped.task.answer
    for reply in (f"\\boxed{{{gold}1}}", "Let me think...", f"So the answer is \\boxed{{{gold}}}."):
        obs, reward, terminated, truncated, info = env.step(reply)
        console.print(f"[bold cyan]assistant:[/bold cyan] {reply}")
        console.print(f"  reward={reward:+.1f} correct={info['correct']} format_ok={info['format_ok']}")
        if obs:
            console.print(f"[bold]user:[/bold] {obs}")
        if terminated or truncated:
            break
    console.print(f"solved on turn {info['turn']} of {info['max_turns']}")
    return 0
