"""Progress kept inside a running stage: its progress scope (``scope``), finished work units
(``units``: recovery batches, relabelled epochs) and relabel shards adopted on resume (``shards``).
Per-epoch training checkpoints are ``scdd.training.checkpoint``; run folders that continue when
their settings match are ``scdd.run_folder`` (see README "Resuming a run")."""
