"""Flags derived from config dataclasses, on toy configs."""

import dataclasses
import json

import pytest
from absl import app
from absl import flags

from uaf_tf import config_flags
from uaf_tf import errors


@dataclasses.dataclass(frozen=True)
class Loop:
    """Toy loop options.

    Attributes:
        epochs: passes over the data.
        jit_compile: XLA for the step; None = try, fall back.
    """

    epochs: int = 3
    jit_compile: bool | None = None


@dataclasses.dataclass(frozen=True)
class Toy:
    """Toy run options.

    Attributes:
        data_dir: where the data is.
        widths: layer widths,
            one per layer.
        rate: learning rate.
        mode: how to run.
        verbose: print more.
        cap: optional cap on the steps.
        loop: the loop's options.

    Example:

        Toy(data_dir="d")
    """

    data_dir: str
    widths: tuple[int, ...] = (4, 8)
    rate: float = 0.5
    mode: str = dataclasses.field(
        default="fast", metadata={config_flags.CHOICES: ("fast", "slow")}
    )
    verbose: bool = True
    cap: int | None = None
    loop: Loop = Loop(epochs=7)


@dataclasses.dataclass(frozen=True)
class Checked:
    """Validated options.

    Attributes:
        rate: learning rate.
        fraction: share of the data.
        widths: layer widths.
    """

    rate: float = 0.5
    fraction: float = 1.0
    widths: tuple[int, ...] = (4,)

    def __post_init__(self):
        config_flags.check_positive(self, "rate")
        config_flags.check_fraction(self, "fraction")
        config_flags.check_int_tuple(self, "widths", 1)


@dataclasses.dataclass(frozen=True)
class CheckedLoop:
    """Validated loop options.

    Attributes:
        steps: steps per epoch.
        penalty: a non-negative weight.
    """

    steps: int = 1
    penalty: float = 0.0

    def __post_init__(self):
        config_flags.check_at_least(self, 1, "steps")
        config_flags.check_non_negative(self, "penalty")


@dataclasses.dataclass(frozen=True)
class CheckedRun:
    """A run with a nested validated field.

    Attributes:
        rate: learning rate.
        loop: the loop's options.
    """

    rate: float = 0.5
    loop: CheckedLoop = CheckedLoop()

    def __post_init__(self):
        config_flags.check_positive(self, "rate")


def _parse(argv, config_cls=Toy):
    fv = flags.FlagValues()
    config_flags.define_config_flags(config_cls, fv)
    fv(["prog", *argv])
    return fv


def test_help_comes_from_the_attributes_section():
    docs = config_flags.attribute_docs(Toy)
    assert list(docs) == [
        "data_dir",
        "widths",
        "rate",
        "mode",
        "verbose",
        "cap",
        "loop",
    ]
    assert docs["widths"] == "layer widths, one per layer."
    fv = _parse([])
    assert fv["widths"].help == "Layer widths, one per layer."
    assert fv["mode"].help == "<fast|slow>: How to run."
    assert fv["jit_compile"].help == (
        "<auto|false|true>: XLA for the step; None = try, fall back. "
        "(auto: None)"
    )


def test_flag_defaults_are_the_field_defaults():
    fv = _parse([])
    assert fv["data_dir"].default is None  # Required: no default.
    assert fv["widths"].default == (4, 8)
    assert fv["widths"].default_as_str == "'4,8'"
    assert fv["rate"].default == 0.5
    assert fv["mode"].default == "fast"
    assert fv["verbose"].default is True
    assert fv["cap"].default is None
    # A nested field's default is that of the enclosing default instance
    # (Loop(epochs=7)), not Loop's class default 3.
    assert fv["epochs"].default == 7
    assert fv["jit_compile"].default == "auto"


def test_flags_round_trip_to_the_config():
    fv = _parse(
        [
            "--data_dir=d",
            "--widths=1,2,3",
            "--rate=0.25",
            "--mode=slow",
            "--noverbose",
            "--cap=9",
            "--epochs=2",
            "--jit_compile=false",
        ]
    )
    assert config_flags.config_from_flags(Toy, fv) == Toy(
        data_dir="d",
        widths=(1, 2, 3),
        rate=0.25,
        mode="slow",
        verbose=False,
        cap=9,
        loop=Loop(epochs=2, jit_compile=False),
    )


def test_unset_flags_keep_the_dataclass_defaults():
    config = config_flags.config_from_flags(Toy, _parse(["--data_dir=d"]))
    assert config == Toy(data_dir="d")
    assert config.loop == Loop(epochs=7, jit_compile=None)


def test_given_flags_beat_defaults_which_beat_field_defaults(tmp_path):
    flagfile = tmp_path / "preset.cfg"
    flagfile.write_text("--rate=0.125\n")
    fv = _parse([f"--flagfile={flagfile}", "--epochs=5"])
    defaults = {"data_dir": "from_json", "rate": 1.0, "epochs": 1, "cap": 4}
    config = config_flags.config_from_flags(Toy, fv, defaults=defaults)
    # Flagfile and command line count as given; the rest come from
    # `defaults`, then from the dataclass.
    assert config == Toy(
        data_dir="from_json", rate=0.125, cap=4, loop=Loop(epochs=5)
    )


def test_missing_required_field_is_a_usage_error_naming_the_flag():
    with pytest.raises(app.UsageError, match="--data_dir is required"):
        config_flags.config_from_flags(Toy, _parse([]))


