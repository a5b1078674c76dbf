"""One CLI style for every ``drift`` subcommand (issue 14, point 6).

Every command's flags come from its config dataclass (:mod:`drift_train.commands._args`; ``drift train``'s from
``HfArgumentParser``): both spellings parse to the same values, the parsed defaults are the dataclass
defaults, unknown flags and abbreviations fail with a message, help shows one spelling, and ``--model tiny``
is the embedded model (``drift eval --model tiny`` runs end to end).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import io
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from drift_train import cli
from drift_train.commands._args import (
    DataclassArgumentParser,
    HelpFormatter,
    field_help,
    json_object,
    resolve_model,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# the least each command needs to parse
REQUIRED: dict[str, list[str]] = {
    "demo": [],
    "tiny-model": ["--out", "tiny-out"],
    "model": ["import", "m.gguf"],
    "rollout": ["--env", "drift/MathFeedback-v0", "--model", "m", "--out", "o.jsonl"],
    "merge": ["out.jsonl", "a.jsonl"],
    "weights": ["in.jsonl", "--out", "o.jsonl"],
    "render": ["--data", "d.jsonl", "--model", "m"],
    "train": ["--data", "d.jsonl", "--model", "m", "--output_dir", "out"],
    "eval": ["--out", "m.json"],
    "online-rl": ["--model", "m"],
    "quickstart": [],
    "report": ["run"],
    "serve-env": ["--env", "drift/MathFeedback-v0", "--port", "8000"],
}

# defaults a command sets apart from its dataclass's by design: None, then decided from another flag
BY_DESIGN = {
    "rollout": {"batch_size"},  # per backend: BATCH_SIZES
    "quickstart": {"env_kwargs", "max_new_tokens"},  # the chosen env's preset
}


def test_every_command_has_a_required_argv_here() -> None:
    assert set(REQUIRED) == set(cli.COMMANDS)


def _parser(name: str) -> argparse.ArgumentParser:
    module = importlib.import_module(cli.COMMANDS[name][0])
    assert hasattr(module, "build_parser"), f"drift {name}: its module has no build_parser()"
    return module.build_parser()


def _value_for(action: argparse.Action) -> list[str]:
    """Tokens that set ``action`` to something other than its default."""
    if action.nargs == 0:
        return []
    if action.choices:
        choices = [c for c in action.choices if c != action.default]
        return [str(choices[0])]
    if getattr(action.type, "__name__", "") in ("bool", "string_to_bool"):  # ours and HfArgumentParser's
        return ["false" if action.default else "true"]
    if action.type is json_object:
        return ['{"k": 1}']
    token = {int: "7", float: "0.37"}.get(action.type, "x")
    return [token]


def _flag_actions(parser: argparse.ArgumentParser, only: set[str] | None = None) -> list[argparse.Action]:
    """One optional action per dest (the first: ``--x`` rather than its ``--no-x``)."""
    seen, actions = set(), []
    for action in parser._actions:
        if not action.option_strings or action.dest in ("help", "config") or action.dest in seen:
            continue
        if only is not None and action.dest not in only:
            continue
        seen.add(action.dest)
        actions.append(action)
    return actions


def _spelling(action: argparse.Action, underscore: bool) -> str:
    longs = [o for o in action.option_strings if o.startswith("--")]
    wanted = [o for o in longs if ("_" in o) == underscore] or longs
    return wanted[0]


def _train_flags() -> set[str]:
    """drift train: every DriftConfig field of its own and a handful of TrainingArguments ones."""
    from transformers import TrainingArguments

    from drift_train.trainer import DriftConfig

    own = {f.name for f in dataclasses.fields(DriftConfig)} - {
        f.name for f in dataclasses.fields(TrainingArguments)
    }
    return own | {
        "num_train_epochs",
        "learning_rate",
        "per_device_train_batch_size",
        "report_to",
        "disable_tqdm",
    }


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_both_spellings_of_every_flag_parse_to_the_same_values(name: str) -> None:
    parser = _parser(name)
    for action in parser._actions:  # every long flag has both spellings
        for option in action.option_strings:
            if option.startswith("--"):
                for other in (option.replace("_", "-"), "--" + option[2:].replace("-", "_")):
                    assert parser._option_string_actions.get(other) is action, f"drift {name}: {other}"
    actions = _flag_actions(parser, _train_flags() if name == "train" else None)
    positional = [t for t in REQUIRED[name] if not t.startswith("-")][
        : {"weights": 1, "report": 1, "model": 2, "merge": 2}.get(name, 0)
    ]
    argvs = {}
    for underscore in (False, True):
        argv = [tok for action in actions for tok in (_spelling(action, underscore), *_value_for(action))]
        argvs[underscore] = argv + positional
    dash, under = (vars(parser.parse_args(argv)) for argv in argvs.values())
    assert dash == under
    defaults = vars(parser.parse_args(REQUIRED[name]))
    for action in actions:  # each flag took effect (so a spelling bound to the wrong dest would show)
        if action.dest not in ("output_dir",):
            assert dash[action.dest] != defaults[action.dest], f"drift {name}: {action.option_strings[0]}"
    # demo and merge have no flag of two words
    assert actions and (name in ("demo", "merge") or any("-" in a.option_strings[0][2:] for a in actions))


@pytest.mark.parametrize("name", [n for n in cli.COMMANDS if n != "train"])
def test_parsed_defaults_are_the_dataclass_defaults(name: str) -> None:
    """Every flag's default is its dataclass field's, or the field's value in the instance the command
    declares as its defaults (``drift eval``'s greedy one-sample RolloutConfig: ``defaults_of``)."""
    parser = _parser(name)
    assert isinstance(parser, DataclassArgumentParser) and parser.dataclasses
    args = parser.parse_args(REQUIRED[name])
    required = {a.dest for a in parser._actions if a.required}  # given on the command line
    for cls in parser.dataclasses:
        declared = parser.defaults_of(cls)
        for f in dataclasses.fields(cls):
            if f.name in BY_DESIGN.get(name, ()) or f.name in required or not hasattr(args, f.name):
                continue
            if dataclasses.is_dataclass(f.type) or f.name == "sampling":
                source = declared if declared is not None else cls(**_required_values(cls, args))
                nested = getattr(source, f.name)
                for g in dataclasses.fields(nested):
                    if hasattr(args, g.name) and g.name != "seed":
                        assert getattr(args, g.name) == getattr(nested, g.name), f"{name}: {g.name}"
                continue
            if declared is not None:
                assert getattr(args, f.name) == getattr(declared, f.name), f"drift {name} --{f.name}"
                continue
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                continue  # required: given on the command line
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            assert getattr(args, f.name) == default, f"drift {name} --{f.name}"


def _required_values(cls: type, args: argparse.Namespace) -> dict:
    return {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }


def test_drift_train_defaults_are_drift_configs(tmp_path: Path) -> None:
    from drift_train.commands.train import parse_config
    from drift_train.trainer import DriftConfig

    parsed = parse_config(["--data", "d.jsonl", "--model", "m", "--output_dir", str(tmp_path)])
    direct = DriftConfig(data="d.jsonl", model="m", output_dir=str(tmp_path))
    assert parsed.to_dict() == direct.to_dict()


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_unknown_flags_and_abbreviations_fail_with_a_message(
    name: str, capsys: pytest.CaptureFixture
) -> None:
    parser = _parser(name)
    with pytest.raises(SystemExit) as exc:
        parser.parse_args([*REQUIRED[name], "--no-such-flag", "1"])
    assert exc.value.code == 2
    assert "--no-such-flag" in capsys.readouterr().err
    longest = max((o for a in parser._actions for o in a.option_strings), key=len)
    abbreviation = longest[:-2]
    assert abbreviation not in parser._option_string_actions
    with pytest.raises(SystemExit) as exc:
        parser.parse_args([*REQUIRED[name], abbreviation, "1"])
    assert exc.value.code == 2
    assert abbreviation in capsys.readouterr().err


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_help_shows_one_spelling(name: str, capsys: pytest.CaptureFixture) -> None:
    parser = _parser(name)
    formatter = parser._get_formatter()
    assert isinstance(formatter, HelpFormatter)
    for action in parser._actions:
        shown = formatter._format_action_invocation(action)
        flags = [tok.rstrip(",") for tok in shown.split() if tok.startswith("--")]
        assert all("_" not in flag for flag in flags), f"drift {name}: {shown}"
        assert len(flags) == len({f.replace("_", "-") for f in flags})
    try:  # argparse exits after printing help; drift rollout returns the status instead
        status = cli.main([name, "--help"])
    except SystemExit as exit_:
        status = exit_.code
    assert status == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: drift {name}")
    assert "--" in out and not any(
        tok.startswith("--") and "_" in tok for tok in out.split("\n", 1)[0].split()
    )


def test_library_modules_hold_no_command_line() -> None:
    """Issue 24.3: every drift_train module outside drift_train/commands (and the dispatcher) imports no
    CLI module and has no argparse, no ``main`` and no ``__main__`` block; every command is a commands module."""
    import ast

    root = Path(cli.__file__).parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent)
        if rel.parts[1] == "commands" or path == Path(cli.__file__):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            if any(n == "argparse" or n.startswith("drift_train.commands") for n in names):
                offenders.append(f"{rel}:{node.lineno} imports {names}")
            if isinstance(node, ast.ImportFrom) and node.module == "drift_train":
                if any(a.name == "commands" for a in node.names):
                    offenders.append(f"{rel}:{node.lineno} imports drift_train.commands")
            if isinstance(node, ast.Compare) and ast.unparse(node) == "__name__ == '__main__'":
                offenders.append(f"{rel}:{node.lineno} has a __main__ block")
        offenders += [
            f"{rel}: defines main()" for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main"
        ]
    assert not offenders, offenders
    assert all(module.startswith("drift_train.commands.") for module, _ in cli.COMMANDS.values())


