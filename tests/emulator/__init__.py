"""An HTTPS emulator of Vonage Verify v1 and v2, for tests that run the real SDK over a socket.

See `tests.emulator.fixtures` for the pytest fixtures and how to use them.
"""

from .rules import Message
from .server import Fault, VonageEmulator

__all__ = ["Fault", "Message", "VonageEmulator"]