@pytest.mark.parametrize(
    "argv", [["--mode=medium"], ["--widths=1,x"], ["--jit_compile=yes"]]
)
def test_bad_values_are_rejected_at_parse_time(argv):
    with pytest.raises(flags.IllegalFlagValueError):
        _parse(argv)


def test_nested_field_names_must_not_clash():
    @dataclasses.dataclass(frozen=True)
    class Clash:
        """Clashes.

        Attributes:
            epochs: outer epochs.
            loop: holds epochs too.
        """

        epochs: int = 1
        loop: Loop = Loop()

    with pytest.raises(ValueError, match=r"`epochs` and `loop.epochs`"):
        config_flags.define_config_flags(Clash, flags.FlagValues())


def test_every_field_needs_a_help_text():
    @dataclasses.dataclass(frozen=True)
    class Undocumented:
        """No attributes section."""

        x: int = 1

    with pytest.raises(ValueError, match=r"Undocumented.x"):
        config_flags.define_config_flags(Undocumented, flags.FlagValues())


def test_unsupported_field_types_are_refused():
    @dataclasses.dataclass(frozen=True)
    class Listy:
        """Lists.

        Attributes:
            names: some names.
        """

        names: list[str] = dataclasses.field(default_factory=list)

    with pytest.raises(TypeError, match=r"Listy.names"):
        config_flags.define_config_flags(Listy, flags.FlagValues())


def test_flags_belong_to_the_calling_module():
    fv = flags.FlagValues()
    names = config_flags.define_config_flags(Toy, fv)
    assert len(names) == 8
    key_flags = {f.name for f in fv.get_key_flags_for_module(__name__)}
    assert key_flags == set(names)
    assert not fv.get_key_flags_for_module(config_flags.__name__)


def test_config_json_round_trip_through_flatten():
    config = Toy(data_dir="d", widths=(2,), cap=3, loop=Loop(1, True))
    saved = json.loads(
        json.dumps({**dataclasses.asdict(config), "task": "toy"})
    )
    assert saved["widths"] == [2] and saved["loop"] == {
        "epochs": 1,
        "jit_compile": True,
    }
    flat = config_flags.flatten_config_dict(Toy, saved, ignore=("task",))
    assert flat["widths"] == (2,) and flat["epochs"] == 1
    fv = _parse([])
    assert config_flags.config_from_flags(Toy, fv, defaults=flat) == config
    # Flat spellings of nested fields are accepted too.
    flat = config_flags.flatten_config_dict(Toy, {"epochs": 4})
    assert flat == {"epochs": 4}


def test_flatten_names_an_unknown_key():
    with pytest.raises(KeyError, match=r"`loop.lr` is not a field of Toy"):
        config_flags.flatten_config_dict(Toy, {"loop": {"lr": 1}})
    with pytest.raises(KeyError, match=r"`task`"):
        config_flags.flatten_config_dict(Toy, {"task": "toy"})


@pytest.mark.parametrize(
    "kwargs, field, shown",
    [
        ({"rate": -1.0}, "rate", "-1.0"),
        ({"rate": 0.0}, "rate", "0.0"),
        ({"rate": float("inf")}, "rate", "inf"),
        ({"rate": float("nan")}, "rate", "nan"),
        ({"rate": True}, "rate", "true"),
        ({"fraction": 0.0}, "fraction", "0.0"),
        ({"fraction": 1.5}, "fraction", "1.5"),
        ({"widths": ()}, "widths", ""),
        ({"widths": (2, 0)}, "widths", "2,0"),
    ],
)
def test_config_errors_name_the_field_and_the_value(kwargs, field, shown):
    with pytest.raises(config_flags.ConfigError) as info:
        Checked(**kwargs)
    error = info.value
    # A ValueError for Python callers, a UserError (one line) for commands.
    assert isinstance(error, ValueError)
    assert isinstance(error, errors.UserError)
    value = kwargs[field]
    assert str(error).startswith(f"`{field}` must be ")
    assert str(error).endswith(f"Received: {field}={value!r}")
    assert error.flag_message().startswith(f"--{field}={shown}: must be ")


@pytest.mark.parametrize(
    "kwargs", [{"rate": 1}, {"fraction": 1.0}, {"fraction": 1e-9}]
)
def test_valid_edge_values_pass(kwargs):
    Checked(**kwargs)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--rate=-1"], "--rate=-1.0: must be > 0 and finite"),
        (["--steps=0"], "--steps=0: must be an integer >= 1"),
        (["--penalty=-0.5"], "--penalty=-0.5: must be >= 0 and finite"),
    ],
)
def test_config_from_flags_reports_invalid_values_as_flags(argv, message):
    with pytest.raises(config_flags.FlagError) as info:
        config_flags.config_from_flags(CheckedRun, _parse(argv, CheckedRun))
    assert str(info.value) == message
    assert isinstance(info.value, errors.UserError)


def test_replace_fields_finds_nested_fields_by_flag_name():
    config = CheckedRun()
    replaced = config_flags.replace_fields(config, {"steps": 5, "rate": 2.0})
    assert replaced == CheckedRun(rate=2.0, loop=CheckedLoop(steps=5))
    with pytest.raises(config_flags.ConfigError, match="steps"):
        config_flags.replace_fields(config, {"steps": 0})
    with pytest.raises(KeyError, match="lr"):
        config_flags.replace_fields(config, {"lr": 1.0})
