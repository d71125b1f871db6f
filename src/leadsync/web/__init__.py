"""HTTP: routes that translate requests into use-case calls and results into responses, and
the plumbing every route shares (auth, body and header limits, strict JSON, the error shape).
"""
