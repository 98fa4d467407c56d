"""Clients of the wschat protocol: ``wschat token`` and the terminal chat ``wschat chat``.

Nothing here is deployed; these modules run on a user's machine.
"""
