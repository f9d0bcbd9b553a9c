import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from verificationlog.models import Outcome, Purpose, VerificationLog


class VerificationLogFactory(DjangoModelFactory):
    class Meta:
        model = VerificationLog

    created_at = factory.LazyFunction(timezone.now)
    purpose = Purpose.LOGIN
    number = "+14155550100"
    user = None
    backend = "locmem"
    request_id = factory.Sequence(lambda n: f"{n:032x}")
    outcome = Outcome.STARTED
    ip = "203.0.113.7"
    price = None
    currency = ""
    detail = ""
