"""MovieLens user profile labels for the profile-prediction task (sec. 5.5).

`user_profiles.tsv` in a dataset directory has a header line and one row
per user: `user<TAB>gender<TAB>age_bracket<TAB>occupation`. The `user`
column holds the raw user id, equal to the `user` feature of the
fine-tuning examples. Per release:
- ML-100K (`u.user`): `age_bracket` is the decade, e.g. `"20-29"`;
  `occupation` the GroupLens word (`"technician"`).
- ML-1M (`users.dat`): `age_bracket` is GroupLens's own range
  (`"18-24"`, `"56+"`, `"0-17"` for its "Under 18"); `occupation` the name
  of GroupLens's code (`"college/grad student"`).
"""

import os
from typing import NamedTuple

from uaf_tf.data.preparation import bad_lines as bl

USER_PROFILES_FILE = "user_profiles.tsv"
HEADER = ("user", "gender", "age_bracket", "occupation")


class UserProfile(NamedTuple):
    gender: str
    age_bracket: str
    occupation: str


def age_bracket(age: int) -> str:
    """Decade bracket: 24 -> `"20-29"`, 7 -> `"0-9"`."""
    if age < 0:
        raise ValueError(f"`age` must be >= 0. Received: age={age}")
    low = age // 10 * 10
    return f"{low}-{low + 9}"


def read_u_user(path: str) -> dict[str, UserProfile]:
    """Reads GroupLens `u.user` (`user|age|gender|occupation|zip`)."""
    profiles = {}
    with open(path, encoding="latin-1") as f:
        for line_number, line in enumerate(f, start=1):
            fields = line.rstrip("\r\n").split("|")
            if len(fields) != 5 or not fields[1].isdigit():
                raise bl.BadLineError(
                    path,
                    line_number,
                    bl.BAD_PROFILE,
                    "expected 'user|age|gender|occupation|zip'.",
                    line.rstrip("\r\n"),
                )
            user, age, gender, occupation, _ = fields
            profiles[user] = UserProfile(
                gender, age_bracket(int(age)), occupation
            )
    return profiles


# ML-1M README: age and occupation codes of users.dat.
ML_1M_AGE_BRACKETS = {
    "1": "0-17",
    "18": "18-24",
    "25": "25-34",
    "35": "35-44",
    "45": "45-49",
    "50": "50-55",
    "56": "56+",
}
ML_1M_OCCUPATIONS = (
    "other",
    "academic/educator",
    "artist",
    "clerical/admin",
    "college/grad student",
    "customer service",
    "doctor/health care",
    "executive/managerial",
    "farmer",
    "homemaker",
    "K-12 student",
    "lawyer",
    "programmer",
    "retired",
    "sales/marketing",
    "scientist",
    "self-employed",
    "technician/engineer",
    "tradesman/craftsman",
    "unemployed",
    "writer",
)


def read_users_dat(path: str) -> dict[str, UserProfile]:
    """Reads GroupLens ML-1M `users.dat` (`user::gender::age::occ::zip`)."""
    profiles = {}
    with open(path, encoding="latin-1") as f:
        for line_number, line in enumerate(f, start=1):
            fields = line.rstrip("\r\n").split("::")
            valid = (
                len(fields) == 5
                and fields[2] in ML_1M_AGE_BRACKETS
                and fields[3].isdigit()
                and int(fields[3]) < len(ML_1M_OCCUPATIONS)
            )
            if not valid:
                raise bl.BadLineError(
                    path,
                    line_number,
                    bl.BAD_PROFILE,
                    "expected 'user::gender::age::occupation::zip' with the "
                    "ML-1M age and occupation codes.",
                    line.rstrip("\r\n"),
                )
            user, gender, age, occupation, _ = fields
            profiles[user] = UserProfile(
                gender,
                ML_1M_AGE_BRACKETS[age],
                ML_1M_OCCUPATIONS[int(occupation)],
            )
    return profiles


def write_user_profiles(profiles: dict[str, UserProfile], data_dir: str) -> str:
    """Writes `user_profiles.tsv` into `data_dir`; returns its path."""
    path = os.path.join(data_dir, USER_PROFILES_FILE)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\t".join(HEADER) + "\n")
        for user, profile in profiles.items():
            f.write("\t".join((user, *profile)) + "\n")
    return path


def read_user_profiles(data_dir: str) -> dict[str, UserProfile]:
    """Raw user id -> `UserProfile`, from a dataset directory."""
    path = os.path.join(data_dir, USER_PROFILES_FILE)
    profiles = {}
    with open(path, encoding="utf-8") as f:
        header = tuple(f.readline().rstrip("\n").split("\t"))
        if header != HEADER:
            raise ValueError(
                f"{path}: header must be {HEADER}. Received: {header}"
            )
        for line_number, line in enumerate(f, start=2):
            fields = line.rstrip("\n").split("\t")
            if len(fields) != len(HEADER):
                raise ValueError(
                    f"{path}:{line_number}: expected {len(HEADER)} "
                    f"tab-separated fields. Received: {line!r}"
                )
            profiles[fields[0]] = UserProfile(*fields[1:])
    return profiles
