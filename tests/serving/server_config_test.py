"""TF Serving files beside an export: model config, batching, command."""

import os
import shlex

import pytest
from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf import message_factory
from google.protobuf import text_format

from uaf_tf.serving import server_config

model_server_config_pb2 = pytest.importorskip(
    "tensorflow_serving.config.model_server_config_pb2"
)


def _batching_parameters_class():
    """TF Serving's `BatchingParameters` message, built from its fields.

    `tensorflow-serving-api` does not ship `session_bundle_config.proto`,
    so the message is declared here field for field as in
    tensorflow_serving/servables/tensorflow/session_bundle_config.proto.
    """
    from google.protobuf import wrappers_pb2

    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)
    proto = descriptor_pb2.FileDescriptorProto(
        name="batching.proto",
        package="tensorflow.serving",
        dependency=["google/protobuf/wrappers.proto"],
    )
    message = proto.message_type.add(name="BatchingParameters")
    F = descriptor_pb2.FieldDescriptorProto
    fields = [
        ("max_batch_size", 1, ".google.protobuf.Int64Value"),
        ("batch_timeout_micros", 2, ".google.protobuf.Int64Value"),
        ("max_enqueued_batches", 3, ".google.protobuf.Int64Value"),
        ("num_batch_threads", 4, ".google.protobuf.Int64Value"),
        ("thread_pool_name", 5, ".google.protobuf.StringValue"),
        ("enable_large_batch_splitting", 8, ".google.protobuf.BoolValue"),
        ("max_execution_batch_size", 9, ".google.protobuf.Int64Value"),
    ]
    for name, number, type_name in fields:
        message.field.add(
            name=name,
            number=number,
            type=F.TYPE_MESSAGE,
            type_name=type_name,
            label=F.LABEL_OPTIONAL,
        )
    message.field.add(
        name="allowed_batch_sizes",
        number=6,
        type=F.TYPE_INT64,
        label=F.LABEL_REPEATED,
    )
    message.field.add(
        name="pad_variable_length_inputs",
        number=7,
        type=F.TYPE_BOOL,
        label=F.LABEL_OPTIONAL,
    )
    pool.Add(proto)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters")
    )


def test_files_parse_as_tf_serving_protos(tmp_path):
    batching = server_config.BatchingConfig(
        batch_sizes=(1, 4, 16), batch_timeout_micros=500, num_batch_threads=2
    )
    paths = server_config.write_server_files(str(tmp_path), "uaf", batching)
    assert sorted(os.listdir(tmp_path)) == [
        "uaf.batching.config",
        "uaf.models.config",
        "uaf.serve.sh",
    ]

    with open(paths["model_config"]) as f:
        config = text_format.Parse(
            f.read(), model_server_config_pb2.ModelServerConfig()
        )
    (model,) = config.model_config_list.config
    assert model.name == "uaf"
    assert model.base_path == str(tmp_path / "uaf")
    assert model.model_platform == "tensorflow"
    assert model.model_version_policy.latest.num_versions == 1

    with open(paths["batching_config"]) as f:
        params = text_format.Parse(f.read(), _batching_parameters_class()())
    assert params.max_batch_size.value == 16  # the last allowed size
    assert list(params.allowed_batch_sizes) == [1, 4, 16]
    assert params.batch_timeout_micros.value == 500
    assert params.num_batch_threads.value == 2
    assert params.max_enqueued_batches.value == 100
    assert params.pad_variable_length_inputs is False


def test_serve_script_runs_the_server_with_both_files(tmp_path):
    paths = server_config.write_server_files(
        str(tmp_path), "m", server_config.BatchingConfig(), "/models/m"
    )
    assert os.access(paths["serve_script"], os.X_OK)
    with open(paths["serve_script"]) as f:
        exec_line = f.read().splitlines()[-1]
    argv = shlex.split(exec_line)
    assert argv[0] == "exec" and argv[-1] == "$@"
    assert argv[1:-1] == server_config.server_command(
        paths["model_config"], paths["batching_config"]
    )
    assert "--enable_batching=true" in argv
    with open(paths["model_config"]) as f:
        assert 'base_path: "/models/m"' in f.read()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch_sizes": ()},
        {"batch_sizes": (0, 8)},
        {"batch_sizes": (8, 1)},
        {"batch_sizes": (1, 1)},
        {"num_batch_threads": 0},
        {"batch_timeout_micros": -1},
    ],
)
def test_bad_batching_configs_are_rejected(kwargs):
    with pytest.raises(ValueError, match="Received"):
        server_config.BatchingConfig(**kwargs)
