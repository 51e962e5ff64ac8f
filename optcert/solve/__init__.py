"""Lowered problems on a backend, turned into bounds with their trust level: `linear` (solve an
LP/MILP, certify from duals or the solver's proven bound) and `progressive` (per-neuron LP/MILP
tightening of intermediate bounds). The only core package that calls `solvers`."""
