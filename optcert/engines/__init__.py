"""Engines: functions (problem, compiled cases, options, deadline) → EngineOutput.

One module per engine family; `optcert.verify` holds the registry and turns outputs into
Results through `certify.conclude`.
"""
