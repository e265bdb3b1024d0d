"""What a run writes beside its data: ``figures`` (every figure, 300 dpi PNG + SVG), ``headline``
(the summary numbers of metrics/summary.json and each stage's closing line) and ``fits`` (an
autoencoder's loss curve, metrics and MLflow model)."""
