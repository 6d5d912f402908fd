"""Errors that are the user's to fix, not bugs: one line, no traceback.

A command (`uaf_tf.cli`) that ends in a `UserError` prints
`error: <message>` on stderr and exits with status 2; any other exception
is a bug and keeps its traceback. Raise a `UserError` (or a subclass) for
bad input files, missing or wrong paths and invalid flag values, with a
message that names the file and line, the path or the flag, and what was
received, e.g.:

```
error: /data/u.data:17: bad_item_id: item id is empty. Received: '1\\t\\t5'
error: --pretrained=/runs/x: not a pretraining run (no model.json)
```
"""


class UserError(Exception):
    """Bad input, a wrong path or an invalid flag value (exit status 2)."""


EXIT_STATUS = 2


def format_error(error: BaseException) -> str:
    """The one line printed for `error`: `error: <message>`."""
    message = " ".join(str(error).split("\n")).strip() or type(error).__name__
    return f"error: {message}"
