"""Celery app and tasks: thin wrappers that turn queue messages into calls into memcube."""
