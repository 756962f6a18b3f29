"""The GraphQL transport: parse input, call a command or a read, map the result. Nothing decides here."""
