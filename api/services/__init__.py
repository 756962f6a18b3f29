"""Domain commands: one async function per use case, owning its transaction.

Each command asks the access policy, validates input, changes state and
appends its audit (and, once they exist, event) rows in ONE transaction. The
GraphQL mutations, the `takedown` command line and the workers all call these.
"""
