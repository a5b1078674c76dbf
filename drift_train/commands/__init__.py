"""The ``drift`` subcommands, apart from the library they drive.

One module per subcommand (``drift_train.commands.<name>``, dashes as underscores), each with
``build_parser()`` and ``main(argv) -> int``; :mod:`drift_train.cli` only dispatches to them. Every parser
is generated from config dataclasses by :mod:`drift_train.commands._args` (``drift train``'s too, from
``DriftConfig``'s ``TrainingArguments`` fields). Library modules (``drift_train.rollout``,
``drift_train.evaluate``, ``drift_train.weights``, ...) import nothing from here.
"""
