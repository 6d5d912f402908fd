"""`uaf-profile` from a source checkout (uaf_tf/cli/profile.py)."""

from uaf_tf.cli import commands

if __name__ == "__main__":
    commands.profile()
