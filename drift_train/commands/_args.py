"""Command lines generated from config dataclasses: one style for every ``drift`` subcommand.

A command describes its options once, as dataclass fields, and :class:`DataclassArgumentParser` turns
them into flags, the way ``transformers.HfArgumentParser`` does (``drift train``'s ``DriftConfig``, a
``TrainingArguments`` subclass, goes through this generator too)::

    @dataclass
    class GreetConfig:
        \"\"\"Say hello.

        Args:
            name: who to greet
            times: how many times
        \"\"\"

        name: str                       # no default: a required flag
        times: int = 1
        loud: bool = False
        style: Literal["plain", "fancy"] = "plain"
        extra: dict = field(default_factory=dict, metadata={"help": "JSON object of extras"})

    parser = DataclassArgumentParser(prog="greet", description="Say hello.")
    parser.add_dataclass(GreetConfig)
    args = parser.parse_args(["--name", "Ada", "--times", "2", "--loud", "--extra", '{"a": 1}'])
    config = parser.build(GreetConfig, args)   # GreetConfig(name="Ada", times=2, loud=True, ...)

Rules, the same for every command:

- **Spellings.** A field ``max_new_tokens`` is ``--max-new-tokens`` and ``--max_new_tokens`` (both
  parse; ``--help`` shows the dash one).
- **Defaults** come from the dataclass (``default`` or ``default_factory``) and are written nowhere
  else; a field without one is a required flag. ``--help`` shows them.
- **Types.** ``int``/``float``/``str``/``Path``, ``X | None`` (None: the default, "unset"),
  ``Literal[...]`` (choices), ``list[X]`` (several values), ``dict`` (a JSON object, with a clear error
  when the text is not one), ``bool`` as ``HfArgumentParser`` has it: ``--flag`` or ``--flag true|false``,
  and a field that defaults to True also gets ``--no-flag``.
- **Nested dataclasses** (e.g. ``RolloutConfig.sampling: SamplingParams``) are flattened: their fields
  become flags of their own, and :meth:`~DataclassArgumentParser.build` rebuilds the nested object.
- **Help** comes from ``field(metadata={"help": ...})``, else the class docstring's ``Args:`` entry,
  else the field's trailing ``# comment`` in the class source.
- **Per-field options**, in the field's ``metadata`` or, for a dataclass another module owns, in
  ``add_dataclass(cls, options={"field": {...}})``: ``help``, ``choices``, ``flag`` (the flag's name when
  it is not the field's, e.g. ``{"env_id": {"flag": "env"}}`` -> ``--env``), ``aliases`` (more names),
  ``metavar``, ``required``, ``positional`` (an argument without ``--``; ``nargs`` with it), and
  ``default`` only where a command's default differs from the dataclass's by design (``drift rollout
  --batch-size``: None, then chosen per backend).
- **A YAML file**: ``DataclassArgumentParser(config_file=True)`` adds ``--config FILE.yaml`` whose keys
  (field or flag names, either spelling) become the defaults the flags override; unknown keys are an error
  (:func:`apply_config_file`).
- ``X | str`` unions (``TrainingArguments`` has them) take one type, as ``HfArgumentParser`` reads them
  (:func:`_unwrap_optional`); an ``Enum`` takes its values; ``const`` in a field's metadata (``--fsdp``
  alone) works as in argparse.
- Unknown flags and abbreviations of flags are errors (``allow_abbrev=False``): exit code 2 and a message.

:func:`resolve_model` is the one place ``--model tiny`` (or ``smollm2-135m-instruct``, or a ``.gguf``
file) becomes a model folder, and :func:`model_load_error` turns a failure to load a model into the
one-line message commands print before exiting with code 2; both live in :mod:`drift_train.models`
and are re-exported here. This module imports only the standard library and :mod:`drift_train.models`
(no torch: ``drift demo`` and ``drift --help`` use it).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import enum
import inspect
import io
import json
import re
import sys
import textwrap
import tokenize
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

# the --model resolvers, re-exported: every command imports them from here
from drift_train.models import missing_model_folder, model_load_error, resolve_model

__all__ = [
    "DataclassArgumentParser",
    "HelpFormatter",
    "apply_config_file",
    "field_help",
    "json_object",
    "missing_model_folder",
    "model_load_error",
    "resolve_model",
    "string_to_bool",
]

# option keys a field may carry in its metadata (or in add_dataclass(options=...))
FIELD_OPTIONS = (
    "help",
    "choices",
    "flag",
    "aliases",
    "metavar",
    "required",
    "positional",
    "nargs",
    "const",
    "default",
)


# --------------------------------------------------------------------------------------------------
# value types


def string_to_bool(text: str | bool) -> bool:
    """``true/false``, ``yes/no``, ``1/0``, ``t/f``, ``y/n`` (any case) as a bool, as HfArgumentParser reads them."""
    if isinstance(text, bool):
        return text
    lowered = text.lower()
    if lowered in ("true", "t", "yes", "y", "1"):
        return True
    if lowered in ("false", "f", "no", "n", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


string_to_bool.__name__ = "bool"  # argparse names the type in "invalid bool value" messages


def json_object(text: str | dict) -> dict:
    """A flag's JSON text as a dict; anything else is an ``ArgumentTypeError`` saying what was wrong
    (the parser's error then reads ``--env-kwargs is not valid JSON (...)``)."""
    if isinstance(text, dict):
        return dict(text)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(
            f"is not valid JSON ({err}): {text!r}; give a JSON object such as '{{\"key\": 1}}'"
        ) from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f"is not a JSON object (a {type(value).__name__}: {text!r}); give one such as '{{\"key\": 1}}'"
        )
    return value


