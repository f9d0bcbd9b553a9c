"""A JSON verification API for mobile apps, compatible with the Nexmo Verify proxy contract.

Four POST endpoints under /api/verify/ (request, check, cancel, next) answer
with Verify v1 status codes whichever backend runs. The client never sees an
upstream request id: `request_id` is a signed token naming a server-side
record (see tokens.py). The limits and the event log are the web flow's own.
The document at /api/openapi.json (openapi.json beside this file) describes
every request and answer.
"""
