"""Rigorous lower bounds from any multipliers, in outward-rounded float64 arithmetic:
`lp` (Neumaier–Shcherbina from LP row duals) and `sdp` (SDP / Burer–Monteiro multipliers,
centred trace bound, Rump's Cholesky test). Pure mathematics on forms: no solver, no graph."""
