"""One module per command: each takes options and a UI, does the work, and returns a `Result`.

No click and no printing here: the CLI (`kuryr_cleanup.cli`) parses, calls, renders the result and
exits with its code. Interaction (progress lines, the plan shown before a prompt, the typed-infraID
confirmation) goes through the `UI` the CLI passes in.
"""
