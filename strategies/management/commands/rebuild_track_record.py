from django.core.management.base import BaseCommand

from strategies import rollup
from strategies.models import TrackRecord


class Command(BaseCommand):
    help = "Count the clinic's track record afresh from every repair attempt (the triggers keep it up to date)."

    def handle(self, *args, **options):
        rollup.rebuild()
        total = sum(TrackRecord.objects.values_list("attempts", flat=True))
        self.stdout.write(self.style.SUCCESS(f"Track record rebuilt: {total} attempts counted."))
