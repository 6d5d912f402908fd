"""TF Serving configuration written beside an export: model config,
batching parameters and the `tensorflow_model_server` command using them.

`export_run` writes, next to `<export_base>/<model_name>/`:

```
<export_base>/<model_name>.models.config    ModelServerConfig (text proto)
<export_base>/<model_name>.batching.config  BatchingParameters (text proto)
<export_base>/<model_name>.serve.sh         tensorflow_model_server ... "$@"
```

They sit beside the model directory, not in it, so the model directory
holds nothing but versions. The batch sizes of `BatchingConfig` are also
the batch sizes of the warm-up requests (`warmup.warmup_examples`), so a
server that batches has every batch shape warmed before it takes traffic.

Two properties of TF Serving's batching shape these files (see
`tensorflow_serving/batching/batching_session.cc` and `batching_util.cc`):

- every input of a request must have the same 0th dimension (the rows),
  and requests merged into one batch must have equal other dimensions;
- `pad_variable_length_inputs` pads with the *first element* of each
  request's tensor, which for `source_items` is a real item id that would
  be added to other users' histories. It stays off: clients send every
  history as exactly L entries (padded with "").
"""

import dataclasses
import os
import shlex

SERVER_BINARY = "tensorflow_model_server"
MODEL_CONFIG_SUFFIX = ".models.config"
BATCHING_CONFIG_SUFFIX = ".batching.config"
SERVE_SCRIPT_SUFFIX = ".serve.sh"
GRPC_PORT = 8500
REST_PORT = 8501


@dataclasses.dataclass(frozen=True)
class BatchingConfig:
    """Server-side batching (TF Serving `BatchingParameters`).

    Attributes:
        batch_sizes: allowed batch sizes, increasing; the last is
            `max_batch_size`. A merged batch is padded up to the next one,
            so the model only ever runs these shapes (and the warm-up file
            covers exactly these).
        batch_timeout_micros: the longest a request waits for a batch to
            fill (TF Serving's guide: 0 for throughput, 1-10 ms online).
        num_batch_threads: batches run in parallel (guide: CPU cores).
        max_enqueued_batches: queue bound; beyond it requests are refused
            (UNAVAILABLE) instead of waiting without limit.
    """

    batch_sizes: tuple[int, ...] = (1, 8, 32, 128, 256)
    batch_timeout_micros: int = 2000
    num_batch_threads: int = 4
    max_enqueued_batches: int = 100

    def __post_init__(self):
        sizes = tuple(int(b) for b in self.batch_sizes)
        if not sizes or sizes[0] < 1 or list(sizes) != sorted(set(sizes)):
            raise ValueError(
                "`batch_sizes` must be strictly increasing positive "
                f"integers. Received: batch_sizes={self.batch_sizes}"
            )
        object.__setattr__(self, "batch_sizes", sizes)
        for name in (
            "batch_timeout_micros",
            "num_batch_threads",
            "max_enqueued_batches",
        ):
            value = getattr(self, name)
            minimum = 0 if name == "batch_timeout_micros" else 1
            if not isinstance(value, int) or value < minimum:
                raise ValueError(
                    f"`{name}` must be an integer >= {minimum}. "
                    f"Received: {name}={value!r}"
                )

    @property
    def max_batch_size(self) -> int:
        return self.batch_sizes[-1]


def model_config_text(model_name: str, base_path: str) -> str:
    """A `ModelServerConfig` text proto serving the latest version."""
    return (
        "model_config_list {\n"
        "  config {\n"
        f'    name: "{model_name}"\n'
        f'    base_path: "{base_path}"\n'
        '    model_platform: "tensorflow"\n'
        "    model_version_policy { latest { num_versions: 1 } }\n"
        "  }\n"
        "}\n"
    )


def batching_parameters_text(config: BatchingConfig) -> str:
    """A `BatchingParameters` text proto for `--batching_parameters_file`."""
    lines = [
        f"max_batch_size {{ value: {config.max_batch_size} }}",
        f"batch_timeout_micros {{ value: {config.batch_timeout_micros} }}",
        f"max_enqueued_batches {{ value: {config.max_enqueued_batches} }}",
        f"num_batch_threads {{ value: {config.num_batch_threads} }}",
        *(f"allowed_batch_sizes: {b}" for b in config.batch_sizes),
        "pad_variable_length_inputs: false",
    ]
    return "\n".join(lines) + "\n"


def server_command(
    model_config_path: str,
    batching_config_path: str,
    grpc_port: int = GRPC_PORT,
    rest_port: int = REST_PORT,
    xla_cpu: bool = False,
) -> list[str]:
    """The `tensorflow_model_server` argv that uses the two files (and
    enables XLA:CPU JIT for an export compiled with `jit_compile`)."""
    return [
        SERVER_BINARY,
        f"--port={grpc_port}",
        f"--rest_api_port={rest_port}",
        f"--model_config_file={model_config_path}",
        "--enable_batching=true",
        f"--batching_parameters_file={batching_config_path}",
        *(["--xla_cpu_compilation_enabled=true"] if xla_cpu else []),
    ]


def server_file_paths(export_base: str, model_name: str) -> dict[str, str]:
    """Where `write_server_files` writes, by kind."""
    stem = os.path.join(os.path.abspath(export_base), model_name)
    return {
        "model_config": stem + MODEL_CONFIG_SUFFIX,
        "batching_config": stem + BATCHING_CONFIG_SUFFIX,
        "serve_script": stem + SERVE_SCRIPT_SUFFIX,
    }


def write_server_files(
    export_base: str,
    model_name: str,
    batching: BatchingConfig,
    base_path: str | None = None,
    xla_cpu: bool = False,
) -> dict[str, str]:
    """Writes the model config, batching parameters and serve script.

    Each file is written to a temporary name and renamed into place, so a
    server never reads half a file.

    Args:
        export_base: the export base directory.
        model_name: the TF Serving model name.
        batching: the batching configuration.
        base_path: the model directory as the server sees it (e.g.
            `/models/uaf` inside a container); default: the absolute
            local path of `<export_base>/<model_name>`.
        xla_cpu: the export was XLA-compiled (`jit_compile`): the serve
            script enables TF Serving's XLA:CPU JIT.

    Returns:
        `server_file_paths(...)`.
    """
    paths = server_file_paths(export_base, model_name)
    if base_path is None:
        base_path = os.path.join(os.path.abspath(export_base), model_name)
    command = server_command(
        paths["model_config"], paths["batching_config"], xla_cpu=xla_cpu
    )
    script = (
        "#!/bin/sh\n"
        f"# Serves {model_name} with TF Serving >= 2.14 (which fills the\n"
        "# signature input defaults). Extra arguments are passed on.\n"
        f'exec {shlex.join(command)} "$@"\n'
    )
    contents = {
        "model_config": model_config_text(model_name, base_path),
        "batching_config": batching_parameters_text(batching),
        "serve_script": script,
    }
    for kind, path in paths.items():
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(contents[kind])
        os.chmod(tmp, 0o755 if kind == "serve_script" else 0o644)
        os.replace(tmp, path)
    return paths
