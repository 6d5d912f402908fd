"""`uaf-pretrain` from a source checkout (uaf_tf/cli/pretrain.py)."""

from uaf_tf.cli import commands

if __name__ == "__main__":
    commands.pretrain()
