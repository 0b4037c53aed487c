"""Config stage: the typed, frozen config of a search (``schema``, ``stages``), loaded and validated (``load``)."""
from portable_deblur.config.load import REPO_ROOT, SPACES_DIR, available_spaces, load_config, load_saved, to_yaml
from portable_deblur.config.schema import Config, LogConfig, RunConfig, SearchConfig
from portable_deblur.config.stages import (RESOLUTION_SETS, DataConfig, MeasureConfig, OptimizeConfig, PortabilityConfig,
                                           TrainConfig)

__all__ = ["REPO_ROOT", "SPACES_DIR", "RESOLUTION_SETS", "Config", "DataConfig", "LogConfig", "MeasureConfig",
           "OptimizeConfig", "PortabilityConfig", "RunConfig", "SearchConfig", "TrainConfig", "available_spaces",
           "load_config", "load_saved", "to_yaml"]
