"""The benchmark: a million subscribers through the real pipeline, stage by stage."""