def test_drift_help_lists_every_command() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from drift_train.cli import main; sys.exit(main(['--help']))"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    listed = [line.split()[0] for line in done.stdout.splitlines() if line.startswith("  ")]
    assert listed == list(cli.COMMANDS)
    assert "--dash-case and --under_score" in done.stdout
    assert cli.main(["no-such-command"]) == 2


# --------------------------------------------------------------------------------------------------
# JSON flags, bools, nested dataclasses


def test_json_flags_parse_to_objects_and_reject_anything_else(capsys: pytest.CaptureFixture) -> None:
    from drift_train.commands.rollout import build_parser, policy_kwargs

    parser = build_parser()
    args = parser.parse_args(
        [
            *REQUIRED["rollout"],
            "--env_kwargs",
            '{"feedback": "hint"}',
            "--chat-template-kwargs",
            '{"enable_thinking": false}',
            "--vllm_kwargs",
            '{"enforce_eager": true}',
            "--backend",
            "vllm",
        ]
    )
    assert args.env_kwargs == {"feedback": "hint"}
    kwargs = policy_kwargs(args)
    assert kwargs["chat_template_kwargs"] == {"enable_thinking": False} and kwargs["enforce_eager"] is True
    for flag, text, message in (
        ("--env-kwargs", "[1]", "--env-kwargs is not a JSON object (a list"),
        ("--vllm_kwargs", "{oops", "--vllm-kwargs is not valid JSON"),
        ("--chat-template-kwargs", '"x"', "--chat-template-kwargs is not a JSON object (a str"),
    ):
        with pytest.raises(SystemExit) as exc:
            parser.parse_args([*REQUIRED["rollout"], flag, text])
        assert exc.value.code == 2
        assert message in capsys.readouterr().err


