"""`uaf-export` from a source checkout (uaf_tf/cli/export.py)."""

from uaf_tf.cli import commands

if __name__ == "__main__":
    commands.export()
