"""`optcert check`: re-verify a result from its stored evidence, without running any solver.

Independent of the engines it checks: plain numpy float64 with a-priori rounding-error bounds
(Higham 2002, §3.1) and one-ulp outward steps. It reads the network through `optcert.ir` and the
property through `optcert.spec`, and nothing else of optcert's (no torch bound kernel, no lowering,
no solver, no `certify`): a contract in `.importlinter` keeps it so.
"""