def test_readme_flags_keep_working() -> None:
    from drift_train.commands.rollout import RolloutCommand
    from drift_train.commands.rollout import build_parser as rollout_parser
    from drift_train.commands.weights import build_parser as weights_parser
    from drift_train.rollout import RolloutConfig
    from drift_train.weights import WeightConfig

    parser = rollout_parser()
    args = parser.parse_args(
        "--env drift/MathFeedback-v0 --model tiny --num-tasks 200 --samples 8 --temperature 1.0 "
        "--max-new-tokens 64 --out rollouts.jsonl --resume --no-progress --no-token-ids "
        "--schedule continuous --prefix-cache-mb 0 --base-url http://a/v1,http://b/v1".split()
    )
    config = parser.build(RolloutConfig, args, batch_size=64)
    command = parser.build(RolloutCommand, args)
    assert (config.num_tasks, config.samples, config.sampling.max_new_tokens) == (200, 8, 64)
    assert config.record_tokens is False and config.schedule == "continuous"
    assert command.resume is True and command.progress is False and args.prefix_cache_mb == 0.0
    parser = weights_parser()
    # a bare bool flag before the positional file does not swallow it
    args = parser.parse_args(
        "--per-turn rollouts.jsonl --out w.jsonl --gamma 0.7 --beta 0.2 --lambda 0 --clip 5".split()
    )
    weights = parser.build(WeightConfig, args)
    assert args.input == "rollouts.jsonl" and weights.per_turn is True
    assert (weights.gamma, weights.beta, weights.diversity_lambda, weights.clip_max) == (0.7, 0.2, 0.0, 5.0)


