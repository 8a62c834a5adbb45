"""Launcher for moto's server with the controls and protocol bridges the ops Lambdas' tests need.

See ../README.md for the controls (``/_ops/...``) and how tests and the demo start it.
"""
