"""What the rollout engine shows a person: the live progress display and the summary table.

Kept apart from :mod:`drift_train.rollout` so the engine never imports ``rich`` and other front ends
(notebooks, a web UI) can subscribe to the same events (``rollout(on_event=...)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from drift_train.rollout import RolloutConfig, RolloutStats, make_env, summarize, task_indices

__all__ = ["RolloutProgress", "summary_table"]


class RolloutProgress:
    """Episodes bar with tasks done, the chunk's current turn and live episodes, and tokens/s."""

    def __init__(self, config: RolloutConfig, console: Any = None) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.config = config
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("episodes"),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self.task = None
        self.tasks_total = 0
        self.tasks_done = 0
        self.per_group: dict[Any, int] = {}

    def start(self, done: set[tuple[Any, int]]) -> None:
        env = make_env(self.config.env_id, self.config.effective_env_kwargs)
        self.tasks_total = len(task_indices(self.config, env))
        env.close()
        for prompt_id, _ in done:
            self.per_group[prompt_id] = self.per_group.get(prompt_id, 0) + 1
        self.tasks_done = sum(1 for n in self.per_group.values() if n >= self.config.samples)
        self.progress.start()
        self.task = self.progress.add_task(
            self._description(0.0),
            total=self.tasks_total * self.config.samples,
            completed=len(done),
            status="starting",
        )

    def _description(self, tokens_per_s: float) -> str:
        return (
            f"{self.config.env_id} tasks {self.tasks_done}/{self.tasks_total} "
            f"[dim]{tokens_per_s:,.0f} tok/s[/dim]"
        )

    def event(self, event: dict) -> None:
        if event["event"] == "turn":
            self.progress.update(self.task, status=f"turn {event['turn']}: {event['live']} live")
        elif event["event"] == "chunk" and event["skipped"]:
            self.progress.update(self.task, status="skipping finished tasks")

    def finished(self, record: dict, stats: RolloutStats) -> None:
        count = self.per_group.get(record["prompt_id"], 0) + 1
        self.per_group[record["prompt_id"]] = count
        self.tasks_done += count == self.config.samples
        self.progress.advance(self.task, 1)
        self.progress.update(self.task, description=self._description(stats.tokens_per_s))

    def stop(self) -> None:
        self.progress.stop()


def summary_table(records: Sequence[dict], stats: RolloutStats | None = None, title: str = "rollout summary"):
    """A rich ``Table`` of :func:`summarize` (one row per turn) plus throughput in the caption."""
    from rich.table import Table

    summary = summarize(records)
    table = Table(title=title)
    table.add_column("turn", justify="right")
    table.add_column("episodes reaching it", justify="right")
    table.add_column("accuracy at turn", justify="right")
    table.add_column("success within t", justify="right")
    for t in range(len(summary["reached"])):
        table.add_row(
            str(t + 1),
            str(summary["reached"][t]),
            f"{summary['turn_accuracy'][t]:.1%}",
            f"{summary['success_within'][t]:.1%}",
        )
    caption = [
        f"{summary['episodes']} episodes in {summary['groups']} groups",
        f"format errors {summary['format_error_rate']:.1%} of turns",
        f"mean turns {summary['mean_turns']:.2f}",
    ]
    if summary["undecided_turns"]:  # verdicts the checker could not reach in time, scored as not solved
        caption.append(
            f"{summary['undecided_turns']} turns undecided in {summary['undecided_episodes']} episodes "
            "(no verdict in time: listed in undecided_turns)"
        )
    if stats is not None and stats.episodes:
        caption.append(
            f"{stats.generated_tokens:,} tokens in {stats.wall_s:.1f}s = {stats.tokens_per_s:,.0f} tok/s "
            f"(generation {stats.generate_s:.1f}s, env {stats.env_s:.1f}s)"
        )
    if stats is not None and stats.skipped:
        caption.append(f"{stats.skipped} episodes already in the file (resumed)")
    table.caption = "; ".join(caption)
    return table
