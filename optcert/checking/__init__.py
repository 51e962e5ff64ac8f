"""`optcert check`: re-verify a result from its stored evidence, without running any solver.

Independent of the engines it checks: plain numpy float64 with a-priori rounding-error bounds
(Higham 2002, §3.1) and one-ulp outward steps. It reads the network through `optcert.ir` and the
property through `optcert.spec`, and nothing else of optcert's (no torch bound kernel, no lowering,
no solver, no `certify`): a contract in `.importlinter` keeps it so.

Modules: `check` (the steps of `check_result`), `counterexample`, `items` (evidence items re-derived),
`tree` and `replay` (branch-and-bound trees), `sdp` and `sdp_model` (SDP/BM multipliers), `dual` (the
Lagrangian bound from any multipliers), `crown` and `interval` (the checker's own intermediate
bounds), `net` (rounding constants), `evidence` and `arrays` (the format engines write), `inputs`,
`report`, `tamper` (change one number, for tests and bench/certificates.py).
"""
