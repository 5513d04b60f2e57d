from django.db import models


class TrackRecord(models.Model):
    """The clinic's repair attempts counted by rupture kind, strategy and outcome.

    The engine's clinic-wide track record reads these few rows instead of every attempt
    the clinic ever made. Database triggers (`strategies/rollup.py`) keep them in step in
    the same transaction as the attempts and ruptures they count, bulk imports and raw
    SQL included; an attempt counts while neither it nor its rupture is soft-deleted.
    """

    kind = models.CharField(max_length=16)
    strategy = models.CharField(max_length=32)
    outcome = models.CharField(max_length=24)
    attempts = models.IntegerField(default=0)

    class Meta:
        constraints = [
            # The target of the triggers' INSERT ... ON CONFLICT.
            models.UniqueConstraint(fields=["kind", "strategy", "outcome"], name="track_record_one_row"),
        ]

    def __str__(self):
        return f"{self.kind} / {self.strategy} / {self.outcome}: {self.attempts}"
