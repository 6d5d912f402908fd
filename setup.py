"""Installs uaf-tf: User-specific Adaptive Fine-tuning (UAF), TF2/Keras 3."""

import pathlib

import setuptools

HERE = pathlib.Path(__file__).parent

setuptools.setup(
    name="uaf-tf",
    version="0.1.0",
    description=(
        "User-specific Adaptive Fine-tuning for cross-domain recommendation "
        "(TKDE 2021) in TensorFlow 2 / Keras 3."
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=setuptools.find_packages(include=["uaf_tf", "uaf_tf.*"]),
    python_requires=">=3.10,<3.13",
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "tensorflow-probability>=0.25,<0.26",
        # tensorflow-probability 0.25 imports tf_keras at import time.
        "tf-keras>=2.21,<2.22",
        "keras>=3.10,<4",
        # Viewer for the training and policy-utilisation summaries; TF 2.21
        # no longer pulls it in.
        "tensorboard>=2.20,<2.22",
        "numpy>=1.26,<3",
        "absl-py>=2.0,<3",
        # MovieLens-100K fallback copy ships as parquet files.
        "pyarrow>=14",
    ],
    entry_points={
        "console_scripts": [
            "uaf-prepare-data=uaf_tf.cli.commands:prepare_data",
            "uaf-pretrain=uaf_tf.cli.commands:pretrain",
            "uaf-finetune=uaf_tf.cli.commands:finetune",
            "uaf-export=uaf_tf.cli.commands:export",
            "uaf-reproduce=uaf_tf.cli.commands:reproduce",
            "uaf-profile=uaf_tf.cli.commands:profile",
        ],
    },
    extras_require={
        "dev": [
            "pytest>=8",
            "pytest-timeout>=2.3",
            # Runs the suite on every core (launch/run_tests.sh).
            "pytest-xdist>=3.5",
            "ruff>=0.6",
            "hypothesis>=6.100",
        ],
        # Warm-up requests for TF Serving are PredictionLog protos.
        "serving": ["tensorflow-serving-api>=2.21,<2.22"],
        # Figures of launch/reproduce.py (learning curves, utilisation).
        "plots": ["matplotlib>=3.8"],
    },
)
