"""Search: the branch-and-bound coordinator (`coordinator`), branching rules (`branching`),
per-domain bounding functions (`bounding`), exact LP leaves (`leaves`) and the PGD falsifier
(`attack`). Used by the engines; knows nothing of the CLI, studies or sweeps."""
