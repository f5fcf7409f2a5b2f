"""The per-stream sync timer, whose status says how the stream's sync ended for the user.

singer-sdk tags a stream's ``sync_duration`` timer ``failed`` whenever an exception leaves the sync,
including the one it raises itself to stop each stream after one record in ``--test``. A stream
stopped on purpose at the record limit it was given succeeded; anything else keeps singer-sdk's tag.
"""

from __future__ import annotations

from types import TracebackType

from singer_sdk import metrics
from singer_sdk.exceptions import MaxRecordsLimitException


class SyncTimer(metrics.Timer):
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        # singer-sdk raises its abort exception from the MaxRecordsLimitException that asked for it.
        if isinstance(exc_val, MaxRecordsLimitException) or isinstance(
            getattr(exc_val, "__cause__", None), MaxRecordsLimitException
        ):
            self.tags.setdefault(metrics.Tag.STATUS, metrics.Status.SUCCEEDED)
        super().__exit__(exc_type, exc_val, exc_tb)


def sync_timer(stream: str) -> metrics.Timer:
    """singer-sdk's ``metrics.sync_timer``, with the status above."""
    return SyncTimer(metrics.Metric.SYNC_DURATION, {metrics.Tag.STREAM: stream})
