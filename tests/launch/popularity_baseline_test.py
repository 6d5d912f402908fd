"""The popularity baseline ranks the planted most popular item first."""

from launch import popularity_baseline
from uaf_tf.data.preparation import original


def test_popularity_ranks_the_dominant_item_first(tmp_path):
    # 300 users; every user's targets are the shared item "hit" plus one
    # item of their own, so half of all instances have the single most
    # popular positive and rank it first; random ranking has HR@5 = 0.05.
    pretrain = tmp_path / "pretrain.csv"
    finetune = tmp_path / "finetune.csv"
    pretrain.write_text(
        "".join(f"s{u % 7},s{u % 5},s{u % 3}\n" for u in range(300))
    )
    finetune.write_text(
        "".join(f"s{u % 7},s{u % 5},s{u % 3},,hit,own{u}\n" for u in range(300))
    )
    data_dir = str(tmp_path / "data")
    original.build_from_original(data_dir, str(pretrain), str(finetune))

    results = popularity_baseline.popularity_results(data_dir, batch_size=64)

    for split in ("valid", "test"):
        split_results = results[split]
        assert split_results["num_examples"] > 0
        assert split_results["sampled/hr@5"] > 0.3
        assert split_results["full/hr@5"] > 0.3
        # Every non-"hit" positive was never a training positive: rank last.
        assert split_results["sampled/hr@5"] < 0.75