json_object.__name__ = "JSON object"


def _choice_type(choices: Sequence[Any]) -> Callable[[str], Any]:
    """Map the text of a choice back to the choice itself (Literal[1, 2] gets ints, not strings)."""
    by_text = {str(choice): choice for choice in choices}

    def convert(text: Any) -> Any:
        return by_text.get(str(text), text)  # argparse's choices check names an unknown one

    convert.__name__ = "choice"
    return convert


def _keeping(default: str, convert: Callable[[str], Any]) -> Callable[[str], Any]:
    """``convert``, except that the default itself passes unchanged (argparse converts a str default with the
    flag's type: the ``""`` of ``debug: str | list[DebugOption]`` is no ``DebugOption``)."""

    def keep(text: str) -> Any:
        return text if text is default else convert(text)

    keep.__name__ = getattr(convert, "__name__", "value")
    return keep


# --------------------------------------------------------------------------------------------------
# help text


def _docstring_args(cls: type) -> dict[str, str]:
    """The ``Args:`` (or ``Attributes:``) entries of a class docstring, Google style."""
    doc = inspect.getdoc(cls) or ""
    entries: dict[str, str] = {}
    in_section, current, indent = False, None, None
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped in ("Args:", "Arguments:", "Attributes:", "Fields:"):
            in_section, current, indent = True, None, None
            continue
        if not in_section:
            continue
        if not stripped:
            current = None
            continue
        depth = len(line) - len(line.lstrip())
        match = re.match(r"(\w+)(?:\s*\([^)]*\))?\s*:\s*(.*)", stripped)
        if match and (indent is None or depth <= indent):
            indent = depth
            current = match.group(1)
            entries[current] = match.group(2).strip()
        elif current is not None and indent is not None and depth > indent:
            entries[current] = f"{entries[current]} {stripped}".strip()
        else:  # a new section or text outside the list ends it
            in_section, current = False, None
    return entries