def test_drift_eval_and_drift_rollout_share_every_sampling_backend_and_display_flag() -> None:
    """One generated flag set (issue 24.1): each RolloutConfig field (sampling flattened), each backend option
    and the model/backend/progress flags are the same flag on both commands; only defaults may differ."""
    from drift_train.commands.eval import build_parser as eval_parser
    from drift_train.commands.rollout import PolicyFlags
    from drift_train.commands.rollout import build_parser as rollout_parser
    from drift_train.policies import SamplingParams
    from drift_train.policies.options import HFOptions, OpenAIOptions, PolicyOptions, VLLMOptions
    from drift_train.rollout import RolloutConfig

    names = lambda cls: {f.name for f in dataclasses.fields(cls)}  # noqa: E731
    shared = (names(RolloutConfig) - {"sampling"}) | (names(SamplingParams) - {"n", "stop", "seed"})
    shared |= names(PolicyFlags) | names(PolicyOptions) | names(HFOptions) | names(OpenAIOptions)
    shared |= names(VLLMOptions)

    def flags(parser: argparse.ArgumentParser) -> dict:
        return {
            a.dest: (sorted(a.option_strings), getattr(a.type, "__name__", None), a.choices, a.nargs)
            for a in parser._actions
            if a.dest in shared
        }

    on_eval, on_rollout = flags(eval_parser()), flags(rollout_parser())
    assert set(on_eval) == shared and on_eval == on_rollout
    # the flags a newcomer found missing on drift eval
    args = eval_parser().parse_args(
        ["--out", "m.json", "--top-k", "5", "--schedule", "continuous", "--no-token-ids", "--no-progress"]
    )
    assert (args.top_k, args.schedule, args.record_tokens, args.progress) == (5, "continuous", False, False)


@dataclass
class _Inner:
    depth: int = 3  # how deep
    seed: int | None = None


@dataclass
class _Outer:
    """An example config.

    Args:
        name: who
            (continued)
    """

    name: str
    inner: _Inner = field(default_factory=_Inner)
    style: Literal["plain", "fancy"] = "plain"
    tags: tuple[str, ...] = ()
    loud: bool = False
    keep: bool = True
    extra: dict = field(default_factory=dict, metadata={"help": "JSON extras"})


def test_generator_types_nested_fields_and_help(tmp_path: Path) -> None:
    assert field_help(_Outer)["name"] == "who (continued)" and field_help(_Inner)["depth"] == "how deep"
    parser = DataclassArgumentParser(prog="x", config_file=True)
    parser.add_dataclass(_Outer, exclude={"inner.seed"}, options={"name": {"flag": "who"}})
    args = parser.parse_args(
        ["--who", "Ada", "--depth", "5", "--style", "fancy", "--tags", "a", "b"]
        + ["--loud", "--no-keep", "--extra", '{"a": 1}']
    )
    built = parser.build(_Outer, args)
    assert built == _Outer("Ada", _Inner(5), "fancy", ("a", "b"), True, False, {"a": 1})
    assert parser.build(_Outer, parser.parse_args(["--who", "B"])) == _Outer("B")
    assert parser.parse_args(["--who", "B", "--keep", "false", "--loud=true"]).keep is False
    config = tmp_path / "run.yaml"
    config.write_text("who: C\ndepth: 9\nextra: {b: 2}\n")  # the file satisfies the required --who
    built = parser.build(_Outer, parser.parse_args(["--config", str(config), "--depth", "4"]))
    assert (built.name, built.inner.depth, built.extra) == ("C", 4, {"b": 2})  # the flag wins over the file
    config.write_text("nmae: C\n")
    with pytest.raises(SystemExit), contextlib.redirect_stderr(io.StringIO()) as err:
        parser.parse_args(["--config", str(config)])
    assert "unknown field(s) ['nmae']" in err.getvalue()
    with pytest.raises(SystemExit), contextlib.redirect_stderr(io.StringIO()) as err:
        parser.parse_args(["--who", "B", "--style", "bold"])
    assert "invalid choice: 'bold'" in err.getvalue()


# --------------------------------------------------------------------------------------------------
# --model tiny, and models that cannot be loaded


