"""Adapters that put every registered env inside other trainers, each through that trainer's own seam.

* :mod:`drift_envs.integrations.trl` — ``GRPOTrainer(environment_factory=...)`` (extra ``[trl]``);
* :mod:`drift_envs.integrations.verifiers` — ``load_environment(...) -> vf.MultiTurnEnv`` (extra ``[verifiers]``);
* :mod:`drift_envs.integrations.skyrl` — every id in skyrl-gym's registry (extra ``[skyrl]``);
* :mod:`drift_envs.integrations.openenv` — any id served by OpenEnv's server, ``drift serve-env`` (extra
  ``[openenv]``); :mod:`drift_envs.remote` plays a served env back as ``drift/Remote-v0``.

Each module imports its framework when it is imported itself; ``import drift_envs`` (and this package)
imports none of them. All three play an episode through :class:`~drift_envs.integrations.episode.Episode`,
so they reset, step and score exactly as ``drift rollout`` records an episode.
"""
