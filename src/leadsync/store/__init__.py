"""The one owner of the database: the tables, every statement on the leads table (insert,
claim, renew, complete, release, requeue, NOTIFY, the counts), the migrations and the engine
and session set-up. Nothing above this package writes SQL against `leads`.
"""
