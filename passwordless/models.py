from django.db import models


class CacheGeneration(models.Model):
    """The generation of the session copies in the cache: one row (passwordless.sessions).

    A new generation begins whenever the cache may hold a copy older than the
    database; copies of an earlier one are never read again.
    """

    ROW = 1

    token = models.CharField(max_length=32)
    changed_at = models.DateTimeField()

    class Meta:
        verbose_name = "cache generation"

    def __str__(self):
        return f"cache generation {self.token} since {self.changed_at:%Y-%m-%d %H:%M:%S}"
