import factory
from factory.django import DjangoModelFactory

from accounts.models import User


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"person{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    phone_number_for_2fa = factory.Sequence(lambda n: f"+1415555{n % 10000:04d}")
    password = factory.django.Password("correct horse battery staple")
    is_2fa_enabled = False
