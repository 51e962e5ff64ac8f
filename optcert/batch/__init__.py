"""Batch runs (`optcert run`): a VNN-COMP instances CSV → one result file per instance and a
summary table, resumable through the results store (`instances`, `tasks`, `summary`)."""
