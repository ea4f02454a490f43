"""Model references: ``SOURCE:REF`` sources, loading files and factories, checkpoints."""
