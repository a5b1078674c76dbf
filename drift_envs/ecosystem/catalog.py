"""The catalogue: every reasoning-gym dataset and single-player TextArena game, and whether it runs here.

    python -m drift_envs.ecosystem.catalog                   # both packages, a table each
    python -m drift_envs.ecosystem.catalog --package textarena --markdown
    python -m drift_envs.ecosystem.catalog --json catalog.json

Each entry is *probed*, not looked up: a worker process with the network switched off (every socket
connect refused, ``HF_HUB_OFFLINE=1``) builds the env, plays one scripted episode — the oracle reply
where the env has one, else a reply with no move, which the env must turn into feedback — and reports
whether that worked, how long it took and why not. Runs offline means: it ran in that worker, here.
A probe that hangs (a download that waits for a network) is stopped after ``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

__all__ = ["CATALOG_KINDS", "catalog", "markdown_table", "probe", "probe_names"]

CATALOG_KINDS = ("reasoning-gym", "textarena")
#: config a dataset needs before it can make any item (its defaults make none)
PROBE_CONFIG: dict[str, dict] = {
    "composite": {"datasets": [{"name": "basic_arithmetic", "weight": 1.0, "config": {}}]},
}
#: a reply that holds no move and no answer: every env must answer it with feedback
NO_MOVE = "I am not sure yet."


def probe_names(kind: str) -> list[str]:
    """The datasets (``reasoning-gym``) or single-player game ids (``textarena``) the catalogue lists."""
    if kind == "reasoning-gym":
        from drift_envs.ecosystem.reasoning_gym import dataset_names

        return dataset_names()
    if kind == "textarena":
        from drift_envs.ecosystem.textarena import single_player_game_ids

        return single_player_game_ids()
    raise ValueError(f"kind must be one of {CATALOG_KINDS}, got {kind!r}")


def _episode(env: Any, max_steps: int) -> dict:
    """One scripted episode on task 0: the oracle reply while there is one, else a reply with no move."""
    obs, info = env.reset(seed=0, options={"index": 0})
    oracle = env.unwrapped.oracle_reply()
    out: dict = {"oracle": oracle is not None, "steps": 0, "reward": 0.0, "ended": False, "solved": False}
    for _ in range(max_steps):
        reply = env.unwrapped.oracle_reply() or NO_MOVE
        obs, reward, terminated, truncated, info = env.step(reply)
        out["steps"] += 1
        out["reward"] += float(reward)
        if terminated or truncated:
            out.update(ended=True, solved=bool(info["correct"]), terminated=bool(terminated))
            break
    if "score" in info:
        out["score"] = info["score"]
    return out


def probe(kind: str, name: str) -> dict:
    """Build the env of one dataset/game here and play one scripted episode (see the module docstring)."""
    import gymnasium as gym

    import drift_envs  # noqa: F401 - registers drift/* ids

    started = time.perf_counter()
    row: dict = {"kind": kind, "name": name}
    try:
        if kind == "reasoning-gym":
            env = gym.make(
                "drift/ReasoningGym-v0", task=name, size=2, max_turns=2, **PROBE_CONFIG.get(name, {})
            )
        else:
            env = gym.make("drift/TextArena-v0", game=name, size=2, max_turns=4)
        row["make_s"] = round(time.perf_counter() - started, 3)
        row.update(_episode(env, max_steps=4))
        row["runs_offline"] = bool(row["ended"])
        if not row["ended"]:
            row["why"] = "the scripted episode did not end"
    except Exception as err:  # noqa: BLE001 - the catalogue reports every failure, whatever it is
        row.update(runs_offline=False, why=f"{type(err).__name__}: {err}".splitlines()[0][:300])
    row["seconds"] = round(time.perf_counter() - started, 3)
    if name in PROBE_CONFIG:
        row["probe_config"] = PROBE_CONFIG[name]
    return row


def _switch_network_off() -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OSError("the catalogue's offline probe refuses network connections")

    socket.socket.connect = refuse  # type: ignore[method-assign]
    socket.socket.connect_ex = refuse  # type: ignore[method-assign]
    socket.create_connection = refuse  # type: ignore[assignment]
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"


def _worker(kind: str, names: list[str], timeout_s: float) -> int:
    """Probe ``names`` in this process with the network off; one JSON line per name on stdout."""
    _switch_network_off()
    out = sys.stdout
    sys.stdout = sys.stderr  # games print; keep stdout for the results

    def on_alarm(signum: int, frame: Any) -> None:
        raise TimeoutError(f"probe took more than {timeout_s:g} s (a download waiting for a network?)")

    signal.signal(signal.SIGALRM, on_alarm)
    for name in names:
        signal.setitimer(signal.ITIMER_REAL, timeout_s)
        try:
            row = probe(kind, name)
        except TimeoutError as err:
            row = {"kind": kind, "name": name, "runs_offline": False, "why": str(err)}
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        out.write(json.dumps(row) + "\n")
        out.flush()
    return 0


def catalog(kind: str, names: list[str] | None = None, *, timeout_s: float = 60.0) -> list[dict]:
    """Probe every entry of ``kind`` (or ``names``) in worker processes with the network off.

    A worker that dies or hangs loses only the entry it was on (reported as not running); the next
    worker carries on with the rest.
    """
    pending = list(probe_names(kind) if names is None else names)
    rows: dict[str, dict] = {}
    while pending:
        command = [
            sys.executable,
            "-m",
            "drift_envs.ecosystem.catalog",
            "--worker",
            kind,
            "--timeout",
            str(timeout_s),
        ]
        proc = subprocess.Popen(
            command + pending,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("{"):
                row = json.loads(line)
                rows[row["name"]] = row
        proc.wait()
        pending = [n for n in pending if n not in rows]
        if pending:  # the worker died on pending[0]
            rows[pending[0]] = {
                "kind": kind,
                "name": pending[0],
                "runs_offline": False,
                "why": f"the probe process exited with status {proc.returncode}",
            }
            pending = pending[1:]
    order = probe_names(kind) if names is None else names
    return [rows[n] for n in order if n in rows]


def _status(row: dict) -> str:
    return "yes" if row["runs_offline"] else "no"


def _scripted(row: dict) -> str:
    if not row["runs_offline"]:
        return "—"
    if row.get("oracle"):
        return "oracle solves" if row.get("solved") else "oracle does not solve"
    return "no oracle; ends on a reply without a move" if row.get("terminated") else "no oracle; truncated"


def _why(row: dict) -> str:
    """The reason a row does not run, without its own name (so equal reasons group together)."""
    why = row.get("why", "")
    if "cannot run here: " in why:
        why = why.split("cannot run here: ", 1)[1]
    return why.replace("|", "\\|")


def markdown_table(rows: list[dict]) -> str:
    """The README table of one package: entries grouped by outcome (runs offline, the scripted
    episode, why not), each group with its names and its slowest probe."""
    kind = rows[0]["kind"] if rows else ""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((_status(r), _scripted(r), _why(r)), []).append(r)
    head = "datasets" if kind == "reasoning-gym" else "games"
    lines = [
        f"| runs offline | scripted episode | {head} | slowest probe (s) | why not |",
        "|---|---|---|---|---|",
    ]
    for (status, scripted, why), members in sorted(
        groups.items(), key=lambda g: (g[0][0] != "yes", -len(g[1]))
    ):
        names = ", ".join(f"`{r['name']}`" for r in members)
        slowest = max(float(r.get("seconds", 0.0)) for r in members)
        lines.append(f"| {status} | {scripted} | {len(members)}: {names} | {slowest:.2f} | {why} |")
    ok = sum(r["runs_offline"] for r in rows)
    lines += ["", f"{ok} of {len(rows)} run offline here."]
    return "\n".join(lines)


def _print_table(rows: list[dict], kind: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{kind}: {sum(r['runs_offline'] for r in rows)} of {len(rows)} run offline here")
    for column in ("name", "runs offline", "scripted episode", "s", "why not"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(r["name"], _status(r), _scripted(r), str(r.get("seconds", "")), r.get("why", ""))
    Console().print(table)


def main(argv: list[str] | None = None) -> int:
    """``python -m drift_envs.ecosystem.catalog``: probe and list (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m drift_envs.ecosystem.catalog",
        description="List every reasoning-gym dataset and single-player TextArena game and whether it "
        "runs offline here (each is probed with the network off).",
    )
    parser.add_argument("--package", choices=(*CATALOG_KINDS, "all"), default="all")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds one probe may take")
    parser.add_argument("--markdown", action="store_true", help="print the README tables (Markdown)")
    parser.add_argument("--json", default=None, help="also write every row to this JSON file")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("names", nargs="*", help="only these datasets/games")
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args.worker, args.names, args.timeout)
    from drift_envs.ecosystem import MissingPackageError

    kinds = CATALOG_KINDS if args.package == "all" else (args.package,)
    everything: list[dict] = []
    for kind in kinds:
        try:
            rows = catalog(kind, args.names or None, timeout_s=args.timeout)
        except MissingPackageError as err:
            print(f"{kind}: {err}", file=sys.stderr)
            continue
        everything += rows
        if args.markdown:
            print(f"#### {kind}\n\n{markdown_table(rows)}\n")
        else:
            _print_table(rows, kind)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(everything, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
