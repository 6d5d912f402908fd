"""The commands of uaf-tf: `uaf-prepare-data`, `uaf-pretrain`,
`uaf-finetune`, `uaf-export`, `uaf-reproduce` (`uaf_tf.cli.commands`).

Each command is a module here with `define_flags`, `run`, `main` and
`entry_point`; `launch/<command>.py` runs the same command from a source
checkout.
"""
