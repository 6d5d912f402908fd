"""`uaf-prepare-data` from a source checkout (uaf_tf/cli/prepare_data.py)."""

from uaf_tf.cli import commands

if __name__ == "__main__":
    commands.prepare_data()
