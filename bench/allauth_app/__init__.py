"""The peer: django-allauth's phone login by code, configured minimally.

Phone numbers are kept in User.username (allauth leaves the storage to the
adapter); codes are printed like the project's console backend prints them.
"""