def _source_comments(cls: type) -> dict[str, str]:
    """Trailing ``# comments`` of the field lines in the class body (``samples: int = 4  # K, ...``); for a
    field written over several lines, the first comment among them."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    try:
        body = ast.parse(source).body[0]
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
        comments_by_line = {
            t.start[0]: t.string.lstrip("#").strip() for t in tokens if t.type == tokenize.COMMENT
        }
        comment_only_lines = {
            t.start[0] for t in tokens if t.type == tokenize.COMMENT and t.line.lstrip().startswith("#")
        }
    except (SyntaxError, tokenize.TokenError, IndexError):
        return {}
    comments: dict[str, str] = {}
    for node in getattr(body, "body", []):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            for line in range(node.lineno, (node.end_lineno or node.lineno) + 1):
                if comments_by_line.get(line):
                    comments[node.target.id] = comments_by_line[line]
                    break
            else:  # a comment on the line above the field (one too long to trail it)
                above = node.lineno - 1
                if above in comment_only_lines and comments_by_line.get(above):
                    comments[node.target.id] = comments_by_line[above]
    return comments


def field_help(cls: type) -> dict[str, str]:
    """Help text per field of a dataclass: metadata ``help``, else docstring ``Args:``, else trailing comment."""
    helps = _source_comments(cls)
    helps.update(_docstring_args(cls))
    for f in dataclasses.fields(cls):
        if f.metadata.get("help"):
            helps[f.name] = f.metadata["help"]
    return helps


def _worth_showing(default: Any) -> bool:
    """Whether ``--help`` should print a default: not for None/False/empty ("unset"), yes for 0."""
    if default is None or default is False or default is argparse.SUPPRESS:
        return False
    return not (isinstance(default, (str, dict, list, tuple)) and not default)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows each flag once, in its dash spelling, with its default; keeps descriptions as written."""

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings:
            return super()._format_action_invocation(action)
        shown, seen = [], set()
        for option in sorted(action.option_strings, key=lambda o: "_" in o):  # dash spellings first
            key = option.replace("_", "-")
            if key not in seen:
                seen.add(key)
                shown.append(option)
        if action.nargs == 0:
            return ", ".join(shown)
        value = self._format_args(action, self._get_default_metavar_for_optional(action))
        return ", ".join(shown) + " " + value

    def _get_default_metavar_for_optional(self, action: argparse.Action) -> str:
        return action.dest.upper()

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "%(default)" not in text
            and "default" not in text.lower()
            and _worth_showing(default)
            and action.option_strings
            and action.nargs != 0  # store_true/false flags: their default says nothing
        ):
            text = f"{text} (default: %(default)s)" if text else "(default: %(default)s)"
        return text


# --------------------------------------------------------------------------------------------------
# spellings and YAML config files


def _one_spelling(message: str) -> str:
    """``--a-b/--a_b`` (how argparse names a flag with two spellings in its errors) as ``--a-b``."""

    def shorten(match: re.Match) -> str:
        names = match.group(0).split("/")
        kept = [
            n
            for i, n in enumerate(names)
            if n.replace("_", "-") not in {m.replace("_", "-") for m in names[:i]}
        ]
        return "/".join(kept)

    return re.sub(r"--[\w-]+(?:/--[\w-]+)+", shorten, message)


def _config_file_argument(argv: Sequence[str]) -> str | None:
    path = None
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            path = argv[i + 1]
        elif arg.startswith("--config="):
            path = arg.split("=", 1)[1]
    return path


