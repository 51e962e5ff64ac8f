"""Long runs that lose nothing finished: the SQLite results store (`store`), the sweep entry point
(`run.run_sweep`), per-task child processes with hard limits (`runner`, `child`), the Dask
executor (`dask_executor`), task types (`types`) and the progress display (`progress`)."""