def test_drift_eval_model_tiny_runs_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFT_CACHE", str(tmp_path / "cache"))  # the embedded model is built here
    out = tmp_path / "eval" / "metrics.json"
    argv = ["eval", "--model", "tiny", "--env", "drift/MathFeedback-v0", "--num_tasks", "2"]
    argv += ["--env-kwargs", '{"max_turns": 2}', "--max-new-tokens", "8", "--out", str(out)]
    assert cli.main(argv) == 0
    metrics = json.loads(out.read_text())
    assert metrics["model"] == "tiny" and metrics["max_turns"] == 2
    assert metrics["success_at"]["1"]["tasks"] == 2
    records = [
        json.loads(line) for line in out.with_name("metrics.trajectories.jsonl").read_text().splitlines()
    ]
    assert len(records) == 2 and Path(resolve_model("tiny")).parent == tmp_path / "cache"
    assert records[0]["meta"]["model"] == resolve_model("tiny")


@pytest.mark.parametrize("command", ["eval", "rollout", "render", "online-rl"])
def test_a_model_that_cannot_be_loaded_is_one_line_and_exit_2(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    missing = str(tmp_path / "no-such-model")
    argv = {
        "eval": ["--env", "drift/MathFeedback-v0", "--out", str(tmp_path / "m.json")],
        "rollout": ["--env", "drift/MathFeedback-v0", "--out", str(tmp_path / "r.jsonl")],
        "render": ["--data", str(tmp_path / "d.jsonl"), "--show", "1"],
        "online-rl": ["--output-dir", str(tmp_path / "rl")],
    }[command]
    assert cli.main([command, "--model", missing, *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{missing!r}: no such folder" in err


def test_drift_train_resolves_model_tiny_and_rejects_a_missing_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from drift_train.commands.train import parse_config

    monkeypatch.setenv("DRIFT_CACHE", str(tmp_path / "cache"))
    config = parse_config(["--data", "d.jsonl", "--model", "tiny", "--output-dir", str(tmp_path / "o")])
    assert config.model == resolve_model("tiny") and (Path(config.model) / "config.json").is_file()
    with pytest.raises(SystemExit) as exc:
        parse_config(["--data", "d.jsonl", "--model", str(tmp_path / "nope"), "--output_dir", "o"])
    assert exc.value.code == 2 and "no such folder" in capsys.readouterr().err


def test_drift_train_with_a_model_folder_it_cannot_load_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    model = tmp_path / "no-weights"  # a folder that exists (so no early "no such folder") but holds no model
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "llama"}')
    data = tmp_path / "one.jsonl"
    record = {
        "prompt_id": 0,
        "traj_idx": 0,
        "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
        "turn_rewards": {"t1": 1.0},
        "verifier": {"t1": True},
        "t_star": 1,
        "answer_norms": ["a"],
    }
    data.write_text(json.dumps(record) + "\n")
    argv = ["train", "--data", str(data), "--model", str(model)]
    assert cli.main([*argv, "--output-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert f"cannot load model {str(model)!r}" in err


@pytest.mark.parametrize("command", ["rollout", "eval"])
def test_the_rollout_config_is_printed_once_and_written_beside_the_output(
    command: str, tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / ("r.jsonl" if command == "rollout" else "m.json")
    argv = [command, "--model", str(tiny_model_dir), "--env", "drift/MathFeedback-v0", "--out", str(out)]
    argv += ["--num-tasks", "1", "--samples", "2", "--temperature", "0.5", "--max-new-tokens", "3"]
    assert cli.main([*argv, "--no-progress"]) == 0
    err = capsys.readouterr().err
    line = f"{command}: drift/MathFeedback-v0 {{}} tasks 1 from 0 x K=2, temperature 0.5"
    assert err.count(line) == 1, err
    saved = json.loads((tmp_path / f"{out.stem}.config.json").read_text())
    assert saved["rollout"]["sampling"]["temperature"] == 0.5 and saved["rollout"]["samples"] == 2
    assert saved["rollout"]["num_tasks"] == 1 and saved["command"]["model"] == str(tiny_model_dir)
    records = out if command == "rollout" else tmp_path / "m.trajectories.jsonl"
    # the config is beside the records, not in them: meta holds what it held before
    first = json.loads(records.read_text().splitlines()[0])
    assert "rollout" not in first["meta"] and "command" not in first["meta"]
