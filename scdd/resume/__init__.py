"""Resuming interrupted runs: progress scopes, per-epoch training checkpoints, finished work units,
and run folders that continue when their settings match (see README "Resuming a run")."""
