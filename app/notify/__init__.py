"""Notifications to agencies: subscriptions, a transactional outbox, and the dispatcher.

A flag change writes its notification rows in the same transaction as the change
(:func:`app.notify.outbox.enqueue`), so a rolled-back change sends nothing and a committed
one is never lost. ``triage notify run`` delivers them (:mod:`app.notify.dispatcher`).
This package sits just below ``flags`` so that the flag write paths (the lifecycle, the
intake, erasure) can call it; it knows a flag only by the few facts it needs
(:class:`app.notify.outbox.FlagFacts`).
"""
