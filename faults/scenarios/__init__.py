"""One module per scenario: `run(stack, world) -> dict` with "ok", "key" (the summary
line) and the figures."""