def apply_config_file(parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    """Read the ``--config FILE.yaml`` named in ``argv`` (if any) and make its values the parser's defaults,
    so flags on the command line still override them. Keys may use either spelling; a key that names no
    option, a missing file or a file that is not a mapping is a parser error (exit 2, with the file)."""
    config_path = _config_file_argument(argv)
    if config_path is None:
        return
    import yaml

    path = Path(config_path)
    if not path.is_file():
        parser.error(f"--config: no file at {path}")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        parser.error(f"--config: {path} is not valid YAML: {err}")
    if not isinstance(values, dict):
        parser.error(f"--config: {path} must hold a mapping of option names to values")
    # a key is a field name (the dest) or a flag's name, in either spelling: env_id or env
    dest_of = {}
    for action in parser._actions:
        if action.dest in ("help", "config") or isinstance(action, argparse._StoreFalseAction):
            continue
        dest_of[action.dest] = action.dest
        for option in action.option_strings:
            dest_of.setdefault(option.lstrip("-").replace("-", "_"), action.dest)
    values = {str(key).replace("-", "_"): value for key, value in values.items()}
    unknown = sorted(set(values) - set(dest_of))
    if unknown:
        known = sorted({dest for dest in dest_of.values()})
        parser.error(f"--config {path}: unknown field(s) {unknown}; the known ones: {known}")
    values = {dest_of[key]: value for key, value in values.items()}
    parser.set_defaults(**values)
    for action in parser._actions:  # a value in the file satisfies a required flag
        if action.dest in values:
            action.required = False


# --------------------------------------------------------------------------------------------------
# the generator


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    """``X | None`` -> (X, True); anything else -> (annotation, False).

    A union of several types that includes ``str`` (``TrainingArguments`` has them) takes one type on the
    command line, as ``HfArgumentParser`` reads it: ``X | str`` is ``X`` (``IntervalStrategy | str``: the
    enum's values; the ``str`` is there for Python callers), and with None among several types (``dict |
    str | None``) the flag takes text, which the dataclass parses itself.
    """
    origin = typing.get_origin(annotation)
    if origin is typing.Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        members = typing.get_args(annotation)
        args = [a for a in members if a is not type(None)]
        optional = len(args) < len(members)
        if len(args) == 1:
            return args[0], optional
        if str in args:
            if not optional and len(args) == 2:
                return next(a for a in args if a is not str), False
            return str, optional
        raise TypeError(f"union {annotation} has more than one non-None type; a flag takes one type")
    return annotation, False


def _flag_names(name: str, aliases: Iterable[str] = ()) -> list[str]:
    names: list[str] = []
    for n in (name, *aliases):
        for spelling in (n.replace("_", "-"), n.replace("-", "_")):
            flag = f"--{spelling}"
            if flag not in names:
                names.append(flag)
    return names


@dataclasses.dataclass
class _Registered:
    cls: type
    fields: dict[str, str]  # field name -> argparse dest
    nested: dict[str, _Registered]  # field name -> the nested dataclass's registration
    tuples: set[str]  # fields typed tuple[...]: argparse gives a list


class DataclassArgumentParser(argparse.ArgumentParser):
    """An ``argparse.ArgumentParser`` whose flags are generated from dataclass fields (module docstring).

    ``add_dataclass`` registers a dataclass's fields as flags, ``parse_args`` parses (with ``--config``
    YAML defaults when ``config_file=True``), ``build`` makes the dataclass from the parsed namespace.
    Hand-written ``add_argument`` calls still work for the odd option no dataclass holds, and get both
    spellings too.
    """

    def __init__(self, *args: Any, config_file: bool = False, **kwargs: Any):
        kwargs.setdefault("formatter_class", HelpFormatter)
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self._registered: dict[type, _Registered] = {}
        self._instance_defaults: dict[type, Any] = {}
        self._config_file = config_file
        if config_file:
            self.add_argument(
                "--config",
                metavar="FILE.yaml",
                help="YAML file of these options (either spelling); flags on the command line override it",
            )

    @property
    def dataclasses(self) -> list[type]:
        """The dataclasses added to this parser, in order (what :meth:`build` can make)."""
        return list(self._registered)

    # -- building

    def add_dataclass(
        self,
        cls: type,
        *,
        options: Mapping[str, Mapping[str, Any]] | None = None,
        exclude: Iterable[str] = (),
        group: str | None = None,
        prefix: str = "",
        defaults: Any = None,
    ) -> None:
        """Add one flag per field of ``cls``, nested dataclass fields flattened into flags of their own.

        ``options`` adds or overrides per-field options (module docstring), keyed by field name
        (``"sampling.top_k"`` for a field of a nested dataclass), for dataclasses this command does not
        own; ``exclude`` leaves fields out the same way (``build`` then uses their defaults or the
        values it is given); ``group`` puts the flags under a heading in ``--help``; ``prefix`` is
        prepended to every flag and dest (two copies of one dataclass in one command); ``defaults``, an
        instance of ``cls``, gives the flags its values as defaults, nested ones included (a command whose
        defaults differ from the class's by design, e.g. ``drift eval``'s greedy one-sample
        :class:`~drift_train.rollout.RolloutConfig`; :meth:`defaults_of` returns it).
        """
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls!r} is not a dataclass")
        if defaults is not None and not isinstance(defaults, cls):
            raise TypeError(f"defaults must be a {cls.__name__}, got {type(defaults).__name__}")
        container: Any = self.add_argument_group(group) if group else self
        self._registered[cls] = self._add_fields(
            cls, dict(options or {}), set(exclude), container, prefix, "", defaults
        )
        self._instance_defaults[cls] = defaults

    def defaults_of(self, cls: type) -> Any:
        """The instance whose values are the defaults of ``cls``'s flags, or None: the class's own defaults."""
        return self._instance_defaults.get(cls)

    def _add_fields(
        self,
        cls: type,
        options: dict,
        exclude: set[str],
        container: Any,
        prefix: str,
        path: str,
        defaults: Any = None,
    ) -> _Registered:
        hints = typing.get_type_hints(cls)
        helps = field_help(cls)
        registered = _Registered(cls, {}, {}, set())
        for f in dataclasses.fields(cls):
            key = path + f.name
            if key in exclude or not f.init:
                continue
            annotation, optional = _unwrap_optional(hints[f.name])  # None: the "unset" default of any flag
            # a nested dataclass is flattened into flags of its own; one that is unset by default (None,
            # e.g. TrainingArguments.parallelism_config) stays one flag whose text makes the class
            if dataclasses.is_dataclass(annotation) and not (optional and f.default is None):
                nested_defaults = getattr(defaults, f.name) if defaults is not None else None
                registered.nested[f.name] = self._add_fields(
                    annotation, options, exclude, container, prefix, key + ".", nested_defaults
                )
                continue
            spec = {k: v for k, v in f.metadata.items() if k in FIELD_OPTIONS}
            if defaults is not None:
                spec["default"] = getattr(defaults, f.name)
            spec.update(options.get(key, {}))
            unknown = set(spec) - set(FIELD_OPTIONS)
            if unknown:
                raise TypeError(f"{cls.__name__}.{f.name}: unknown flag options {sorted(unknown)}")
            dest = prefix + f.name
            registered.fields[f.name] = dest
            if typing.get_origin(annotation) is tuple or annotation is tuple:
                registered.tuples.add(f.name)
            self._add_field(container, f, annotation, spec, helps.get(f.name, ""), dest, prefix)
        return registered

    def _add_field(
        self,
        container: Any,
        f: dataclasses.Field,
        annotation: Any,
        spec: dict,
        help_text: str,
        dest: str,
        prefix: str,
    ) -> None:
        if "default" in spec:  # a command whose default differs by design (e.g. depends on another flag)
            default, has_default = spec["default"], True
        elif f.default is not dataclasses.MISSING:
            default, has_default = f.default, True
        elif f.default_factory is not dataclasses.MISSING:
            default, has_default = f.default_factory(), True
        else:
            default, has_default = None, False
        kwargs: dict[str, Any] = {"help": spec.get("help", help_text)}
        if not kwargs["help"] and has_default and _worth_showing(default):
            kwargs["help"] = "(default: %(default)s)"  # argparse prints no line for an empty help
        if has_default:
            kwargs["default"] = default
        origin = typing.get_origin(annotation)
        choices = spec.get("choices")
        if origin is Literal and choices is None:
            choices = list(typing.get_args(annotation))
        elif isinstance(annotation, type) and issubclass(annotation, enum.Enum) and choices is None:
            choices = [member.value for member in annotation]  # the values, as HfArgumentParser takes them
        if annotation is bool:
            kwargs.update(type=string_to_bool, nargs="?", const=True, metavar="true|false")
        elif annotation is dict or origin is dict:
            kwargs.update(type=json_object, metavar="JSON")
        elif annotation in (list, tuple) or origin in (list, tuple):
            item = next((a for a in typing.get_args(annotation) if a is not Ellipsis), str)
            kwargs.update(type=item, nargs="+")
            if has_default and isinstance(default, str):  # a str default of `str | list[X]`: kept as it is
                kwargs["type"] = _keeping(default, item)
        else:
            kwargs["type"] = annotation if origin is None and callable(annotation) else str
        if choices is not None:
            kwargs["choices"] = list(choices)
            kwargs["type"] = _choice_type(choices)
            kwargs.pop("metavar", None)
        for key in ("metavar", "nargs", "const"):
            if key in spec:
                kwargs[key] = spec[key]
        if spec.get("positional"):
            if has_default and "nargs" not in kwargs:
                kwargs["nargs"] = "?"
            kwargs.pop("metavar", None)
            container.add_argument(dest, **kwargs)
            return
        kwargs["dest"] = dest
        kwargs["required"] = bool(spec.get("required", not has_default))
        name = prefix + spec.get("flag", f.name)
        if "choices" not in kwargs:
            kwargs.setdefault("metavar", name.upper().replace("-", "_"))
        container.add_argument(*_flag_names(name, spec.get("aliases", ())), **kwargs)
        if annotation is bool and default is True:  # --no-flag, as HfArgumentParser adds it
            container.add_argument(
                *_flag_names(f"no_{name}"),
                action="store_false",
                dest=dest,
                help=f"the same as {_flag_names(name)[0]} false",
            )

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        """``argparse``'s, with the other spelling of each long flag added (``--a-b`` and ``--a_b``)."""
        names: list[str] = []
        for arg in args:
            if isinstance(arg, str) and arg.startswith("--"):
                names += [n for n in _flag_names(arg[2:]) if n not in names]
            else:
                names.append(arg)
        return super().add_argument(*names, **kwargs)

    # -- parsing

    def error(self, message: str) -> typing.NoReturn:
        """argparse's, naming a flag by one spelling (``--env-kwargs``, not ``--env-kwargs/--env_kwargs``)."""
        message = re.sub(r"^argument (--[\w-]+): is ", r"\1 is ", _one_spelling(message))
        super().error(message)

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:
        """argparse's, after reading ``--config FILE.yaml`` into the defaults (when ``config_file``)."""
        argv = self._bare_bool_flags(list(sys.argv[1:] if args is None else args))
        if self._config_file:
            apply_config_file(self, argv)
        return super().parse_known_args(argv, namespace)

    def _bare_bool_flags(self, argv: list[str]) -> list[str]:
        """``--per-turn in.jsonl`` is ``--per-turn=true in.jsonl``: a bool flag takes an optional value, and
        without this argparse would swallow the positional argument after it as that value."""
        bool_flags = {
            option
            for action in self._actions
            if action.type is string_to_bool and action.nargs == "?"
            for option in action.option_strings
        }
        out = []
        for i, arg in enumerate(argv):
            if arg == "--":
                return out + argv[i:]
            following = argv[i + 1] if i + 1 < len(argv) else None
            if arg in bool_flags and following is not None and not following.startswith("-"):
                try:
                    string_to_bool(following)
                except argparse.ArgumentTypeError:
                    arg += "=true"
            out.append(arg)
        return out

    def build(self, cls: type, namespace: argparse.Namespace, **values: Any) -> Any:
        """The ``cls`` instance the parsed ``namespace`` describes; ``values`` fill or override fields
        (excluded ones, or ones the command computes)."""
        if cls not in self._registered:
            raise KeyError(f"{cls.__name__} was not added to this parser (add_dataclass)")
        return self._build(self._registered[cls], namespace, values)

    def _build(self, registered: _Registered, namespace: argparse.Namespace, values: dict) -> Any:
        kwargs = {}
        for name, dest in registered.fields.items():
            value = getattr(namespace, dest)
            if name in registered.tuples and isinstance(value, list):
                value = tuple(value)
            elif isinstance(value, (dict, list)):  # never share a mutable default between parses
                value = type(value)(value)
            kwargs[name] = value
        for name, nested in registered.nested.items():
            kwargs[name] = self._build(nested, namespace, {})
        kwargs.update(values)
        return registered.cls(**kwargs)
