"""The login flows: one verification process, and the pages, API and command over it."""
