"""Solver benchmarking: the solver matrix (`solver_matrix`), its instances (`instances`) and
reports (`matrix_report`), Dolan–Moré performance profiles (`profiles`), and lowered problems
written for external solvers (`export`: MPS/LP; `conic_files`: CBF/SDPA)."""
