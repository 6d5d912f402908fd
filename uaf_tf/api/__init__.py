"""The Python API: datasets, training, runs and recommendations, for
notebooks and scripts (no flags are parsed).

```python
import uaf_tf

data = uaf_tf.prepare_dataset("movielens-100k", "data/ml100k")
pretrained = uaf_tf.pretrain(data, "runs/pretrain", epochs=20)
run = uaf_tf.finetune(data, pretrained, "runs/gumbel", method="gumbel")
run.results["test"]["sampled/mrr@5"]
run = uaf_tf.load_run("runs/gumbel")
run.evaluate("test")  # the same metrics, recomputed
run.recommend([["50", "181", "258"]], k=10)  # raw ids, scores, policy
```

`uaf_tf.api._internals` is the only module here that uses the rest of the
package.
"""

from uaf_tf import _API_NAMES
from uaf_tf.api.datasets import DATASET_KINDS as DATASET_KINDS
from uaf_tf.api.datasets import Dataset as Dataset
from uaf_tf.api.datasets import open_dataset as open_dataset
from uaf_tf.api.datasets import prepare_dataset as prepare_dataset
from uaf_tf.api.runs import Recommendations as Recommendations
from uaf_tf.api.runs import Run as Run
from uaf_tf.api.runs import finetune as finetune
from uaf_tf.api.runs import load_run as load_run
from uaf_tf.api.runs import predict_profile as predict_profile
from uaf_tf.api.runs import pretrain as pretrain

# `X as X` marks the re-exports; the list of names is written once, in
# `uaf_tf/__init__.py`, which re-exports them lazily.
__all__ = list(_API_NAMES)
