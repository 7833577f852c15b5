"""The simulated OpenStack cloud and OpenShift cluster (see docs/simulator.md)."""
