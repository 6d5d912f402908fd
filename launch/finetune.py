"""`uaf-finetune` from a source checkout (uaf_tf/cli/finetune.py)."""

from uaf_tf.cli import commands

if __name__ == "__main__":
    commands.finetune()
