"""Search stage: the CLI (``run``), one candidate's pass through the stages (``trial``, ``artifact``), and the
Optuna study that schedules them across workers (``study`` with ``heartbeat``, ``storage``, ``sampler``,
``grid``) and keeps their rows (``rows``)."""
