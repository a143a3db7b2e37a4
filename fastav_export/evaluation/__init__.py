"""`fastav-export eval`: datasets of questions about videos, answer matching, accuracy against FLOPs."""
