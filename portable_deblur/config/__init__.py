"""Config stage: the typed, frozen config of a search (``schema``), loaded and validated (``load``)."""
from portable_deblur.config.load import REPO_ROOT, SPACES_DIR, available_spaces, load_config, load_saved, to_yaml
from portable_deblur.config.schema import (RESOLUTION_SETS, Config, DataConfig, LogConfig, MeasureConfig,
                                           OptimizeConfig, PortabilityConfig, RunConfig, SearchConfig, TrainConfig)

__all__ = ["REPO_ROOT", "SPACES_DIR", "RESOLUTION_SETS", "Config", "DataConfig", "LogConfig", "MeasureConfig",
           "OptimizeConfig", "PortabilityConfig", "RunConfig", "SearchConfig", "TrainConfig", "available_spaces",
           "load_config", "load_saved", "to_yaml"]
