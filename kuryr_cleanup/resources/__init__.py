"""One module per kind of resource: how it is found, planned, and changed or deleted."""
