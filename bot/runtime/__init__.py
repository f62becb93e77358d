"""Runtimes: the only code that talks to a Telegram library. They turn updates into neutral
:class:`handlers.types.Incoming` events and outbox rows into Bot API calls."""
