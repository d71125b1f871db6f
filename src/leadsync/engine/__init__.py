"""The sync engine: claim due leads, write them to HubSpot as contacts, record each outcome.

`worker.py` is the loop, `writer.py` turns a claimed batch into HubSpot calls and one result
per lead, `outcomes.py` turns a result into the lead's next state (with `retry.py`), `gate.py`
is the one request budget and pause every worker shares, `lease.py` keeps a batch's lease
ahead of its calls, `contact.py` maps a lead to contact properties.
"""
