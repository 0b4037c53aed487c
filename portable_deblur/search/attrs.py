"""The names the run's Optuna study stores things under (user attributes). One place, so every module and an
existing study read the same keys."""

# per trial
ROWS = "rows"  # its result rows (ResultRow fields), the float artifact and every optimized variant
STATUS = "status"  # ok | failed | skipped | surplus | duplicate | empty
ERROR = "error"
CANDIDATE = "candidate"  # candidate id
PHASE = "phase"  # TRAIN or OPTIMIZE
HEARTBEAT = "heartbeat"  # time.time() of the worker's last beat
WORKER = "worker"  # host:pid
RUN_DIR = "run_dir"  # where that worker writes its files
INTERRUPTED = "interrupted"  # Ctrl-C or an exception stopped it
RETRY_OF = "retry_of"  # the interrupted trial this one re-runs
DUPLICATE_OF = "duplicate_of"  # the trial whose values a resampled candidate reuses

# per study
CONFIG = "config"  # the comparable config (what must match to resume)
INTERLEAVED = "interleaved"  # row id -> {key, stats} of the final interleaved re-timing
INTERLEAVED_SECONDS = "interleaved_seconds"
ENVIRONMENT = "environment."  # + worker: that worker's machine and library versions

# phases
TRAIN, OPTIMIZE = "train", "optimize"
