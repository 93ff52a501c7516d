"""The contract's types, at the bottom of the import graph.

What police systems send (the incident, ``incident.py``) and the vocabulary every layer
shares (checklist item ids, ``items.py``). Everything else imports these; they import
nothing of the service's but the error helpers, so the pure scoring and flag engines and
the classifier can use them without depending on storage or HTTP.
"""
