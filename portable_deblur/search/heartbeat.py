"""Liveness of trials: a worker refreshes its running trial's heartbeat from a thread; a RUNNING trial whose
beats stopped for ``GRACE_HEARTBEATS`` intervals (or that was interrupted) is taken as dead and re-run."""
import threading
import time
from typing import Any, Dict

import optuna
from optuna.trial import TrialState

from portable_deblur.search import attrs

GRACE_HEARTBEATS = 3


def alive(t: optuna.trial.FrozenTrial, now: float, heartbeat_s: float) -> bool:
    """A RUNNING trial whose worker still beats (not interrupted, last beat within the grace period)."""
    if t.state != TrialState.RUNNING or t.user_attrs.get(attrs.INTERRUPTED):
        return False
    beat = t.user_attrs.get(attrs.HEARTBEAT, t.datetime_start.timestamp() if t.datetime_start else now)
    return now - beat <= GRACE_HEARTBEATS * heartbeat_s



class Heartbeat:
    """Refreshes a trial's ``heartbeat`` user attribute from a thread while the trial runs."""

    def __init__(self, storage, trial_id: int, interval: float, values: Dict[str, Any]):
        self.storage, self.trial_id, self.interval = storage, trial_id, interval
        for key, value in {**values, attrs.HEARTBEAT: time.time()}.items():
            storage.set_trial_user_attr(trial_id, key, value)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.storage.set_trial_user_attr(self.trial_id, attrs.HEARTBEAT, time.time())
            except Exception:  # finished meanwhile, or a transient storage error: the next beat retries
                pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
