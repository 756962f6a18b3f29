"""Data access: SQL as SQL, parameterised, one module per table it owns.

Functions take a connection first and never open transactions: the command
that calls them decides where the transaction begins and ends.
"""
