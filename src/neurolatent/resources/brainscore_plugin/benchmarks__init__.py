"""neurolatent's BOLD5000 benchmarks (written by `neurolatent export`): per ROI, a ridge benchmark
and an RDM benchmark. Copy this folder to brainscore_vision/benchmarks/{identifier}/.

One literal registration a line: Brain-Score finds a benchmark's plugin by searching the plugins'
__init__.py files for benchmark_registry['<identifier>'] (brainscore_core's import_plugin)."""

from brainscore_vision import benchmark_registry

from .benchmark import Bold5000Ridge, Bold5000RDM

benchmark_registry["{identifier}.{REGION}-ridge"] = lambda: Bold5000Ridge("{REGION}")
benchmark_registry["{identifier}.{REGION}-rdm"] = lambda: Bold5000RDM("{REGION}")
