"""The one model of the test project: notes the admin edits and the async views read."""

from django.db import models


class Note(models.Model):
    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=200)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "slug"]

    def __str__(self):
        return self.title
