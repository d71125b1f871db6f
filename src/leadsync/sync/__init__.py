"""The durable sync engine: the lead row is the queue, the worker drains it to HubSpot."""
