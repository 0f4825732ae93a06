"""`manage.py seed_catalog`: puts the benchmark's 20 products into a freshly migrated database."""

import datetime
import decimal

from django.core.management.base import BaseCommand

from catalog.models import Product

ROWS = 20


class Command(BaseCommand):
    help = f"Replace the catalog with {ROWS} products."

    def handle(self, *args, **options):
        Product.objects.all().delete()
        start = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
        Product.objects.bulk_create(
            Product(
                name=f"product number {n}",
                sku=f"SKU-{n:05d}",
                price=decimal.Decimal(n * 137 % 10_000) / 100,
                stock=(n * 7) % 13,
                updated=start + datetime.timedelta(hours=n),
            )
            for n in range(1, ROWS + 1)
        )
        self.stdout.write(f"{Product.objects.count()} products")
