"""Leads: the public intake API, its validation and storage."""
