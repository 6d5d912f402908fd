"""A function with the weights it reads folded in as constants.

A traced function reads each variable through an input of every call: a
served UAF model of the standard shape passes about 150 of them (both
branches of every block, the policy network, the embeddings). Each input
costs a little on every request, whatever the batch, which is much of a
batch-1 request's time. Folded in as constants, the weights become part of
the program (and, under XLA, of the compiled executable), and a request
passes only its ids. `docs/serving.md` ("Constant weights") has the
figures.

The price: the constants are a snapshot of the weights when the function
is made (assigning a variable later changes nothing), and they are stored
in the function's graph, beside the variables if those are saved too.
"""

import math
from collections.abc import Callable

import tensorflow as tf

try:  # TF's converter (also what the TFLite converter uses); no public v2 API.
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )
except ImportError as error:  # pragma: no cover - TF moved its internals
    raise ImportError(
        "uaf_tf.serving.constant_weights needs TensorFlow's "
        "`convert_variables_to_constants_v2` (tensorflow.python.framework."
        "convert_to_constants), which this TensorFlow does not have."
    ) from error


# A GraphDef (and so a SavedModel's saved_model.pb) cannot pass 2 GiB.
MAX_CONSTANT_BYTES = 1 << 30


def check_foldable(variables, max_bytes: int | None = None) -> None:
    """Raises ValueError if `variables` hold more than `max_bytes` (default
    `MAX_CONSTANT_BYTES`)."""
    if max_bytes is None:
        max_bytes = MAX_CONSTANT_BYTES
    num_bytes = sum(
        math.prod(variable.shape) * tf.as_dtype(variable.dtype).size
        for variable in variables  # tf.Variable or keras.Variable
    )
    if num_bytes > max_bytes:
        raise ValueError(
            f"The weights to fold in as constants hold {num_bytes / 2**20:.1f} "
            f"MiB, more than the {max_bytes / 2**20:.1f} MiB a graph can "
            "carry here (protobuf caps it at 2 GiB); keep them as variables."
        )


def with_constant_weights(
    function: Callable,
    input_signature: list[tf.TensorSpec],
    jit_compile: bool = False,
    max_bytes: int | None = None,
) -> Callable:
    """`function`, traced once for `input_signature`, with every variable it
    reads replaced by a constant holding the variable's value now.

    Args:
        function: a Python callable of tensors (e.g. `lambda ids: model(ids,
            training=False)`); it may return any nest of tensors.
        input_signature: the `tf.TensorSpec`s it is traced for (dimensions
            may be None).
        jit_compile: bool, trace it for XLA and compile the result with XLA
            (`tf.function(jit_compile=True)`; XLA compiles once per input
            shape it meets).
        max_bytes: int, the most bytes of weights to fold in (default
            `MAX_CONSTANT_BYTES`, 1 GiB). The constants
            live in the function's graph, which protobuf caps at 2 GiB, so
            a model with (say) a 1M-item embedding table cannot be folded.

    Returns:
        A callable with `function`'s arguments and output structure.

    Raises:
        ValueError: the weights `function` reads hold more than `max_bytes`.

    Example:
    >>> import tensorflow as tf
    >>> scale = tf.Variable(2.0)
    >>> double = with_constant_weights(
    ...     lambda x: {"y": x * scale}, [tf.TensorSpec([None], tf.float32)])
    >>> _ = scale.assign(3.0)  # too late: the constant holds 2.0
    >>> double(tf.constant([1.0, 2.0]))["y"].numpy()
    array([2., 4.], dtype=float32)
    """
    traced = tf.function(
        function, input_signature=input_signature, jit_compile=jit_compile
    ).get_concrete_function()
    check_foldable(traced.variables, max_bytes)
    # `lower_control_flow=False` keeps `tf.cond` / `tf.switch_case` as the
    # functional ops XLA compiles (lowered, they become `Switch` ops).
    constant = convert_variables_to_constants_v2(
        traced, lower_control_flow=False
    )

    def call(*args):
        return tf.nest.pack_sequence_as(
            traced.structured_outputs, constant(*args), expand_composites=True
        )

    return tf.function(call, jit_compile=True) if jit_compile else call
