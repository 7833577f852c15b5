"""kuryr-migrate: move an OpenShift-on-OpenStack cluster off Kuryr and clean up after it."""

import logging

__version__ = "0.1.0"

# The tool's log records go only where -v and --log-file send them (console.configure_logging).
# Without a handler of its own, logging's last-resort handler would print every warning and error
# on stderr a second time, bare, beside the one line the CLI prints for it.
logging.getLogger("kuryr_cleanup").addHandler(logging.NullHandler())
