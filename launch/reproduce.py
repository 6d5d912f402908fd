"""`uaf-reproduce` from a source checkout (uaf_tf/cli/reproduce.py)."""

from uaf_tf.cli import commands

if __name__ == "__main__":
    commands.reproduce()
