"""The floor: the least a phone login by code can do, with the project's middleware.

Five requests: the number form (CSRF), the number posted (a code made, hashed
into the session: a session write), the code form, the code posted (checked,
the user fetched, `login()`: a session key rotation), and the home page.
No limits, no log, no messages: what the project adds on top of this is what
its ratio to the floor measures.
"""
