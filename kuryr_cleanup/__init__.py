"""kuryr-migrate: move an OpenShift-on-OpenStack cluster off Kuryr and clean up after it."""

__version__ = "0.1.0"
