"""Where a run's study lives (SQLite in the run directory, or a shared PostgreSQL / MySQL URL), and which
config a stored study may be resumed with."""
import json
import time
from typing import Any, Dict, Tuple

import optuna
from optuna.trial import TrialState

from portable_deblur.registry import ConfigError
from portable_deblur.search import attrs
from portable_deblur.search.heartbeat import alive


def comparable(cfg) -> Dict[str, Any]:
    """The config minus the ``run`` and ``log`` blocks and the storage URL: what must match for a run to be
    resumed."""
    from omegaconf import OmegaConf

    data = OmegaConf.to_container(OmegaConf.structured(cfg))
    data.pop("run")
    data.pop("log")
    data["search"].pop("storage")
    return json.loads(json.dumps(data))


def open_storage(url: str) -> optuna.storages.RDBStorage:
    if url.startswith("postgresql://"):  # the driver we install (psycopg 3), whatever SQLAlchemy's default
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    for attempt in range(5):  # workers starting together may race to create the schema
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        except Exception as exc:
            if attempt == 4:
                shown = url.split("@")[-1] if "@" in url else url  # never print a password
                raise ConfigError(f"cannot open the study storage ...@{shown}: "
                                  f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}") from None
            time.sleep(0.5 + attempt)


def worth_keeping(study: optuna.Study, heartbeat_s: float) -> bool:
    """A study is a run to protect once a trial completed, or while a worker's trial is alive."""
    now = time.time()
    return any(t.state == TrialState.COMPLETE or (alive(t, now, heartbeat_s) and attrs.HEARTBEAT in t.user_attrs)
               for t in study.get_trials(deepcopy=False))




def same_config(saved: Any, wanted: Any, defaults: Any) -> bool:
    """Whether a stored comparable config equals ``wanted``, a key the stored one lacks counting as its
    default (a setting a later version added: old runs still resume while it keeps its default)."""
    if not (isinstance(saved, dict) and isinstance(wanted, dict)):
        return saved == wanted
    defaults = defaults if isinstance(defaults, dict) else {}
    for key, value in wanted.items():
        if key not in saved:
            if key not in defaults or value != defaults[key]:
                return False
        elif not same_config(saved[key], value, defaults.get(key)):
            return False
    return set(saved) <= set(wanted)


def _create(name: str, storage, cfg, load_if_exists: bool = True) -> optuna.Study:
    from portable_deblur.rank import Objectives
    from portable_deblur.search.sampler import make_sampler

    return optuna.create_study(study_name=name, storage=storage, directions=Objectives.of(cfg).directions,
                               sampler=make_sampler(cfg), load_if_exists=load_if_exists)


def open_study(cfg, layout) -> Tuple[optuna.storages.RDBStorage, optuna.Study]:
    """The run's storage and study: created, or reopened to resume when it was made with the same config
    (``run.overwrite`` starts afresh; a study whose config differs is refused unless no trial finished)."""
    import shutil

    from portable_deblur.config import Config
    from portable_deblur.rank import Objectives

    name, url = layout.root.name, cfg.search.storage or layout.study_url
    if cfg.run.overwrite:
        if cfg.search.storage:
            try:
                optuna.delete_study(study_name=name, storage=open_storage(url))
            except KeyError:
                pass
        shutil.rmtree(layout.root, ignore_errors=True)
    layout.root.mkdir(parents=True, exist_ok=True)
    storage = open_storage(url)
    study = _create(name, storage, cfg)
    wanted, saved = comparable(cfg), study.user_attrs.get(attrs.CONFIG)
    if saved is not None and not same_config(saved, wanted, comparable(Config())):
        if worth_keeping(study, cfg.search.heartbeat_s):
            raise ConfigError(f"study {name!r} ({url}) holds a run with a different config; resume with the "
                              f"same settings, pick another run.name=..., or pass run.overwrite=true")
        # No trial finished (a start that failed, or one stopped in its first trial): nothing to protect.
        optuna.delete_study(study_name=name, storage=storage)
        study, saved = _create(name, storage, cfg, load_if_exists=False), None
    if saved is None:
        study.set_user_attr(attrs.CONFIG, wanted)
    spec = Objectives.of(cfg)
    if len(study.directions) != len(spec.directions):  # a study made before rank owned the directions
        raise ConfigError(f"study {name!r} ({url}) optimises {len(study.directions)} objectives but this config's "
                          f"front uses {len(spec.directions)} ({spec.names}); it was made by an older version: "
                          f"pick another run.name=... or pass run.overwrite=true")
    return storage, study
