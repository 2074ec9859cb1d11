"""Prefect 3 plug-in for scout-persist: task results persist as Scout jobs."""
