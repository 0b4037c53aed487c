"""The names the run's Optuna study stores things under (user attributes). One place, so every module and an
existing study read the same keys."""

# per trial
ROWS = "rows"  # its result rows (ResultRow fields), the float artifact and every optimized variant
STATUS = "status"  # ok | failed | skipped | surplus | duplicate | final
ERROR = "error"
CANDIDATE = "candidate"  # candidate id
PHASE = "phase"  # TRAIN or OPTIMIZE
RUNG = "rung"  # search.rungs: which rung a train trial trains to (absent: 0)
HEARTBEAT = "heartbeat"  # time.time() of the worker's last beat
WORKER = "worker"  # host:pid
RUN_DIR = "run_dir"  # where that worker writes its files
INTERRUPTED = "interrupted"  # Ctrl-C or an exception stopped it
RETRY_OF = "retry_of"  # the interrupted trial this one re-runs
VALUES = "values"  # the objective values it was told (also kept for a PRUNED rung trial)
DUPLICATE_OF = "duplicate_of"  # the trial whose values a resampled candidate reuses

# per study
CONFIG = "config"  # the comparable config (what must match to resume)
INTERLEAVED = "interleaved"  # row id -> {key, retimed, unit_ms, level} of the final paired re-timing
INTERLEAVED_SECONDS = "interleaved_seconds"
UNIT_MS = "unit_ms"  # latency key -> the run's final unit: the reference's ms as the ratios were taken
DUELS = "duels"  # row id -> its A/B duels against front neighbours (records.Duel fields)
DUEL_SECONDS = "duel_seconds"
FRONT = "front"  # the row ids on the run's noise-aware front (rank.front_rows), as the report shows it
TIE_GROUPS = "tie_groups"  # the tie groups of the run's front (lists of row ids)
RECOMMENDATION = "recommendation"  # the recommendation's lines
REFERENCE_MS = "reference_ms"  # latency key -> the reference network's median ms at the run's start
ENVIRONMENT = "environment."  # + worker: that worker's machine and library versions

# phases: FINAL records, without work, the objective values of a candidate a rung dropped (search.rungs)
TRAIN, OPTIMIZE, FINAL = "train", "optimize", "final"
