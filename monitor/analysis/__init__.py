"""Text analysis of stored posts: sentiment (``monitor.analysis.sentiment``) and the stages that build on it."""
