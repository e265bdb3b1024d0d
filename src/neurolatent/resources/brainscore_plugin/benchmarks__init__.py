"""neurolatent's BOLD5000 benchmarks (written by `neurolatent export`): per ROI, a ridge benchmark
and an RDM benchmark. Copy this folder to brainscore_vision/benchmarks/{identifier}/."""

from brainscore_vision import benchmark_registry

from .benchmark import REGIONS, Bold5000Ridge, Bold5000RDM

for _region in REGIONS:
    benchmark_registry[f"{identifier}.{_region}-ridge"] = lambda region=_region: Bold5000Ridge(region)
    benchmark_registry[f"{identifier}.{_region}-rdm"] = lambda region=_region: Bold5000RDM(region)
